// Package enginetest is the contract suite of provisioner.Engine: every
// engine (the local one, CloudFormation against the AWS emulator) must pass
// it, so the reconciler can treat them alike.
package enginetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/templates"
)

// Run runs the contract against the engine in region.
func Run(t *testing.T, e provisioner.Engine, region string) {
	ctx := context.Background()
	var suffix [5]byte
	_, _ = rand.Read(suffix[:])
	tenantID := tenants.NewID()
	name := provisioner.DedicatedStackName(tenantID)
	in := provisioner.CreateStackInput{
		Region:     region,
		Name:       name,
		Template:   templates.Dedicated(),
		Parameters: map[string]string{"TenantId": tenantID, "TenantSlug": "contract-" + hex.EncodeToString(suffix[:])},
		Tags:       map[string]string{"cairn:tenant-id": tenantID, "cairn:managed-by": "cairn"},
		Token:      name + "-create-1",
	}

	t.Run("create is idempotent and completes with outputs", func(t *testing.T) {
		for range 2 {
			if err := e.CreateStack(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		st := settle(t, e, region, name)
		if st.Status != provisioner.StackCreateComplete {
			t.Fatalf("stack %s: %s (%s)", name, st.Status, st.Reason)
		}
		for _, k := range []string{"RawBucket", "CleanBucket", "CuratedBucket", "StreamArn", "ProfileTable", "DataAccessRoleArn", "KmsKeyArn"} {
			if st.Outputs[k] == "" {
				t.Errorf("output %s missing: %v", k, st.Outputs)
			}
		}
		stacks, err := e.Stacks(ctx, region)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for k := range stacks {
			if k == name {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d stacks named %s", n, name)
		}
	})

	t.Run("events newest first", func(t *testing.T) {
		events, err := e.StackEvents(ctx, region, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) < 2 || events[0].Status != provisioner.StackCreateComplete || events[0].LogicalID != name {
			t.Fatalf("events: %+v", events)
		}
		for i := 1; i < len(events); i++ {
			if events[i].Time.After(events[i-1].Time) {
				t.Fatalf("events not newest first: %v after %v", events[i].Time, events[i-1].Time)
			}
		}
		if _, err := e.StackEvents(ctx, region, provisioner.StackPrefix+"no-such-stack"); !errors.Is(err, provisioner.ErrStackNotFound) {
			t.Fatalf("events of a missing stack: %v", err)
		}
	})

	t.Run("change set updates the stack once", func(t *testing.T) {
		next := WithMarker(in.Template, "Contract")
		cs := provisioner.ChangeSetInput{
			Region: region, StackName: name, Name: "cairn-contract-1", Template: next,
			Parameters: in.Parameters, Tags: in.Tags, Token: name + "-changeset-1",
		}
		for range 2 {
			if err := e.CreateChangeSet(ctx, cs); err != nil {
				t.Fatal(err)
			}
		}
		got := settleChangeSet(t, e, region, name, cs.Name)
		if got.Status != provisioner.ChangeSetCreateComplete || got.ExecutionStatus != provisioner.ExecutionAvailable {
			t.Fatalf("change set: %+v", got)
		}
		added := false
		for _, c := range got.Changes {
			added = added || (c.Action == provisioner.ActionAdd && c.LogicalID == "RolloutMarkerContract")
		}
		if !added {
			t.Fatalf("change set does not add the marker: %+v", got.Changes)
		}
		if err := e.ExecuteChangeSet(ctx, region, name, cs.Name, name+"-execute-1"); err != nil {
			t.Fatal(err)
		}
		st := settle(t, e, region, name)
		// An engine that reports the last change set (CloudFormation does,
		// moto does not) reports this one.
		if st.Status != provisioner.StackUpdateComplete || (st.ChangeSet != "" && st.ChangeSet != cs.Name) {
			t.Fatalf("stack after the update: %s (%s), last change set %q", st.Status, st.Reason, st.ChangeSet)
		}
		// What tells a caller that the update was asked for, so that it
		// never executes a change set twice (moto would).
		if done, err := e.DescribeChangeSet(ctx, region, name, cs.Name); err != nil || done.ExecutionStatus != provisioner.ExecutionComplete {
			t.Fatalf("executed change set: %+v, %v", done, err)
		}
		if _, err := e.DescribeChangeSet(ctx, region, name, "cairn-no-such-change-set"); !errors.Is(err, provisioner.ErrChangeSetNotFound) {
			t.Fatalf("describe a missing change set: %v", err)
		}

		// The same template again changes nothing; that change set can be
		// deleted.
		again := cs
		again.Name, again.Token = "cairn-contract-2", name+"-changeset-2"
		if err := e.CreateChangeSet(ctx, again); err != nil {
			t.Fatal(err)
		}
		if got := settleChangeSet(t, e, region, name, again.Name); !got.NoChanges || len(got.Changes) != 0 {
			t.Fatalf("change set of the same template: %+v", got)
		}
		if err := e.DeleteChangeSet(ctx, region, name, again.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := e.DescribeChangeSet(ctx, region, name, again.Name); !errors.Is(err, provisioner.ErrChangeSetNotFound) {
			t.Fatalf("describe a deleted change set: %v", err)
		}
	})

	t.Run("glue database ensure and delete are idempotent", func(t *testing.T) {
		db := templates.DedicatedGlueDatabase(tenantID)
		for range 2 {
			if err := e.EnsureDatabase(ctx, region, db, "s3://bucket/", in.Tags); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			if err := e.DeleteDatabase(ctx, region, db); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("a pooled tenant's role is idempotent and deleted", func(t *testing.T) {
		policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/tenants/` + tenantID + `/*"}]}`
		r := provisioner.TenantRole{TenantID: tenantID, AccountID: "123456789012", Policy: policy, Tags: map[string]string{"cairn:tenant-id": tenantID}}
		var arns []string
		for range 2 {
			arn, err := e.EnsureTenantRole(ctx, region, r)
			if err != nil {
				t.Fatal(err)
			}
			arns = append(arns, arn)
		}
		want := ":role" + provisioner.TenantRolePath + provisioner.TenantRoleName(tenantID, region)
		if arns[0] != arns[1] || !strings.HasPrefix(arns[0], "arn:aws:iam::") || !strings.HasSuffix(arns[0], want) {
			t.Fatalf("role ARNs %v, want one ending %s", arns, want)
		}
		for range 2 {
			if err := e.DeleteTenantRole(ctx, region, tenantID); err != nil {
				t.Fatal(err)
			}
		}
		// Made again after it went (a tenant back in the pool).
		if arn, err := e.EnsureTenantRole(ctx, region, r); err != nil || arn != arns[0] {
			t.Fatalf("role again: %q, %v", arn, err)
		}
		if err := e.DeleteTenantRole(ctx, region, tenantID); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("delete removes the stack and retains buckets until purged", func(t *testing.T) {
		stacks, err := e.Stacks(ctx, region)
		if err != nil {
			t.Fatal(err)
		}
		out := stacks[name].Outputs
		for range 2 {
			if err := e.DeleteStack(ctx, region, name, name+"-delete-1"); err != nil {
				t.Fatal(err)
			}
		}
		if st := settle(t, e, region, name); st.Status != "" {
			t.Fatalf("stack still there: %s", st.Status)
		}
		if err := e.DeletePrefix(ctx, region, out["RawBucket"], "tenants/"+tenantID+"/"); err != nil {
			t.Fatal(err)
		}
		buckets := []string{out["RawBucket"], out["CleanBucket"], out["CuratedBucket"]}
		for range 2 {
			if err := e.DeleteBuckets(ctx, region, buckets); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.DeleteStack(ctx, region, name, name+"-delete-2"); err != nil {
			t.Fatalf("deleting an absent stack: %v", err)
		}
	})
}

// WithMarker returns tmpl with one more resource, a
// WaitConditionHandle named RolloutMarker<id>, as a new version: an update
// that adds a resource and replaces nothing.
func WithMarker(tmpl templates.Template, id string) templates.Template {
	body := strings.Replace(tmpl.Body, "\nResources:\n", "\nResources:\n  RolloutMarker"+id+":\n    Type: AWS::CloudFormation::WaitConditionHandle\n", 1)
	sum := sha256.Sum256([]byte(body))
	return templates.Template{Name: tmpl.Name, Body: body, Version: hex.EncodeToString(sum[:])[:12]}
}

// WithBucketName returns tmpl with a BucketName set on the bucket
// resource logicalID, as a new version: a change that replaces the
// bucket. It panics if the template has no such resource with Properties.
func WithBucketName(tmpl templates.Template, logicalID, bucketName string) templates.Template {
	anchor := "\n  " + logicalID + ":\n"
	i := strings.Index(tmpl.Body, anchor)
	props := strings.Index(tmpl.Body[max(i, 0):], "    Properties:\n")
	if i < 0 || props < 0 {
		panic("enginetest: no resource " + logicalID + " with Properties in " + tmpl.Name)
	}
	at := i + props + len("    Properties:\n")
	body := tmpl.Body[:at] + "      BucketName: " + bucketName + "\n" + tmpl.Body[at:]
	sum := sha256.Sum256([]byte(body))
	return templates.Template{Name: tmpl.Name, Body: body, Version: hex.EncodeToString(sum[:])[:12]}
}

// settleChangeSet polls the change set until it is no longer being
// created and returns it.
func settleChangeSet(t *testing.T, e provisioner.Engine, region, stack, name string) provisioner.ChangeSet {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		cs, err := e.DescribeChangeSet(context.Background(), region, stack, name)
		if err != nil {
			t.Fatal(err)
		}
		if cs.Status != provisioner.ChangeSetCreatePending && cs.Status != provisioner.ChangeSetCreateInProgress {
			return cs
		}
		if time.Now().After(deadline) {
			t.Fatalf("change set %s still %s", name, cs.Status)
		}
		<-tick.C
	}
}

// settle polls Stacks until the stack is no longer in progress and returns
// it; a zero Stack means it is gone.
func settle(t *testing.T, e provisioner.Engine, region, name string) provisioner.Stack {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		stacks, err := e.Stacks(context.Background(), region)
		if err != nil {
			t.Fatal(err)
		}
		st, ok := stacks[name]
		if !ok {
			return provisioner.Stack{}
		}
		switch st.Status {
		case provisioner.StackCreateInProgress, provisioner.StackDeleteInProgress, provisioner.StackRollbackInProgress,
			provisioner.StackUpdateInProgress, provisioner.StackUpdateRollbackInProgress, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS":
		default:
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stack %s still %s", name, st.Status)
		}
		<-tick.C
	}
}
