package sqlitestore

import "github.com/cairn-cdp/cairn/internal/profiles"

// knownCap is how many items a generation of known holds: two generations
// hold at most twice as many, about 270 bytes each with their keys (18 MB).
const knownCap = 32768

// known is what the writer knows of stored items, so that a check or an
// IfVersion put need not read an item it read or wrote recently. The
// writer is the only one to change the file (see the package doc), so what
// it read or wrote stays true until it changes the item again, or until a
// rollback undoes what it wrote.
//
// It is exact, never a guess: every statement that changes an item either
// records its new state (set) or drops the item (forget), and a rollback,
// to a savepoint or of the whole transaction, or a sweep, drops everything
// (reset). An entry may therefore describe a change not yet committed:
// that is the state every later statement of the writer's transaction
// sees, and a rollback drops it.
//
// Its size is bounded by two generations: entries go to cur; when cur is
// full it becomes old, and an entry read from old moves back to cur.
type known struct {
	cur, old map[profiles.Key]stored
}

// get returns what is known of k.
func (kn *known) get(k profiles.Key) (stored, bool) {
	if st, ok := kn.cur[k]; ok {
		return st, true
	}
	st, ok := kn.old[k]
	if ok {
		kn.set(k, st)
	}
	return st, ok
}

// set records st as k's stored state.
func (kn *known) set(k profiles.Key, st stored) {
	if kn.cur == nil {
		kn.cur = make(map[profiles.Key]stored)
	}
	if _, ok := kn.cur[k]; !ok && len(kn.cur) >= knownCap {
		kn.old, kn.cur = kn.cur, make(map[profiles.Key]stored, knownCap)
	}
	kn.cur[k] = st
}

// forget drops what is known of k: its state after the statement just run
// is not known.
func (kn *known) forget(k profiles.Key) {
	delete(kn.cur, k)
	delete(kn.old, k)
}

// reset drops everything known.
func (kn *known) reset() {
	kn.cur, kn.old = nil, nil
}
