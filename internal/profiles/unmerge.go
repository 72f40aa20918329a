package profiles

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
)

// ErrNotMerged is returned by Unmerge for a profile that was not merged
// into the given one.
var ErrNotMerged = errors.New("profile was not merged into this one")

// Unmerge restores a profile merged into profileID as if the merge had
// never happened: the members that merge moved point back at it, so it
// gets back exactly its identifiers, the traits it set and its events.
// It returns the restored profile.
func (s *Service) Unmerge(ctx context.Context, tenant, profileID, mergedID string) (Profile, error) {
	for range maxResolveAttempts {
		p, err := s.profile(ctx, tenant, profileID)
		if err != nil {
			return Profile{}, err
		}
		if !slices.Contains(p.MergedProfileIDs, mergedID) {
			return Profile{}, ErrNotMerged
		}
		r := &resolver{store: s.store, tenant: tenant}
		members, err := r.profileMembers(ctx, p.ID)
		if err != nil {
			return Profile{}, err
		}
		// The merge record sits on the member that was the root when the
		// profile was merged (the current root, or a profile merged later).
		var record *Item
		var rec mergeData
		for _, m := range members {
			items, err := s.store.Query(ctx, QueryInput{PK: KeyPrefix(tenant) + "M#" + m.ID, Prefix: "G#"})
			if err != nil {
				return Profile{}, err
			}
			for _, it := range items {
				var d mergeData
				if err := json.Unmarshal(it.Data, &d); err != nil {
					return Profile{}, err
				}
				if d.MergedProfileID == mergedID {
					record, rec = &it, d
				}
			}
		}
		if record == nil {
			return Profile{}, ErrNotMerged
		}
		now := s.now().UTC()
		var ops []Op
		for _, m := range members {
			switch {
			case slices.Contains(rec.Members, m.ID):
				m.Root, m.UpdatedAt = mergedID, now
				it := m.item(tenant)
				ops = append(ops, Op{Put: &it, IfVersion: m.version})
			case m.ID == p.ID:
				k := memberKey(tenant, m.ID)
				ops = append(ops, Op{Put: &Item{PK: k.PK, SK: k.SK}, Check: true, IfVersion: m.version})
			}
		}
		ops = append(ops, Op{Delete: &Key{PK: record.PK, SK: record.SK}}, indexProfile(tenant, mergedID))
		for _, id := range []string{p.ID, mergedID} {
			k := reevaluateKey(tenant, id)
			ops = append(ops, Op{Put: &Item{PK: k.PK, SK: k.SK, Data: []byte(`{}`)}})
		}
		if s.outbox != nil {
			if ok, err := s.outbox.Subscribed(ctx, tenant, NoticeProfileUnmerged); err == nil && ok {
				d, _ := json.Marshal(map[string]any{"profile_id": p.ID, "unmerged_profile_id": mergedID})
				ops = append(ops, s.noticeOp(tenant, Notice{ID: transitionID(tenant, "unmerged", record.SK), Type: NoticeProfileUnmerged, ProfileID: p.ID, At: now, Data: d}))
			}
		}
		err = s.store.Transact(ctx, ops)
		if errors.Is(err, ErrConditionFailed) {
			continue
		}
		if err != nil {
			return Profile{}, err
		}
		s.countChanged(tenant)
		// Both profiles' segments are evaluated anew; one that fails here
		// is left to the pending evaluation its marker asks for.
		for _, id := range []string{p.ID, mergedID} {
			_ = s.evaluate(ctx, tenant, id, true)
		}
		return s.Profile(ctx, tenant, mergedID)
	}
	return Profile{}, errors.New("unmerge: too much contention")
}
