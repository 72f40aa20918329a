package provisioner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cairn-cdp/cairn/templates"
)

// localChangeSet is a change set of a local stack, kept in its state file.
type localChangeSet struct {
	ChangeSet
	// Body and Parameters are what executing it makes the stack.
	Body       string            `json:"body"`
	Version    string            `json:"version"`
	Parameters map[string]string `json:"parameters"`
}

// createOnly lists, per resource type, the properties whose change
// replaces the resource: the local engine's stand-in for the resource
// schemas' createOnlyProperties that CloudFormation reads. A change of
// Type replaces any resource.
var createOnly = map[string][]string{
	"AWS::S3::Bucket":        {"BucketName", "ObjectLockEnabled"},
	"AWS::DynamoDB::Table":   {"TableName", "KeySchema"},
	"AWS::KMS::Key":          {"KeySpec", "KeyUsage", "MultiRegion"},
	"AWS::Kinesis::Stream":   {"Name"},
	"AWS::Glue::Database":    {"CatalogId", "DatabaseName"},
	"AWS::Athena::WorkGroup": {"Name"},
	"AWS::IAM::Role":         {"RoleName", "Path"},
	"AWS::KMS::Alias":        {"AliasName"},
}

// localResource is one resource of a template, as the local engine diffs
// it: its type and each property rendered as YAML.
type localResource struct {
	typ   string
	props map[string]string
}

// templateResources reads the Resources of a template body.
func templateResources(body string) (map[string]localResource, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(body), &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("empty template")
	}
	resources := mappingValue(doc.Content[0], "Resources")
	if resources == nil || resources.Kind != yaml.MappingNode {
		return nil, errors.New("template has no Resources")
	}
	out := map[string]localResource{}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		id, node := resources.Content[i].Value, resources.Content[i+1]
		r := localResource{props: map[string]string{}}
		if t := mappingValue(node, "Type"); t != nil {
			r.typ = t.Value
		}
		if props := mappingValue(node, "Properties"); props != nil && props.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(props.Content); j += 2 {
				var buf bytes.Buffer
				enc := yaml.NewEncoder(&buf)
				if err := enc.Encode(props.Content[j+1]); err != nil {
					return nil, fmt.Errorf("resource %s: %w", id, err)
				}
				r.props[props.Content[j].Value] = buf.String()
			}
		}
		out[id] = r
	}
	return out, nil
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// diffTemplates is what updating a stack from one body to another changes,
// ordered by logical ID.
func diffTemplates(from, to string) ([]ResourceChange, error) {
	before, err := templateResources(from)
	if err != nil {
		return nil, fmt.Errorf("current template: %w", err)
	}
	after, err := templateResources(to)
	if err != nil {
		return nil, fmt.Errorf("new template: %w", err)
	}
	var changes []ResourceChange
	for id, r := range after {
		old, ok := before[id]
		switch {
		case !ok:
			changes = append(changes, ResourceChange{Action: ActionAdd, LogicalID: id, ResourceType: r.typ})
		case old.typ != r.typ:
			changes = append(changes, ResourceChange{Action: ActionModify, LogicalID: id, ResourceType: r.typ, Replacement: ReplacementTrue})
		default:
			replace, modified := false, false
			for _, k := range unionKeys(old.props, r.props) {
				if old.props[k] == r.props[k] {
					continue
				}
				modified = true
				if slices.Contains(createOnly[r.typ], k) {
					replace = true
				}
			}
			if !modified {
				continue
			}
			c := ResourceChange{Action: ActionModify, LogicalID: id, ResourceType: r.typ, Replacement: ReplacementFalse}
			if replace {
				c.Replacement = ReplacementTrue
			}
			changes = append(changes, c)
		}
	}
	for id, r := range before {
		if _, ok := after[id]; !ok {
			changes = append(changes, ResourceChange{Action: ActionRemove, LogicalID: id, ResourceType: r.typ})
		}
	}
	slices.SortFunc(changes, func(a, b ResourceChange) int { return strings.Compare(a.LogicalID, b.LogicalID) })
	return changes, nil
}

func unionKeys(a, b map[string]string) []string {
	keys := slices.AppendSeq(slices.Collect(maps.Keys(a)), maps.Keys(b))
	slices.Sort(keys)
	return slices.Compact(keys)
}

// body is the template the stack was last created or updated with; a
// stack recorded before bodies were kept has the embedded template of its
// name.
func (s *localStack) body() string {
	if s.TemplateBody != "" {
		return s.TemplateBody
	}
	switch s.Template {
	case templates.DedicatedFile:
		return templates.Dedicated().Body
	case templates.PoolFile:
		return templates.Pool().Body
	}
	return ""
}

