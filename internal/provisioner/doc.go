// Package provisioner brings each tenant's CDP data stack in line with the
// tenant, in every Region it chose, through an Engine: CloudFormation in AWS
// mode (package cfn), directories on disk in the embedded default
// (LocalEngine).
//
// It is a level-based reconciler in the controller-runtime mould. A job
// carries only a tenant ID; every run re-reads the desired state (the
// tenant) and the recorded actual state (its placements), takes the next
// step for each Region and snoozes while something is in flight. Actual
// stack status is read by one periodic poller for a whole Region at once
// (Engine.Stacks pages through DescribeStacks), so the number of
// CloudFormation calls per polling round grows with the number of Regions,
// not with the number of stacks in flight.
//
// Every step is safe to repeat: stack names are deterministic from the
// tenant ID, and every create and delete carries a ClientRequestToken built
// from the stack name and the placement's attempt, so a job that crashes
// and runs again never creates a second stack.
//
// Dedicated tenants get a stack of their own per Region (templates
// tenant-dedicated.yaml). Pooled tenants get no stack: the first pooled
// tenant in a Region creates that Region's pool stack (pool.yaml), and each
// pooled tenant's slice is a key prefix in the pool table, a prefix in the
// pool buckets and a Glue database of its own made through the Glue API, so
// thousands of pooled tenants fit in a Region without touching
// CloudFormation quotas.
//
// A tenant's own stack (a Placement) and a Region's pool (a Pool) share one
// StackRecord, and one routine claims, creates, replaces and observes both
// (stack.go); failTenant alone decides that a tenant failed. Offboarding is
// package offboarding's job: its last step calls Teardown until the
// tenant's stacks and slices are gone. The records stay, with each stack's
// ID, so a deleted stack's events can still be found.
package provisioner
