package provisioner

import (
	"errors"
	"time"

	"github.com/cairn-cdp/cairn/templates"
)

// Change set statuses, in CloudFormation's words (Status and
// ExecutionStatus of DescribeChangeSet).
const (
	ChangeSetCreatePending    = "CREATE_PENDING"
	ChangeSetCreateInProgress = "CREATE_IN_PROGRESS"
	ChangeSetCreateComplete   = "CREATE_COMPLETE"
	ChangeSetFailed           = "FAILED"

	ExecutionUnavailable = "UNAVAILABLE"
	ExecutionAvailable   = "AVAILABLE"
	ExecutionInProgress  = "EXECUTE_IN_PROGRESS"
	ExecutionComplete    = "EXECUTE_COMPLETE"
	ExecutionFailed      = "EXECUTE_FAILED"
	ExecutionObsolete    = "OBSOLETE"
)

// ErrChangeSetNotFound is returned by DescribeChangeSet and
// ExecuteChangeSet for a change set that does not exist (or whose stack
// does not).
var ErrChangeSetNotFound = errors.New("change set not found")

// ChangeSetInput asks for a change set updating an existing stack.
type ChangeSetInput struct {
	Region    string
	StackName string
	// Name is the change set's name: letters, digits and '-', starting
	// with a letter, at most 128 characters.
	Name       string
	Template   templates.Template
	Parameters map[string]string
	Tags       map[string]string
	// Token is the ClientToken: repeating a call with it never makes a
	// second change set.
	Token string
}

// ChangeSet is a change set as DescribeChangeSet reports it.
type ChangeSet struct {
	Name      string
	StackName string
	// Status is one of the ChangeSet* constants, ExecutionStatus one of
	// the Execution* constants.
	Status          string
	ExecutionStatus string
	Reason          string
	// NoChanges reports a change set that failed only because the template
	// and parameters change nothing (CloudFormation's "didn't contain
	// changes"): the stack is already as asked.
	NoChanges bool
	Changes   []ResourceChange
	CreatedAt time.Time
}

// Resource change actions and replacement answers, in CloudFormation's
// words.
const (
	ActionAdd    = "Add"
	ActionModify = "Modify"
	ActionRemove = "Remove"

	ReplacementTrue        = "True"
	ReplacementFalse       = "False"
	ReplacementConditional = "Conditional"
)

// ResourceChange is one resource a change set would add, modify or remove.
type ResourceChange struct {
	Action       string
	LogicalID    string
	ResourceType string
	// Replacement says whether a Modify replaces the resource: True,
	// False or Conditional ("" for Add and Remove).
	Replacement string
}

// Drift detection statuses and stack drift statuses, in CloudFormation's
// words.
const (
	DetectionInProgress = "DETECTION_IN_PROGRESS"
	DetectionComplete   = "DETECTION_COMPLETE"
	DetectionFailed     = "DETECTION_FAILED"

	DriftInSync     = "IN_SYNC"
	DriftDrifted    = "DRIFTED"
	DriftUnknown    = "UNKNOWN"
	DriftNotChecked = "NOT_CHECKED"
)

// DriftDetection is the state of one drift detection of a stack.
type DriftDetection struct {
	ID     string
	Status string
	// StackDriftStatus is IN_SYNC, DRIFTED, UNKNOWN or NOT_CHECKED.
	StackDriftStatus string
	Reason           string
	// DriftedResources counts the resources found drifted.
	DriftedResources int
}

// ResourceDrift is one resource found drifted from its template.
type ResourceDrift struct {
	LogicalID    string
	PhysicalID   string
	ResourceType string
	// Status is MODIFIED or DELETED.
	Status string
}
