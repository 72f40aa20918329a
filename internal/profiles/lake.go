package profiles

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Snapshot is a tenant's identity graph, traits and memberships as the
// profile store holds them at one moment: what the lake's curated zone
// (package lake) is derived from. It is read by background jobs only:
// two scans of the tenant's key range (members and identifier index), a
// query per merged profile and one per segment.
type Snapshot struct {
	Members     []SnapshotMember
	Identifiers []SnapshotIdentifier
	Merges      []SnapshotMerge
	Memberships []SnapshotMembership
}

// SnapshotMember is one member profile: Root is the profile it belongs to
// now (itself when it is a profile's root).
type SnapshotMember struct {
	ID        string
	Root      string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Event is the messageId of the event that made it ("" if unknown).
	Event  string
	Traits map[string]SnapshotTrait
}

// SnapshotTrait is a trait's value as a member last set it.
type SnapshotTrait struct {
	Value any
	At    time.Time
}

// SnapshotIdentifier is an identifier a member holds.
type SnapshotIdentifier struct {
	Member    string
	Type      string
	Value     string
	FirstSeen time.Time
	Event     string
}

// SnapshotMerge is a merge of a profile (and its members) into Root.
type SnapshotMerge struct {
	Root            string
	MergedProfileID string
	Members         []string
	At              time.Time
	Identifier      string
	Event           string
}

// SnapshotMembership is a profile's membership of a segment.
type SnapshotMembership struct {
	ProfileID string
	SegmentID string
	EnteredAt time.Time
}

// Snapshot reads the tenant's Snapshot. Erased profiles are gone from the
// store and so from it; suppressed identifiers are left out.
func (s *Service) Snapshot(ctx context.Context, tenant string) (Snapshot, error) {
	var snap Snapshot
	prefix := KeyPrefix(tenant)
	var roots []string
	err := s.scanAll(ctx, ScanInput{PKPrefix: prefix + "M#", SK: "M"}, func(it Item) error {
		m, err := readMember(it)
		if err != nil {
			return err
		}
		sm := SnapshotMember{ID: m.ID, Root: m.Root, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, Event: m.Event}
		if len(m.Traits) > 0 {
			sm.Traits = make(map[string]SnapshotTrait, len(m.Traits))
			for k, v := range m.Traits {
				sm.Traits[k] = SnapshotTrait{Value: v.V, At: v.At}
			}
		}
		snap.Members = append(snap.Members, sm)
		if m.Root == m.ID && !m.Single {
			roots = append(roots, m.ID)
		}
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot members: %w", err)
	}
	err = s.scanAll(ctx, ScanInput{PKPrefix: prefix + "I#", SK: "I"}, func(it Item) error {
		var d indexData
		if err := json.Unmarshal(it.Data, &d); err != nil {
			return fmt.Errorf("index item %s: %w", it.PK, err)
		}
		if d.Suppressed || d.Member == "" {
			return nil
		}
		typ, value, ok := strings.Cut(strings.TrimPrefix(it.PK, prefix+"I#"), "#")
		if !ok {
			return nil
		}
		snap.Identifiers = append(snap.Identifiers, SnapshotIdentifier{Member: d.Member, Type: typ, Value: value, FirstSeen: d.FirstSeen, Event: d.Event})
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot identifiers: %w", err)
	}
	for _, root := range roots {
		items, err := s.store.Query(ctx, QueryInput{PK: prefix + "M#" + root, Prefix: "G#"})
		if err != nil {
			return Snapshot{}, fmt.Errorf("snapshot merges: %w", err)
		}
		for _, it := range items {
			var d mergeData
			if err := json.Unmarshal(it.Data, &d); err != nil {
				return Snapshot{}, fmt.Errorf("merge item %s %s: %w", it.PK, it.SK, err)
			}
			snap.Merges = append(snap.Merges, SnapshotMerge{Root: root, MergedProfileID: d.MergedProfileID, Members: d.Members, At: d.At, Identifier: d.Identifier, Event: d.Event})
		}
	}
	for after := ""; ; {
		segs, err := s.Segments(ctx, tenant, after, 100)
		if err != nil {
			return Snapshot{}, fmt.Errorf("snapshot segments: %w", err)
		}
		for _, g := range segs {
			for from := ""; ; {
				ms, err := s.Members(ctx, tenant, g.ID, from, 1000)
				if err != nil {
					return Snapshot{}, fmt.Errorf("snapshot segment %s: %w", g.ID, err)
				}
				for _, m := range ms {
					snap.Memberships = append(snap.Memberships, SnapshotMembership{ProfileID: m.ProfileID, SegmentID: g.ID, EnteredAt: m.EnteredAt})
				}
				if len(ms) < 1000 {
					break
				}
				from = ms[len(ms)-1].ProfileID
			}
		}
		if len(segs) < 100 {
			break
		}
		after = segs[len(segs)-1].ID
	}
	return snap, nil
}

// scanAll calls fn with every item of a Scan, page by page.
func (s *Service) scanAll(ctx context.Context, in ScanInput, fn func(Item) error) error {
	for {
		items, next, err := s.store.Scan(ctx, in)
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if next == (Key{}) {
			return nil
		}
		in.After = next
	}
}