// CreateChangeSet computes the change set at once (CREATE_COMPLETE, or
// FAILED with NoChanges when nothing changes); an existing change set of
// that name is left as it is.
func (e *LocalEngine) CreateChangeSet(_ context.Context, in ChangeSetInput) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.load(in.Region, in.StackName)
	if errors.Is(err, ErrStackNotFound) {
		return fmt.Errorf("local engine: change set %s: %w", in.Name, ErrStackNotFound)
	}
	if err != nil {
		return err
	}
	if _, ok := s.ChangeSets[in.Name]; ok {
		return nil
	}
	if s.Status != StackCreateComplete && s.Status != StackUpdateComplete && s.Status != StackUpdateRollbackComplete {
		return fmt.Errorf("local engine: stack %s is in %s state and can not be updated", in.StackName, s.Status)
	}
	cs := localChangeSet{
		ChangeSet: ChangeSet{Name: in.Name, StackName: in.StackName, Status: ChangeSetCreateComplete,
			ExecutionStatus: ExecutionAvailable, CreatedAt: time.Now().UTC()},
		Body: in.Template.Body, Version: in.Template.Version, Parameters: in.Parameters,
	}
	cs.Changes, err = diffTemplates(s.body(), in.Template.Body)
	if err != nil {
		cs.Status, cs.ExecutionStatus, cs.Reason = ChangeSetFailed, ExecutionUnavailable, err.Error()
	}
	if err == nil && len(cs.Changes) == 0 && maps.Equal(s.Parameters, in.Parameters) {
		cs.Status, cs.ExecutionStatus, cs.NoChanges = ChangeSetFailed, ExecutionUnavailable, true
		cs.Reason = "The submitted information didn't contain changes. Submit different information to create a change set."
	}
	if s.ChangeSets == nil {
		s.ChangeSets = map[string]*localChangeSet{}
	}
	s.ChangeSets[in.Name] = &cs
	return writeFileAtomic(e.stackFile(in.Region, in.StackName), s)
}

// DescribeChangeSet returns the change set.
func (e *LocalEngine) DescribeChangeSet(_ context.Context, region, stack, name string) (ChangeSet, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.load(region, stack)
	if errors.Is(err, ErrStackNotFound) {
		return ChangeSet{}, ErrChangeSetNotFound
	}
	if err != nil {
		return ChangeSet{}, err
	}
	cs, ok := s.ChangeSets[name]
	if !ok {
		return ChangeSet{}, ErrChangeSetNotFound
	}
	out := cs.ChangeSet
	out.Changes = slices.Clone(cs.Changes)
	return out, nil
}

// ExecuteChangeSet starts the update (UPDATE_IN_PROGRESS); the next Stacks
// call completes it. Executing it again changes nothing.
func (e *LocalEngine) ExecuteChangeSet(_ context.Context, region, stack, name, _ string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.load(region, stack)
	if errors.Is(err, ErrStackNotFound) {
		return ErrChangeSetNotFound
	}
	if err != nil {
		return err
	}
	cs, ok := s.ChangeSets[name]
	if !ok {
		return ErrChangeSetNotFound
	}
	if cs.ExecutionStatus != ExecutionAvailable {
		if cs.ExecutionStatus == ExecutionUnavailable || cs.ExecutionStatus == ExecutionObsolete {
			return fmt.Errorf("local engine: change set %s is %s (%s) and cannot be executed", name, cs.ExecutionStatus, cs.Status)
		}
		return nil // already executed: CloudFormation executes a change set once
	}
	cs.ExecutionStatus = ExecutionInProgress
	s.Executing, s.ChangeSet = name, name
	s.Executions++
	s.event(stack, "AWS::CloudFormation::Stack", StackUpdateInProgress, "User Initiated")
	for n, other := range s.ChangeSets {
		if n != name && other.ExecutionStatus == ExecutionAvailable {
			other.ExecutionStatus = ExecutionObsolete
		}
	}
	return writeFileAtomic(e.stackFile(region, stack), s)
}

