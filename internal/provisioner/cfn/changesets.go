package cfn

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// CreateChangeSet asks for an UPDATE change set of an existing stack from
// in.Template's body, with the capabilities, tags and service role of
// CreateStack and in.Token as ClientToken. A change set of that name that
// already exists (AlreadyExistsException) is not an error.
func (e *Engine) CreateChangeSet(ctx context.Context, in provisioner.ChangeSetInput) error {
	client, err := e.cfn.Client(in.Region)
	if err != nil {
		return fmt.Errorf("cfn: create change set %s: %w", in.Name, err)
	}
	input := &cloudformation.CreateChangeSetInput{
		StackName:     aws.String(in.StackName),
		ChangeSetName: aws.String(in.Name),
		ChangeSetType: types.ChangeSetTypeUpdate,
		TemplateBody:  aws.String(in.Template.Body),
		Capabilities:  []types.Capability{types.CapabilityCapabilityIam, types.CapabilityCapabilityNamedIam},
		Parameters:    parameters(in.Parameters),
		Tags:          tags(in.Tags),
		Description:   aws.String("Cairn template version " + in.Template.Version),
	}
	if in.Token != "" {
		input.ClientToken = aws.String(in.Token)
	}
	if e.role != "" {
		input.RoleARN = aws.String(e.role)
	}
	if _, err := client.CreateChangeSet(ctx, input); err != nil {
		if errorCode(err) == "AlreadyExistsException" {
			return nil
		}
		if isStackNotFound(err) {
			return fmt.Errorf("cfn: create change set %s of %s in %s: %w", in.Name, in.StackName, in.Region, provisioner.ErrStackNotFound)
		}
		return fmt.Errorf("cfn: create change set %s of %s in %s: %w", in.Name, in.StackName, in.Region, err)
	}
	return nil
}

// noChanges reports CloudFormation's reasons for a change set that failed
// because it would change nothing.
func noChanges(reason string) bool {
	return strings.Contains(reason, "didn't contain changes") || strings.Contains(reason, "No updates are to be performed")
}

// DescribeChangeSet returns the change set with every page of its changes,
// or an error wrapping provisioner.ErrChangeSetNotFound
// (ChangeSetNotFoundException, or a stack that does not exist).
func (e *Engine) DescribeChangeSet(ctx context.Context, region, stack, name string) (provisioner.ChangeSet, error) {
	client, err := e.cfn.Client(region)
	if err != nil {
		return provisioner.ChangeSet{}, fmt.Errorf("cfn: describe change set %s: %w", name, err)
	}
	input := &cloudformation.DescribeChangeSetInput{StackName: aws.String(stack), ChangeSetName: aws.String(name)}
	var out provisioner.ChangeSet
	for first := true; first || input.NextToken != nil; first = false {
		page, err := client.DescribeChangeSet(ctx, input)
		if err != nil {
			if isChangeSetNotFound(err) {
				return provisioner.ChangeSet{}, fmt.Errorf("cfn: describe change set %s of %s in %s: %w", name, stack, region, provisioner.ErrChangeSetNotFound)
			}
			return provisioner.ChangeSet{}, fmt.Errorf("cfn: describe change set %s of %s in %s: %w", name, stack, region, err)
		}
		if first {
			out = provisioner.ChangeSet{
				Name:            aws.ToString(page.ChangeSetName),
				StackName:       aws.ToString(page.StackName),
				Status:          string(page.Status),
				ExecutionStatus: string(page.ExecutionStatus),
				Reason:          aws.ToString(page.StatusReason),
				CreatedAt:       aws.ToTime(page.CreationTime),
			}
			out.NoChanges = out.Status == provisioner.ChangeSetFailed && noChanges(out.Reason)
		}
		for _, c := range page.Changes {
			if c.ResourceChange == nil {
				continue
			}
			rc := c.ResourceChange
			out.Changes = append(out.Changes, provisioner.ResourceChange{
				Action:       string(rc.Action),
				LogicalID:    aws.ToString(rc.LogicalResourceId),
				ResourceType: aws.ToString(rc.ResourceType),
				Replacement:  string(rc.Replacement),
			})
		}
		input.NextToken = page.NextToken
	}
	return out, nil
}

// ExecuteChangeSet executes the change set with token as
// ClientRequestToken. CloudFormation executes a change set once and
// deletes a stack's change sets once an update succeeds, so a repeat finds
// the change set executing (InvalidChangeSetStatus) or gone: both are
// success when the stack's last change set (DescribeStacks ChangeSetId) is
// this one.
func (e *Engine) ExecuteChangeSet(ctx context.Context, region, stack, name, token string) error {
	client, err := e.cfn.Client(region)
	if err != nil {
		return fmt.Errorf("cfn: execute change set %s: %w", name, err)
	}
	input := &cloudformation.ExecuteChangeSetInput{StackName: aws.String(stack), ChangeSetName: aws.String(name)}
	if token != "" {
		input.ClientRequestToken = aws.String(token)
	}
	_, err = client.ExecuteChangeSet(ctx, input)
	if err == nil {
		return nil
	}
	notFound, invalid := isChangeSetNotFound(err), errorCode(err) == "InvalidChangeSetStatus" || errorCode(err) == "InvalidChangeSetStatusException"
	if notFound || invalid {
		if last, lerr := e.lastChangeSet(ctx, client, stack); lerr == nil && last == name {
			return nil
		}
	}
	if notFound {
		return fmt.Errorf("cfn: execute change set %s of %s in %s: %w", name, stack, region, provisioner.ErrChangeSetNotFound)
	}
	return fmt.Errorf("cfn: execute change set %s of %s in %s: %w", name, stack, region, err)
}

