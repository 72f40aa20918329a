package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// modelCalls is how many random calls testModel makes.
const modelCalls = 250

// modelItem is what the model holds of a stored item.
type modelItem struct {
	it profiles.Item // Version included
	// unpinned is set when the version is not pinned: an unconditional
	// put over an expired item (see the package doc). The store's version
	// is taken when the item is next read.
	unpinned bool
}

// testModel makes random calls on a few keys (Transacts of puts, deletes
// and checks, conditional or not, some of them failing halfway; PutBatch)
// and compares each outcome, and then every key's stored item, with a
// model of the contract. A store that remembers what it wrote (a cache of
// versions, say) and fails to forget a write it undid answers a later
// condition wrongly here.
func testModel(t *testing.T, f *fixture) {
	seed := uint64(now())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	keys := []profiles.Key{f.key("PROFILE#a", "META"), f.key("PROFILE#a", "SET"), f.key("PROFILE#b", "META"), f.key("PROFILE#c", "AGG")}
	model := map[profiles.Key]*modelItem{}
	exists := func(k profiles.Key) bool {
		m := model[k]
		return m != nil && (m.it.ExpiresAt == 0 || m.it.ExpiresAt >= now())
	}
	version := func(k profiles.Key) int64 {
		if m := model[k]; m != nil {
			return m.it.Version
		}
		return 0
	}
	newItem := func(k profiles.Key, call int) profiles.Item {
		it := profiles.Item{PK: k.PK, SK: k.SK, Data: fmt.Appendf(nil, `{"call":%d}`, call)}
		switch rng.IntN(4) {
		case 0:
			it.GSI1PK, it.GSI1SK = f.pk("GSI#x"), fmt.Sprint(call)
		case 1:
			it.GSI1PK, it.GSI1SK = f.pk("GSI#y"), "same"
		}
		switch rng.IntN(8) {
		case 0:
			it.ExpiresAt = now() - 3600 // expired at once
		case 1, 2:
			it.ExpiresAt = now() + 3600
		}
		return it
	}
	// condition gives op a random condition on k, true or false.
	condition := func(op *profiles.Op, k profiles.Key, checkOrDelete bool) {
		switch rng.IntN(5) {
		case 0: // unconditional
		case 1:
			op.IfAbsent = true
		case 2:
			if checkOrDelete {
				op.IfExists = true
				return
			}
			fallthrough
		default:
			// Mostly the stored version, sometimes one off.
			op.IfVersion = max(1, version(k)+int64(rng.IntN(5))/3-int64(rng.IntN(5))/4)
		}
	}
	holds := func(op *profiles.Op, k profiles.Key) bool {
		switch {
		case op.IfAbsent:
			return !exists(k)
		case op.IfExists:
			return exists(k)
		case op.IfVersion != 0:
			return exists(k) && version(k) == op.IfVersion
		}
		return true
	}

	for call := 1; call <= modelCalls; call++ {
		if rng.IntN(10) == 0 {
			k := keys[rng.IntN(len(keys))]
			it := newItem(k, call)
			if err := f.s.PutBatch(f.ctx, []profiles.Item{it}); err != nil {
				t.Fatalf("call %d: PutBatch: %v", call, err)
			}
			it.Version = 1
			model[k] = &modelItem{it: it}
			compareModel(t, f, call, keys, model)
			continue
		}
		var ops []profiles.Op
		for _, i := range rng.Perm(len(keys))[:1+rng.IntN(3)] {
			k := keys[i]
			var op profiles.Op
			switch rng.IntN(6) {
			case 0:
				op.Delete = &k
				condition(&op, k, true)
			case 1:
				it := newItem(k, call)
				op.Put, op.Check = &it, true
				condition(&op, k, true)
				if !op.Conditional() {
					op.IfAbsent = true
				}
			default:
				it := newItem(k, call)
				op.Put = &it
				condition(&op, k, false)
			}
			ops = append(ops, op)
		}
		want := true
		for i := range ops {
			want = want && holds(&ops[i], profiles.OpKey(&ops[i]))
		}
		err := f.s.Transact(f.ctx, ops)
		switch {
		case want && err != nil || !want && !errors.Is(err, profiles.ErrConditionFailed):
			t.Fatalf("call %d: Transact(%s) = %v, want conditions to hold: %v", call, describeOps(ops), err, want)
		case !want:
			compareModel(t, f, call, keys, model)
			continue
		}
		for i := range ops {
			op := &ops[i]
			k := profiles.OpKey(op)
			switch {
			case op.Check:
			case op.Delete != nil:
				delete(model, k)
			default:
				it := *op.Put
				m := &modelItem{it: it}
				switch {
				case op.IfAbsent, !exists(k) && model[k] == nil:
					m.it.Version = 1
				case op.IfVersion != 0, exists(k):
					m.it.Version = version(k) + 1
				default: // over an expired item
					m.unpinned = true
				}
				model[k] = m
			}
		}
		compareModel(t, f, call, keys, model)
	}
}

// compareModel fails unless every key's stored item is the model's.
func compareModel(t *testing.T, f *fixture, call int, keys []profiles.Key, model map[profiles.Key]*modelItem) {
	t.Helper()
	for _, k := range keys {
		got, ok := f.get(t, k)
		m := model[k]
		live := m != nil && (m.it.ExpiresAt == 0 || m.it.ExpiresAt >= now())
		if ok != live {
			t.Fatalf("after call %d: %s/%s stored: %v, want %v", call, k.PK, k.SK, ok, live)
		}
		if !ok {
			continue
		}
		if m.unpinned {
			m.it.Version, m.unpinned = got.Version, false
		}
		want := m.it
		if got.Version != want.Version || got.GSI1PK != want.GSI1PK || got.GSI1SK != want.GSI1SK ||
			got.ExpiresAt != want.ExpiresAt || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("after call %d: %s/%s:\n got %+v (data %s)\nwant %+v (data %s)", call, k.PK, k.SK, got, got.Data, want, want.Data)
		}
	}
}

// describeOps names each op's kind, key and condition, for a failure.
func describeOps(ops []profiles.Op) string {
	var b bytes.Buffer
	for i := range ops {
		op := &ops[i]
		kind := "put"
		switch {
		case op.Check:
			kind = "check"
		case op.Delete != nil:
			kind = "delete"
		}
		k := profiles.OpKey(op)
		fmt.Fprintf(&b, "[%s %s/%s ifAbsent=%v ifExists=%v ifVersion=%d]", kind, k.PK, k.SK, op.IfAbsent, op.IfExists, op.IfVersion)
	}
	return b.String()
}
