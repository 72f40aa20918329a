// Package lake refines each tenant's raw zone into the clean and curated
// zones of its data lake and keeps their catalog.
//
// The raw zone is the log, laid out as its contract says
// (docs/raw-zone.md): gzip NDJSON objects, one Segment-shaped event a line,
// under events/dt=YYYY-MM-DD/hh=HH/ of the tenant's raw bucket (and
// prefix), the hour they arrived. Object names mean nothing to the
// refinery: an event's received_at is when its object was written.
//
// The clean zone holds one Parquet table per event type (Tables: tracks,
// identifies, pages, screens, groups, aliases), typed, deduplicated by
// message ID, each event's profile resolved, zstd-compressed, partitioned
// like the raw zone: a clean partition is refined from the raw partition of
// the same date and hour, so refining a partition again (late data, an
// erasure) replaces exactly it. The curated zone holds the identity graph,
// identifiers, traits and memberships in the shapes Segment's Profiles Sync
// lands in warehouses, and daily event counts, rebuilt whole from the
// profile store's Snapshot and the clean zone.
//
// Every transformation is one SQL text (Transformations), rendered for an
// engine's Dialect: DuckDB in the embedded default (package lake/duckdb),
// Athena's Trino SQL in AWS mode (package lake/athena, which runs them in
// the tenant's Athena workgroup over its Glue tables). An Engine runs them; Service decides
// what to run: it is level-based (Refine compares the raw zone with the
// watermarks in the Store and refines what changed) and resumable, driven
// by durable jobs per tenant.
//
// The refinery classifies the tables it writes for personal data, through
// Config.Classifier (cmd/server hands the samples to pii.Classify with the
// tenant's identifier types, and the findings to the grants broker, which
// keeps them as the columns' LF-tags cairn:pii and cairn:pii-kind; grants
// on {"cairn:pii": ["false"]} then select the columns without personal
// data). At the end of every run it samples, through Engine.Sample, at
// most SampleRows rows of each table that changed since its last
// classification: the clean partitions refined since (the latest
// SamplePartitions of them), a curated table whose rows or bytes changed.
// DuckDB reads the Parquet files; in AWS mode it is one Athena query over
// the partitions named, which reads no more than the limit, as Cairn
// reads no Parquet itself. What was classified is remembered in memory (a
// restart classifies every table once more), and a run whose
// classification failed fails, so the next one classifies it again.
// Findings only add: a sample without a column's personal data does not
// take its tag away. The embedded engine lists its tables in the local
// catalog (duckdb.Engine.CatalogFile), as the Athena engine does in Glue,
// so the grants broker finds them.
//
// Erasure reaches the zones through Service.EraseZones: the erased profile
// and message IDs join the tenant's erased-ID filter, which every refinery
// run applies, before the partitions holding them are rewritten.
//
// Tenants query their own clean and curated tables with read-only SQL
// through QueryService: asynchronous as Athena is, each query stored
// (QueryStore) and run by a durable job on a Querier, DuckDB's sandbox in
// the embedded default (lake/duckdb.Querier), Athena with the tenant's own
// credentials in AWS mode (lake/athena.Querier), its result a file.
package lake
