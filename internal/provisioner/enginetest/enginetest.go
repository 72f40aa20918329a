// Package enginetest is the contract suite of provisioner.Engine: every
// engine (the local one, CloudFormation against the AWS emulator) must pass
// it, so the reconciler can treat them alike.
package enginetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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
		case provisioner.StackCreateInProgress, provisioner.StackDeleteInProgress, provisioner.StackRollbackInProgress:
		default:
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stack %s still %s", name, st.Status)
		}
		<-tick.C
	}
}
