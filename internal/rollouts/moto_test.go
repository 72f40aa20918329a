package rollouts_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/awsfault"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/provisioner/cfn"
	"github.com/cairn-cdp/cairn/internal/provisioner/enginetest"
	"github.com/cairn-cdp/cairn/internal/rollouts"
	"github.com/cairn-cdp/cairn/templates"
)

// replacing rewrites the emulator's DescribeChangeSet answers for stack's
// change sets to report a replacement of its raw bucket, which moto never
// reports (its changes carry no Replacement): the scripted double of
// CloudFormation's review of a replacing change.
func replacing(stack string) func([]byte) []byte {
	const change = "<member><Type>Resource</Type><ResourceChange><Action>Modify</Action>" +
		"<LogicalResourceId>RawZoneBucket</LogicalResourceId><ResourceType>AWS::S3::Bucket</ResourceType>" +
		"<Replacement>True</Replacement></ResourceChange></member>"
	return func(body []byte) []byte {
		if !bytes.Contains(body, []byte("<StackName>"+stack+"</StackName>")) {
			return body
		}
		return bytes.Replace(body, []byte("<Changes>"), []byte("<Changes>"+change), 1)
	}
}

// TestRolloutOnEmulator rolls the dedicated template's next version out to
// five stacks on the AWS emulator through its change sets (create,
// describe, execute): one stack's update is reported rolled back (a
// fault-injecting proxy rewrites DescribeStacks, as moto never rolls
// back), which halts the rollout at its threshold; resumed, another's
// change set is reported replacing its raw bucket, which halts it for
// approval; approved, it completes. A crash right after an
// ExecuteChangeSet is taken over by another runner. Every change set is
// executed once: the emulator receives exactly one ExecuteChangeSet per
// stack.
func TestRolloutOnEmulator(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	proxy, err := awsfault.New(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	cfg := awstest.Config(region)
	engine, err := cfn.New(t.Context(), cfn.Config{AWS: awsclient.Settings{AWS: &cfg, EndpointURL: proxy.URL, MaxBackoff: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	next := enginetest.WithMarker(templates.Dedicated(), "Emulator")
	env := newFleetOn(t, 5, next, engine)
	t.Cleanup(func() {
		for _, tn := range env.tenants {
			_ = engine.DeleteStack(context.Background(), region, provisioner.DedicatedStackName(tn.ID), "cleanup")
		}
	})
	ro := env.create(rollouts.CreateParams{Plan: rollouts.Plan{Waves: []int{60, 100}, FailureThreshold: 1}})
	_, targets, _ := env.svc.Get(context.Background(), ro.ID)
	byWave := map[int][]string{}
	for _, tg := range targets {
		byWave[tg.Wave] = append(byWave[tg.Wave], tg.StackName)
	}
	failing, needsApproval := byWave[1][0], byWave[2][0]
	proxy.FailStack(failing, provisioner.StackUpdateRollbackComplete, "Resource handler returned message: \"Rate exceeded\"")
	proxy.Rewrite("cloudformation:DescribeChangeSet", replacing(needsApproval))

	// The canary's ExecuteChangeSet lands, and its runner dies before
	// recording it; another runner takes over.
	ctx, cancel := context.WithCancel(context.Background())
	crash := &crashingEngine{Engine: engine, cancel: cancel, executeAt: 1}
	for ctx.Err() == nil {
		if _, err := env.runner(crash).Step(ctx, ro.ID); err != nil && ctx.Err() == nil {
			t.Fatal(err)
		}
	}
	r := env.runner(nil)
	ro, targets = env.until(r, ro.ID, func(ro rollouts.Rollout, _ []rollouts.Target) bool { return ro.State == rollouts.StateHalted })
	if !strings.Contains(ro.Reason, "1 stacks failed") {
		t.Fatalf("halted: %q, %v", ro.Reason, ro.Counts)
	}
	for _, tg := range targets {
		if tg.StackName == failing && (tg.State != rollouts.TargetFailed || !strings.Contains(tg.Reason, "UPDATE_ROLLBACK_COMPLETE")) {
			t.Fatalf("failing stack: %s %q", tg.State, tg.Reason)
		}
		if tg.Wave == 2 && tg.State != rollouts.TargetPending {
			t.Fatalf("wave 2 started after the halt: %s is %s", tg.StackName, tg.State)
		}
	}
	if _, err := env.svc.Resume(context.Background(), admin("rollout.resume"), ro.ID); err != nil {
		t.Fatal(err)
	}
	ro, targets = env.until(r, ro.ID, func(ro rollouts.Rollout, _ []rollouts.Target) bool { return ro.State == rollouts.StateHalted })
	if !strings.Contains(ro.Reason, "approval needed") || !strings.Contains(ro.Reason, needsApproval) {
		t.Fatalf("halted: %q", ro.Reason)
	}
	if _, err := env.svc.Approve(context.Background(), admin("rollout.approve"), ro.ID); err != nil {
		t.Fatal(err)
	}
	ro, targets = env.until(r, ro.ID, func(ro rollouts.Rollout, _ []rollouts.Target) bool { return ro.State == rollouts.StateCompleted })
	if ro.Counts[rollouts.TargetSucceeded] != 4 || ro.Counts[rollouts.TargetFailed] != 1 {
		t.Fatalf("completed: %v", ro.Counts)
	}
	stacks, err := engine.Stacks(context.Background(), region)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		cs, err := engine.DescribeChangeSet(context.Background(), region, tg.StackName, tg.ChangeSet)
		if err != nil || cs.ExecutionStatus != provisioner.ExecutionComplete || cs.StackName != tg.StackName {
			t.Fatalf("change set of %s: %+v, %v", tg.StackName, cs, err)
		}
		if st := stacks[tg.StackName]; tg.StackName != failing && st.Status != provisioner.StackUpdateComplete {
			t.Fatalf("stack %s after the rollout: %s", tg.StackName, st.Status)
		}
	}
	if n := proxy.Calls("ExecuteChangeSet"); n != 5 {
		t.Fatalf("the emulator executed %d change sets for 5 stacks", n)
	}
}
