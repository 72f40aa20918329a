package cfn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"

	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// Stacks returns every stack of region whose name starts with
// provisioner.StackPrefix and whose status is not DELETE_COMPLETE, keyed by
// name, with its outputs and status reason. It pages through DescribeStacks
// without a stack name: one call per page, whatever the number of stacks.
func (e *Engine) Stacks(ctx context.Context, region string) (map[string]provisioner.Stack, error) {
	client, err := e.cfn.Client(region)
	if err != nil {
		return nil, fmt.Errorf("cfn: describe stacks: %w", err)
	}
	stacks := make(map[string]provisioner.Stack)
	pages := cloudformation.NewDescribeStacksPaginator(client, &cloudformation.DescribeStacksInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("cfn: describe stacks in %s: %w", region, err)
		}
		for _, s := range page.Stacks {
			name := aws.ToString(s.StackName)
			if !strings.HasPrefix(name, provisioner.StackPrefix) || s.StackStatus == types.StackStatusDeleteComplete {
				continue
			}
			st := provisioner.Stack{
				Name:      name,
				ID:        aws.ToString(s.StackId),
				Status:    string(s.StackStatus),
				Reason:    aws.ToString(s.StackStatusReason),
				Outputs:   make(map[string]string, len(s.Outputs)),
				ChangeSet: changeSetName(aws.ToString(s.ChangeSetId)),
			}
			for _, o := range s.Outputs {
				st.Outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
			}
			stacks[name] = st
		}
	}
	return stacks, nil
}

// CreateStack starts creating a stack from in.Template's body with
// CAPABILITY_IAM and CAPABILITY_NAMED_IAM, rolling back on failure, and
// in.Token as ClientRequestToken, by the Engine's service role when it has
// one (Config.RoleARN). A stack that already exists under that
// name (AlreadyExistsException) is not an error: it returns nil, whatever
// that stack's template or status; the caller reads the status with Stacks.
func (e *Engine) CreateStack(ctx context.Context, in provisioner.CreateStackInput) error {
	client, err := e.cfn.Client(in.Region)
	if err != nil {
		return fmt.Errorf("cfn: create stack %s: %w", in.Name, err)
	}
	input := &cloudformation.CreateStackInput{
		StackName:    aws.String(in.Name),
		TemplateBody: aws.String(in.Template.Body),
		Capabilities: []types.Capability{types.CapabilityCapabilityIam, types.CapabilityCapabilityNamedIam},
		OnFailure:    types.OnFailureRollback,
		Parameters:   parameters(in.Parameters),
		Tags:         tags(in.Tags),
	}
	if in.Token != "" {
		input.ClientRequestToken = aws.String(in.Token)
	}
	if e.role != "" {
		input.RoleARN = aws.String(e.role)
	}
	if _, err := client.CreateStack(ctx, input); err != nil {
		if errorCode(err) == "AlreadyExistsException" {
			return nil
		}
		return fmt.Errorf("cfn: create stack %s in %s: %w", in.Name, in.Region, err)
	}
	return nil
}

// DeleteStack starts deleting a stack, with token as ClientRequestToken,
// by the Engine's service role when it has one.
// CloudFormation treats deleting an absent stack as success already; a
// "does not exist" ValidationError, should an implementation return one, is
// translated into nil as well.
func (e *Engine) DeleteStack(ctx context.Context, region, name, token string) error {
	client, err := e.cfn.Client(region)
	if err != nil {
		return fmt.Errorf("cfn: delete stack %s: %w", name, err)
	}
	input := &cloudformation.DeleteStackInput{StackName: aws.String(name)}
	if token != "" {
		input.ClientRequestToken = aws.String(token)
	}
	if e.role != "" {
		input.RoleARN = aws.String(e.role)
	}
	if _, err := client.DeleteStack(ctx, input); err != nil {
		if isStackNotFound(err) {
			return nil
		}
		return fmt.Errorf("cfn: delete stack %s in %s: %w", name, region, err)
	}
	return nil
}

// StackEvents returns every event of the stack, newest first (the order in
// which DescribeStackEvents pages them), or an error wrapping
// provisioner.ErrStackNotFound if no such stack exists.
func (e *Engine) StackEvents(ctx context.Context, region, name string) ([]provisioner.StackEvent, error) {
	client, err := e.cfn.Client(region)
	if err != nil {
		return nil, fmt.Errorf("cfn: describe stack events of %s: %w", name, err)
	}
	var events []provisioner.StackEvent
	pages := cloudformation.NewDescribeStackEventsPaginator(client, &cloudformation.DescribeStackEventsInput{
		StackName: aws.String(name),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			if isStackNotFound(err) {
				return nil, fmt.Errorf("cfn: describe stack events of %s in %s: %w", name, region, provisioner.ErrStackNotFound)
			}
			return nil, fmt.Errorf("cfn: describe stack events of %s in %s: %w", name, region, err)
		}
		for _, ev := range page.StackEvents {
			events = append(events, provisioner.StackEvent{
				ID:           aws.ToString(ev.EventId),
				Time:         aws.ToTime(ev.Timestamp),
				LogicalID:    aws.ToString(ev.LogicalResourceId),
				ResourceType: aws.ToString(ev.ResourceType),
				Status:       string(ev.ResourceStatus),
				Reason:       aws.ToString(ev.ResourceStatusReason),
			})
		}
	}
	// CloudFormation pages newest first; sort anyway (stably, so events of
	// the same instant keep the service's order) because the port promises
	// the order and an emulator need not keep it.
	slices.SortStableFunc(events, func(a, b provisioner.StackEvent) int {
		return b.Time.Compare(a.Time)
	})
	return events, nil
}

// parameters converts a parameter map, sorted by key so that the request
// is the same on every retry and run.
func parameters(m map[string]string) []types.Parameter {
	if len(m) == 0 {
		return nil
	}
	out := make([]types.Parameter, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, types.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(m[k])})
	}
	return out
}

func tags(m map[string]string) []types.Tag {
	if len(m) == 0 {
		return nil
	}
	out := make([]types.Tag, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// errorCode returns the AWS error code of err, or "" if err carries none.
func errorCode(err error) string {
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok {
		return apiErr.ErrorCode()
	}
	return ""
}

// isStackNotFound reports whether err is CloudFormation's answer for a stack
// name or ID it does not know: a ValidationError whose message says the
// stack "does not exist" (CloudFormation has no dedicated error code).
func isStackNotFound(err error) bool {
	apiErr, ok := errors.AsType[smithy.APIError](err)
	return ok && apiErr.ErrorCode() == "ValidationError" && strings.Contains(apiErr.ErrorMessage(), "does not exist")
}
