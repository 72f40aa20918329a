// Package storetest is the contract suite of store.Backend: one set of
// tests that every adapter (SQLite, PostgreSQL) must pass, so that the
// server behaves the same on either database. Adapters call Run from their
// own tests.
//
// Each test gets a database of its own and runs in parallel with the
// others. Nothing sleeps: background work is awaited on channels with a
// generous timeout.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/store"
)

// Harness tells Run how to get databases for one adapter.
type Harness struct {
	// NewDatabase returns the address of a new database of the test's own
	// (a file path for SQLite, a URL for PostgreSQL), cleaned up when the
	// test ends. It may be empty or already migrated.
	NewDatabase func(t *testing.T) string
	// Open opens a Backend on the database at addr, failing t on error.
	// Run migrates and closes it. Run opens the same addr more than once
	// to test that data survives a restart.
	Open func(t *testing.T, addr string) store.Backend
}

// waitTimeout bounds every wait for background work. It is generous: it
// only matters when a test is about to fail.
const waitTimeout = 30 * time.Second

// Run runs the contract suite against the adapter h opens.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"TenantRoundTrip", testTenantRoundTrip},
		{"LakeWatermarks", testLakeWatermarks},
		{"LakeErased", testLakeErased},
		{"LakeQueries", testLakeQueries},
		{"TenantNotFound", testTenantNotFound},
		{"TenantSlugTaken", testTenantSlugTaken},
		{"TenantUpdateVersion", testTenantUpdateVersion},
		{"TenantConcurrentChanges", testTenantConcurrentChanges},
		{"MarkFailedAtVersion", testMarkFailedAtVersion},
		{"TenantListFilters", testTenantListFilters},
		{"TenantListPagingWhileInserting", testTenantListPagingWhileInserting},
		{"TxRollback", testTxRollback},
		{"JobInsert", testJobInsert},
		{"ServiceOnboard", testServiceOnboard},
		{"Workers", testWorkers},
		{"WorkersProvisionOnboardedTenant", testWorkersProvisionOnboardedTenant},
		{"IdempotencyClaim", testIdempotencyClaim},
		{"IdempotencyDeleteExpired", testIdempotencyDeleteExpired},
		{"IdempotencyConcurrentClaims", testIdempotencyConcurrentClaims},
		{"PlacementEnsure", testPlacementEnsure},
		{"PlacementGetList", testPlacementGetList},
		{"TenantPlacements", testTenantPlacements},
		{"PlacementUpdate", testPlacementUpdate},
		{"PlacementOutputs", testPlacementOutputs},
		{"PlacementListInFlight", testPlacementListInFlight},
		{"PlacementConcurrentEnsure", testPlacementConcurrentEnsure},
		{"PlacementConcurrentUpdate", testPlacementConcurrentUpdate},
		{"Pool", testPool},
		{"PlacementClaimFencing", testPlacementClaimFencing},
		{"PoolClaimFencing", testPoolClaimFencing},
		{"TenantsStalled", testTenantsStalled},
		{"StackEvents", testStackEvents},
		{"OffboardingSteps", testOffboardingSteps},
		{"Principals", testPrincipals},
		{"GrantRoundTrip", testGrantRoundTrip},
		{"GrantInsertIdempotent", testGrantInsertIdempotent},
		{"GrantConcurrentInsert", testGrantConcurrentInsert},
		{"GrantGetOtherTenant", testGrantGetOtherTenant},
		{"GrantUpdate", testGrantUpdate},
		{"GrantConcurrentUpdate", testGrantConcurrentUpdate},
		{"GrantList", testGrantList},
		{"Audit", testAudit},
		{"AuditWithChange", testAuditWithChange},
		{"GrantTx", testGrantTx},
		{"SourceRoundTrip", testSourceRoundTrip},
		{"SourceNameTaken", testSourceNameTaken},
		{"SourceConcurrentInsert", testSourceConcurrentInsert},
		{"SourceByKeyHash", testSourceByKeyHash},
		{"SourceRotate", testSourceRotate},
		{"SourceUpdateVersion", testSourceUpdateVersion},
		{"SourceList", testSourceList},
		{"SourceRevokeAll", testSourceRevokeAll},
		{"SourceAllowedOrigins", testSourceAllowedOrigins},
		{"SigningKeysEnsure", testSigningKeysEnsure},
		{"SigningKeysRotate", testSigningKeysRotate},
		{"ReplicaLeases", testReplicaLeases},
		{"WebhookEndpointRoundTrip", testWebhookEndpointRoundTrip},
		{"WebhookEndpointLimit", testWebhookEndpointLimit},
		{"WebhookEndpointUpdate", testWebhookEndpointUpdate},
		{"WebhookEndpointFailing", testWebhookEndpointFailing},
		{"WebhookEndpointReseal", testWebhookEndpointReseal},
		{"WebhookDeliveryUnique", testWebhookDeliveryUnique},
		{"WebhookDeliveryClaimOrder", testWebhookDeliveryClaimOrder},
		{"WebhookDeliveryLeaseTakeover", testWebhookDeliveryLeaseTakeover},
		{"WebhookDeliveryLeaseRenew", testWebhookDeliveryLeaseRenew},
		{"WebhookDeliveryConcurrentClaims", testWebhookDeliveryConcurrentClaims},
		{"WebhookDeliveryRetryRecover", testWebhookDeliveryRetryRecover},
		{"FleetEventOutbox", testFleetEventOutbox},
		{"FleetEventWithTenantChange", testFleetEventWithTenantChange},
		{"FleetEventWithStackFailure", testFleetEventWithStackFailure},
		{"FleetRelay", testFleetRelay},
		{"AttentionList", testAttentionList},
		{"TierMigrations", testTierMigrations},
		{"UsageAdd", testUsageAdd},
		{"UsageTotals", testUsageTotals},
		{"UsageMeter", testUsageMeter},
		{"UsageDailyReport", testUsageDailyReport},
		{"UsageSamples", testUsageSamples},
		{"UsageIndexBuilds", testUsageIndexBuilds},
		{"Rollouts", testRollouts},
		{"RolloutLeases", testRolloutLeases},
		{"RolloutCandidates", testRolloutCandidates},
		{"Plans", testPlans},
		{"PlanService", testPlanService},
		{"Restart", testRestart},
		{"MigrateTwice", testMigrateTwice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, h)
		})
	}
}

// open opens a migrated Backend on addr, closed when t ends.
func open(t *testing.T, h Harness, addr string) store.Backend {
	t.Helper()
	b := h.Open(t, addr)
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := b.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return b
}

// newBackend opens a migrated Backend on a new database.
func newBackend(t *testing.T, h Harness) store.Backend {
	t.Helper()
	return open(t, h, h.NewDatabase(t))
}

// receive waits for a value on ch, failing t after waitTimeout.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
	case <-t.Context().Done():
		t.Fatalf("test ended waiting for %s", what)
	}
	panic("unreachable")
}

// stopOnCleanup stops workers when t ends, before the backend closes.
func stopOnCleanup(t *testing.T, stop func(context.Context) error) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := stop(ctx); err != nil {
			t.Errorf("stop workers: %v", err)
		}
	})
}
