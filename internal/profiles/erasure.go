package profiles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/ids"
)

// Erasure statuses.
const (
	ErasurePending   = "pending"
	ErasureRunning   = "running"
	ErasureCompleted = "completed"
)

// ErrErasureNotFound: no erasure with the ID for the tenant.
var ErrErasureNotFound = errors.New("erasure not found")

// Erasure is a GDPR erasure of a profile and its progress.
type Erasure struct {
	ID        string    `json:"id"`
	ProfileID string    `json:"profile_id"`
	Suppress  bool      `json:"suppress"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// What the erasure found, recorded before anything is deleted so that a
	// run that crashes can be run again to the same end.
	Members     []string            `json:"members"`
	Identifiers []Identifier        `json:"identifiers"`
	Objects     map[string][]string `json:"objects"` // raw zone object → messageIds
	// Progress.
	ItemsDeleted     int `json:"items_deleted"`
	ObjectsRewritten int `json:"objects_rewritten"`
	LinesRemoved     int `json:"lines_removed"`
}

func erasureKey(tenant, id string) Key { return Key{PK: KeyPrefix(tenant) + "X#" + id, SK: "X"} }

// ErasureArgs is the durable job that carries an erasure out. It holds
// what the erasure record says, so that the job can write the record
// itself if a crash came between queueing it and writing the record.
type ErasureArgs struct {
	TenantID  string    `json:"tenant_id"`
	ErasureID string    `json:"erasure_id"`
	ProfileID string    `json:"profile_id,omitempty"`
	Suppress  bool      `json:"suppress,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Kind implements river.JobArgs.
func (ErasureArgs) Kind() string { return "profile_erasure" }

func (s *Service) saveErasure(ctx context.Context, tenant string, e Erasure) error {
	e.UpdatedAt = s.now().UTC()
	d, _ := json.Marshal(e)
	k := erasureKey(tenant, e.ID)
	return s.store.Transact(ctx, []Op{{Put: &Item{PK: k.PK, SK: k.SK, Data: d}}})
}

// StartErasure starts an erasure of the profile (following a merged-away
// ID to its survivor): queue makes its job durable, then the erasure is
// recorded as pending. There is never a record without its job; a job
// without its record (a crash between the two) writes the record itself.
func (s *Service) StartErasure(ctx context.Context, tenant, profileID string, suppress bool, queue func(context.Context, ErasureArgs) error) (Erasure, error) {
	p, err := s.profile(ctx, tenant, profileID)
	if err != nil {
		return Erasure{}, err
	}
	now := s.now().UTC()
	e := Erasure{ID: ids.New("era_"), ProfileID: p.ID, Suppress: suppress, Status: ErasurePending, CreatedAt: now, UpdatedAt: now}
	if err := queue(ctx, ErasureArgs{TenantID: tenant, ErasureID: e.ID, ProfileID: e.ProfileID, Suppress: suppress, CreatedAt: e.CreatedAt}); err != nil {
		return Erasure{}, err
	}
	return e, s.recordErasure(ctx, tenant, e)
}

// recordErasure writes a new erasure's record unless its job (or
// StartErasure) did first.
func (s *Service) recordErasure(ctx context.Context, tenant string, e Erasure) error {
	e.UpdatedAt = s.now().UTC()
	d, _ := json.Marshal(e)
	k := erasureKey(tenant, e.ID)
	err := s.store.Transact(ctx, []Op{{Put: &Item{PK: k.PK, SK: k.SK, Data: d}, IfAbsent: true}})
	if errors.Is(err, ErrConditionFailed) {
		return nil
	}
	return err
}

// RunErasure is the erasure job: it records the erasure if it is not yet,
// then carries it out (Erase).
func (s *Service) RunErasure(ctx context.Context, args ErasureArgs) error {
	if args.ProfileID != "" {
		e := Erasure{ID: args.ErasureID, ProfileID: args.ProfileID, Suppress: args.Suppress, Status: ErasurePending, CreatedAt: args.CreatedAt}
		if err := s.recordErasure(ctx, args.TenantID, e); err != nil {
			return err
		}
	}
	return s.Erase(ctx, args.TenantID, args.ErasureID)
}

// GetErasure returns an erasure's progress.
func (s *Service) GetErasure(ctx context.Context, tenant, id string) (Erasure, error) {
	it, ok, err := s.store.Get(ctx, erasureKey(tenant, id))
	if err != nil {
		return Erasure{}, err
	}
	if !ok {
		return Erasure{}, ErrErasureNotFound
	}
	var e Erasure
	return e, json.Unmarshal(it.Data, &e)
}

// Erase carries an erasure out: it removes the profile, its merged members,
// their identifiers, events, merges and memberships from the store, purges
// their events from the raw zone (rewriting the objects that hold them)
// and, with Suppress, blocks the identifiers so later events naming them
// are dropped. It is safe to run again after a crash.
func (s *Service) Erase(ctx context.Context, tenant, id string) error {
	e, err := s.GetErasure(ctx, tenant, id)
	if err != nil || e.Status == ErasureCompleted {
		return err
	}
	if e.Status == ErasurePending {
		if err := s.survey(ctx, tenant, &e); err != nil {
			return err
		}
		e.Status = ErasureRunning
		if err := s.saveErasure(ctx, tenant, e); err != nil {
			return err
		}
	}
	// Identifiers first, so that no new event finds the members:
	// suppressed ones are marked so in the index, the others removed.
	if e.Suppress {
		var items []Item
		for _, id := range e.Identifiers {
			items = append(items, suppressedIndex(tenant, id, s.now().UTC()))
		}
		if err := s.store.PutBatch(ctx, items); err != nil {
			return fmt.Errorf("suppress: %w", err)
		}
	} else {
		var keys []Key
		for _, id := range e.Identifiers {
			keys = append(keys, indexKey(tenant, id))
		}
		if err := s.deleteAll(ctx, &e, keys); err != nil {
			return err
		}
	}
	if err := s.leaveAudiences(ctx, tenant, e); err != nil {
		return err
	}
	// Then the members' partitions. An event that found a member before
	// its identifiers went can still be recorded until the member's own
	// item goes (every record checks it), so a second pass finds what
	// raced the first; its raw copies join the erasure before its items go.
	for {
		var keys []Key
		var found []string // members whose own item is still there
		grew := false
		for _, m := range e.Members {
			items, err := s.store.Query(ctx, QueryInput{PK: KeyPrefix(tenant) + "M#" + m})
			if err != nil {
				return err
			}
			for _, it := range items {
				if it.SK == "M" {
					found = append(found, m)
					continue
				}
				keys = append(keys, Key{PK: it.PK, SK: it.SK})
				if strings.HasPrefix(it.SK, "E#") {
					added, err := s.noteObjects(ctx, tenant, &e, it)
					if err != nil {
						return err
					}
					grew = grew || added
				}
			}
		}
		if len(keys) == 0 && len(found) == 0 {
			break
		}
		if grew {
			if err := s.saveErasure(ctx, tenant, e); err != nil {
				return err
			}
		}
		if err := s.deleteAll(ctx, &e, keys); err != nil {
			return err
		}
		// A member's own item goes last, and with its entry in the profile
		// index (a root has one) in one transaction: the index never counts
		// a profile that is gone, nor misses one that is not.
		for chunk := range slices.Chunk(found, MaxTransactOps/2) {
			ops := make([]Op, 0, 2*len(chunk))
			for _, m := range chunk {
				k := memberKey(tenant, m)
				ops = append(ops, Op{Delete: &k}, unindexProfile(tenant, m))
			}
			if err := s.store.Transact(ctx, ops); err != nil {
				return fmt.Errorf("delete members: %w", err)
			}
			e.ItemsDeleted += len(chunk)
		}
		if len(found) > 0 {
			s.countChanged(tenant)
		}
	}
	for object, ids := range e.Objects {
		erased := map[string]bool{}
		for _, id := range ids {
			erased[id] = true
		}
		n, err := s.raw.Rewrite(ctx, tenant, object, func(line []byte) bool {
			var ev struct {
				MessageID string `json:"messageId"`
			}
			return json.Unmarshal(line, &ev) != nil || !erased[ev.MessageID]
		})
		if err != nil {
			return fmt.Errorf("rewrite %s: %w", object, err)
		}
		e.ObjectsRewritten++
		e.LinesRemoved += n
	}
	// The finished record keeps its counts, not what it erased.
	e.Status = ErasureCompleted
	e.Members, e.Identifiers, e.Objects = nil, nil, nil
	return s.saveErasure(ctx, tenant, e)
}

// survey records what the erasure will remove.
func (s *Service) survey(ctx context.Context, tenant string, e *Erasure) error {
	r := &resolver{store: s.store, tenant: tenant}
	members, err := r.profileMembers(ctx, e.ProfileID)
	if err != nil {
		return err
	}
	e.Objects = map[string][]string{}
	for _, m := range members {
		e.Members = append(e.Members, m.ID)
		ids, err := r.memberIdentifiers(ctx, m.ID)
		if err != nil {
			return err
		}
		for _, id := range ids {
			e.Identifiers = append(e.Identifiers, Identifier{Type: id.Type, Value: id.Value})
		}
		events, err := s.store.Query(ctx, QueryInput{PK: KeyPrefix(tenant) + "M#" + m.ID, Prefix: "E#"})
		if err != nil {
			return err
		}
		for _, it := range events {
			if _, err := s.noteObjects(ctx, tenant, e, it); err != nil {
				return err
			}
		}
	}
	return nil
}

// noteObjects adds to the erasure the raw zone objects that hold copies of
// the event item it (the one it was recorded from, and those its dedup
// marker names), and reports whether any was new.
func (s *Service) noteObjects(ctx context.Context, tenant string, e *Erasure, it Item) (bool, error) {
	var d eventData
	if err := json.Unmarshal(it.Data, &d); err != nil {
		return false, fmt.Errorf("event item %s %s: %w", it.PK, it.SK, err)
	}
	if slices.Contains(e.Objects[d.Object], d.MessageID) {
		return false, nil // surveyed already
	}
	objects := []string{d.Object}
	if marker, ok, err := s.store.Get(ctx, dedupKey(tenant, d.MessageID)); err != nil {
		return false, err
	} else if ok {
		var dd dedupData
		if err := json.Unmarshal(marker.Data, &dd); err != nil {
			return false, err
		}
		objects = append(objects, dd.Objects...)
	}
	if e.Objects == nil {
		e.Objects = map[string][]string{}
	}
	added := false
	for _, o := range objects {
		if o != "" && !slices.Contains(e.Objects[o], d.MessageID) {
			e.Objects[o] = append(e.Objects[o], d.MessageID)
			added = true
		}
	}
	return added, nil
}

// deleteAll deletes keys, MaxTransactOps a transaction, counting them in
// the erasure's progress.
func (s *Service) deleteAll(ctx context.Context, e *Erasure, keys []Key) error {
	for chunk := range slices.Chunk(keys, MaxTransactOps) {
		ops := make([]Op, len(chunk))
		for i := range chunk {
			ops[i] = Op{Delete: &chunk[i]}
		}
		if err := s.store.Transact(ctx, ops); err != nil {
			return fmt.Errorf("delete items: %w", err)
		}
		e.ItemsDeleted += len(ops)
	}
	return nil
}
