package profiles

import "testing"

// TestItemMemo: what an item remembers of its Data holds for those bytes
// alone; a copy given other Data, even of the same length, recalls nothing.
func TestItemMemo(t *testing.T) {
	it := Item{PK: "p", SK: setSK, Data: []byte(`{"m":"a"}`)}
	if it.recalled() != nil {
		t.Fatal("an item never given a memo recalls one")
	}
	set := &membershipSet{}
	it.remember(set)
	if copied := it; copied.recalled() != set {
		t.Fatal("a copy of the item, with its Data, does not recall its memo")
	}
	other := it
	other.Data = []byte(`{"m":"b"}`)
	if other.recalled() != nil {
		t.Fatal("an item given other Data recalls the memo of the old")
	}
	empty := Item{PK: "p"}
	empty.remember(set)
	if empty.recalled() != nil {
		t.Fatal("an item without Data recalls a memo")
	}
}
