// Package tenants owns the tenant lifecycle: onboarding, the status state
// machine, updates, suspension and offboarding.
//
// It knows nothing of HTTP or of a particular database. It declares the
// storage port it needs (Store and Tx); the adapters under internal/store
// implement it for SQLite and PostgreSQL, and one contract suite
// (internal/store/storetest) proves both behave alike.
//
// Every change that has a side effect outside the database (provisioning,
// deprovisioning) inserts its durable job in the same transaction as the
// change itself, so an acknowledged change can never lose its job.
package tenants
