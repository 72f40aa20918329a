package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/migration"
	"github.com/cairn-cdp/cairn/internal/migration/awszones"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/dynamostore"
	"github.com/cairn-cdp/cairn/internal/profiles/rawzone"
	"github.com/cairn-cdp/cairn/internal/profiles/sqlitestore"
	"github.com/cairn-cdp/cairn/internal/store/backend"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// newProfileStores opens the profile store and the raw zone the
// configuration names: an embedded SQLite file and the local zones by
// default, DynamoDB and S3 with --cloud aws. Concurrent appends of one
// tenant to its raw zone are merged into one object (rawzone.Coalescer).
func newProfileStores(ctx context.Context, cfg *config, loc profiles.PlacementLocator, settings awsclient.Settings) (profiles.Store, profiles.RawZone, func() error, error) {
	if cfg.Cloud == "aws" {
		return newAWSProfileStores(ctx, loc, settings)
	}
	// Created here, private, before the store opens it: SQLite would create
	// it, and its -wal and -shm files, readable by all under umask 022.
	path := filepath.Join(cfg.DataDir, sqlitestore.FileName)
	if err := backend.PrivateDatabaseFile(path); err != nil {
		return nil, nil, nil, fmt.Errorf("profile store: %w", err)
	}
	st, err := sqlitestore.Open(ctx, path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("profile store: %w", err)
	}
	raw := &rawzone.Local{Root: filepath.Join(cfg.DataDir, "zones"), Locate: loc.RawZone}
	return st, &rawzone.Coalescer{Zone: raw}, st.Close, nil
}

func newAWSProfileStores(ctx context.Context, loc profiles.PlacementLocator, settings awsclient.Settings) (profiles.Store, profiles.RawZone, func() error, error) {
	st, err := dynamostore.New(ctx, dynamostore.Config{AWS: settings, Tables: loc.Table})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("profile store: %w", err)
	}
	raw, err := rawzone.NewS3(ctx, rawzone.Config{AWS: settings, Locate: loc.RawZone})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("raw zone: %w", err)
	}
	return st, &rawzone.Coalescer{Zone: raw}, func() error { return nil }, nil
}

// newMigrationZones returns what copies a tenant's data between its
// placements when it moves between tiers: the local zones' directories by
// default; with --cloud aws, its profile items between DynamoDB tables
// (through st, the DynamoDB profile store) and its S3 objects and Glue
// tables.
func newMigrationZones(ctx context.Context, cfg *config, st profiles.Store, settings awsclient.Settings) (migration.Zones, error) {
	if cfg.Cloud != "aws" {
		return migration.LocalZones{Root: filepath.Join(cfg.DataDir, "zones")}, nil
	}
	items, ok := st.(*dynamostore.Store)
	if !ok {
		return nil, fmt.Errorf("migration zones: the profile store is %T, not DynamoDB", st)
	}
	zones, err := awszones.New(ctx, awszones.Config{AWS: settings, Items: items})
	if err != nil {
		return nil, fmt.Errorf("migration zones: %w", err)
	}
	return zones, nil
}

// noticeOutbox hands the profile store's notices (segment transitions,
// profile changes) to the webhook deliveries.
type noticeOutbox struct{ w *webhooks.Service }

var _ profiles.Outbox = noticeOutbox{}

func (o noticeOutbox) Subscribed(ctx context.Context, tenant, typ string) (bool, error) {
	return o.w.Subscribed(ctx, tenant, typ)
}

func (o noticeOutbox) Deliver(ctx context.Context, tenant string, ns []profiles.Notice) error {
	evs := make([]webhooks.Event, len(ns))
	for i, n := range ns {
		evs[i] = webhooks.Event{ID: n.ID, Type: n.Type, TenantID: tenant, ProfileID: n.ProfileID, SegmentID: n.SegmentID, At: n.At, Data: n.Data, Traits: n.Traits}
	}
	return o.w.Enqueue(ctx, evs)
}