// DeleteChangeSet forgets a change set; absent is not an error.
func (e *LocalEngine) DeleteChangeSet(_ context.Context, region, stack, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.load(region, stack)
	if errors.Is(err, ErrStackNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	cs, ok := s.ChangeSets[name]
	if !ok {
		return nil
	}
	if cs.ExecutionStatus == ExecutionInProgress {
		return fmt.Errorf("local engine: change set %s is executing", name)
	}
	delete(s.ChangeSets, name)
	return writeFileAtomic(e.stackFile(region, stack), s)
}

// update carries out the change set being executed: the stack takes its
// template and parameters, and the zone directories it declares are made.
// A zone the disk refuses rolls the update back, as CloudFormation does.
func (e *LocalEngine) update(region string, s *localStack) {
	cs := s.ChangeSets[s.Executing]
	s.Executing = ""
	if cs == nil {
		s.event(s.Name, "AWS::CloudFormation::Stack", StackUpdateComplete, "")
		return
	}
	for _, key := range []string{"RawBucket", "CleanBucket", "CuratedBucket"} {
		if b := s.Outputs[key]; b != "" {
			if err := os.MkdirAll(e.path(region, "buckets", b), 0o700); err != nil {
				cs.ExecutionStatus = ExecutionFailed
				s.Reason = "The following resource(s) failed to update: [" + key + "]. " + err.Error()
				s.event(key, "AWS::S3::Bucket", "UPDATE_FAILED", err.Error())
				s.event(s.Name, "AWS::CloudFormation::Stack", StackUpdateRollbackComplete, s.Reason)
				return
			}
		}
	}
	for _, c := range cs.Changes {
		s.event(c.LogicalID, c.ResourceType, updateStatus(c.Action), "")
	}
	s.TemplateBody, s.TemplateVersion, s.Parameters, s.Reason = cs.Body, cs.Version, cs.Parameters, ""
	cs.ExecutionStatus = ExecutionComplete
	s.event(s.Name, "AWS::CloudFormation::Stack", StackUpdateComplete, "")
}

func updateStatus(action string) string {
	switch action {
	case ActionAdd:
		return StackCreateComplete
	case ActionRemove:
		return "DELETE_COMPLETE"
	}
	return StackUpdateComplete
}

// DetectDrift compares the stack's zone directories with what its
// template declares: a zone directory that is gone is a DELETED bucket.
// The detection completes at once.
func (e *LocalEngine) DetectDrift(_ context.Context, region, stack string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.load(region, stack)
	if err != nil {
		return "", err
	}
	var drifts []ResourceDrift
	for _, key := range []string{"RawBucket", "CleanBucket", "CuratedBucket"} {
		b := s.Outputs[key]
		if b == "" {
			continue
		}
		if _, err := os.Stat(e.path(region, "buckets", b)); errors.Is(err, os.ErrNotExist) {
			drifts = append(drifts, ResourceDrift{LogicalID: key, PhysicalID: b, ResourceType: "AWS::S3::Bucket", Status: "DELETED"})
		}
	}
	s.Detections++
	id := "local:drift/" + stack + "/" + strconv.Itoa(s.Detections)
	s.Drifts = drifts
	s.DriftDetection = &DriftDetection{ID: id, Status: DetectionComplete, StackDriftStatus: DriftInSync, DriftedResources: len(drifts)}
	if len(drifts) > 0 {
		s.DriftDetection.StackDriftStatus = DriftDrifted
	}
	if err := writeFileAtomic(e.stackFile(region, stack), s); err != nil {
		return "", err
	}
	return id, nil
}

// DriftDetection returns a detection DetectDrift made; only a stack's
// latest is kept.
func (e *LocalEngine) DriftDetection(_ context.Context, region, detectionID string) (DriftDetection, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	stack, _, ok := cutDetectionID(detectionID)
	if !ok {
		return DriftDetection{}, fmt.Errorf("local engine: bad drift detection ID %q", detectionID)
	}
	s, err := e.load(region, stack)
	if err != nil {
		return DriftDetection{}, err
	}
	if s.DriftDetection == nil || s.DriftDetection.ID != detectionID {
		return DriftDetection{}, fmt.Errorf("local engine: drift detection %s not found", detectionID)
	}
	return *s.DriftDetection, nil
}

func cutDetectionID(id string) (stack, n string, ok bool) {
	const prefix = "local:drift/"
	if len(id) <= len(prefix) || id[:len(prefix)] != prefix {
		return "", "", false
	}
	rest := id[len(prefix):]
	i := bytes.LastIndexByte([]byte(rest), '/')
	if i <= 0 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// ResourceDrifts returns what the stack's latest detection found.
func (e *LocalEngine) ResourceDrifts(_ context.Context, region, stack string) ([]ResourceDrift, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.load(region, stack)
	if err != nil {
		return nil, err
	}
	return slices.Clone(s.Drifts), nil
}