// lastChangeSet returns the name of the change set the stack was last
// created or updated with, "" if none.
func (e *Engine) lastChangeSet(ctx context.Context, client *cloudformation.Client, stack string) (string, error) {
	out, err := client.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil || len(out.Stacks) == 0 {
		return "", err
	}
	return changeSetName(aws.ToString(out.Stacks[0].ChangeSetId)), nil
}

// changeSetName is the name in a change set ARN
// (arn:aws:cloudformation:<region>:<account>:changeSet/<name>/<id>), or id
// itself when it is not one.
func changeSetName(id string) string {
	_, rest, ok := strings.Cut(id, ":changeSet/")
	if !ok {
		return id
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// DeleteChangeSet deletes a change set; an absent one is not an error.
func (e *Engine) DeleteChangeSet(ctx context.Context, region, stack, name string) error {
	client, err := e.cfn.Client(region)
	if err != nil {
		return fmt.Errorf("cfn: delete change set %s: %w", name, err)
	}
	if _, err := client.DeleteChangeSet(ctx, &cloudformation.DeleteChangeSetInput{StackName: aws.String(stack), ChangeSetName: aws.String(name)}); err != nil {
		if isChangeSetNotFound(err) {
			return nil
		}
		return fmt.Errorf("cfn: delete change set %s of %s in %s: %w", name, stack, region, err)
	}
	return nil
}

// isChangeSetNotFound reports CloudFormation's answers for a change set
// (or its stack) that does not exist.
func isChangeSetNotFound(err error) bool {
	code := errorCode(err)
	return code == "ChangeSetNotFound" || code == "ChangeSetNotFoundException" || isStackNotFound(err)
}

// DetectDrift starts drift detection (DetectStackDrift) on every resource
// of the stack.
func (e *Engine) DetectDrift(ctx context.Context, region, stack string) (string, error) {
	client, err := e.cfn.Client(region)
	if err != nil {
		return "", fmt.Errorf("cfn: detect drift of %s: %w", stack, err)
	}
	out, err := client.DetectStackDrift(ctx, &cloudformation.DetectStackDriftInput{StackName: aws.String(stack)})
	if err != nil {
		if isStackNotFound(err) {
			return "", fmt.Errorf("cfn: detect drift of %s in %s: %w", stack, region, provisioner.ErrStackNotFound)
		}
		return "", fmt.Errorf("cfn: detect drift of %s in %s: %w", stack, region, err)
	}
	return aws.ToString(out.StackDriftDetectionId), nil
}

// DriftDetection reads a detection (DescribeStackDriftDetectionStatus).
func (e *Engine) DriftDetection(ctx context.Context, region, detectionID string) (provisioner.DriftDetection, error) {
	client, err := e.cfn.Client(region)
	if err != nil {
		return provisioner.DriftDetection{}, fmt.Errorf("cfn: drift detection %s: %w", detectionID, err)
	}
	out, err := client.DescribeStackDriftDetectionStatus(ctx, &cloudformation.DescribeStackDriftDetectionStatusInput{
		StackDriftDetectionId: aws.String(detectionID),
	})
	if err != nil {
		return provisioner.DriftDetection{}, fmt.Errorf("cfn: drift detection %s in %s: %w", detectionID, region, err)
	}
	return provisioner.DriftDetection{
		ID:               aws.ToString(out.StackDriftDetectionId),
		Status:           string(out.DetectionStatus),
		StackDriftStatus: string(out.StackDriftStatus),
		Reason:           aws.ToString(out.DetectionStatusReason),
		DriftedResources: int(aws.ToInt32(out.DriftedStackResourceCount)),
	}, nil
}

// ResourceDrifts pages through DescribeStackResourceDrifts for the
// resources whose drift status is MODIFIED or DELETED.
func (e *Engine) ResourceDrifts(ctx context.Context, region, stack string) ([]provisioner.ResourceDrift, error) {
	client, err := e.cfn.Client(region)
	if err != nil {
		return nil, fmt.Errorf("cfn: resource drifts of %s: %w", stack, err)
	}
	var out []provisioner.ResourceDrift
	pages := cloudformation.NewDescribeStackResourceDriftsPaginator(client, &cloudformation.DescribeStackResourceDriftsInput{
		StackName: aws.String(stack),
		StackResourceDriftStatusFilters: []types.StackResourceDriftStatus{
			types.StackResourceDriftStatusModified, types.StackResourceDriftStatusDeleted,
		},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			if isStackNotFound(err) {
				return nil, fmt.Errorf("cfn: resource drifts of %s in %s: %w", stack, region, provisioner.ErrStackNotFound)
			}
			return nil, fmt.Errorf("cfn: resource drifts of %s in %s: %w", stack, region, err)
		}
		for _, d := range page.StackResourceDrifts {
			out = append(out, provisioner.ResourceDrift{
				LogicalID:    aws.ToString(d.LogicalResourceId),
				PhysicalID:   aws.ToString(d.PhysicalResourceId),
				ResourceType: aws.ToString(d.ResourceType),
				Status:       string(d.StackResourceDriftStatus),
			})
		}
	}
	return out, nil
}
