package profiles

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Every Store adapter checks its input with these functions before any
// call: DynamoDB enforces some of it (one op per key, non-empty key
// attributes), tenant routing needs the rest, and the embedded store checks
// it too so that code that works there works on DynamoDB. See storetest's
// package doc.

// keyPrefix starts every partition key, followed by the tenant ID
// (tenantIDLen bytes) and '#'.
const (
	keyPrefix   = "TENANT#"
	tenantIDLen = len("ten_") + 26
)

// ErrInvalidInput wraps every validation error.
// ErrInvalidInput is returned by Store implementations for keys, items or
// ops that break the rules of the port (see storetest).
var ErrInvalidInput = errors.New("invalid store input")

// InvalidInput returns an ErrInvalidInput error saying what is wrong.
func InvalidInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// TenantOf returns the tenant ID that pk starts with ("TENANT#<id>#...").
func TenantOf(pk string) (string, error) {
	n := len(keyPrefix) + tenantIDLen
	if len(pk) <= n || pk[:len(keyPrefix)] != keyPrefix || pk[n] != '#' || !utf8.ValidString(pk) {
		return "", InvalidInput("key %q does not start with %s<tenant id>#", pk, keyPrefix)
	}
	id := pk[len(keyPrefix):n]
	if id[:4] != "ten_" {
		return "", InvalidInput("key %q does not start with %s<tenant id>#", pk, keyPrefix)
	}
	for i := 4; i < len(id); i++ {
		if c := id[i]; (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return "", InvalidInput("key %q does not start with %s<tenant id>#", pk, keyPrefix)
		}
	}
	return id, nil
}

func ValidateKey(k Key) (string, error) {
	tenant, err := TenantOf(k.PK)
	if err != nil {
		return "", err
	}
	if k.SK == "" || !utf8.ValidString(k.SK) {
		return "", InvalidInput("sort key %q of %s must be non-empty UTF-8", k.SK, k.PK)
	}
	return tenant, nil
}

func ValidateItem(it *Item) (string, error) {
	tenant, err := ValidateKey(Key{PK: it.PK, SK: it.SK})
	if err != nil {
		return "", err
	}
	if (it.GSI1PK == "") != (it.GSI1SK == "") {
		return "", InvalidInput("item %s/%s: GSI1PK and GSI1SK must be both set or both empty", it.PK, it.SK)
	}
	if it.GSI1PK != "" {
		gsiTenant, err := TenantOf(it.GSI1PK)
		if err != nil {
			return "", err
		}
		if gsiTenant != tenant {
			return "", InvalidInput("item %s/%s: GSI1PK belongs to another tenant", it.PK, it.SK)
		}
		if !utf8.ValidString(it.GSI1SK) {
			return "", InvalidInput("item %s/%s: GSI1SK is not UTF-8", it.PK, it.SK)
		}
	}
	if it.ExpiresAt < 0 {
		return "", InvalidInput("item %s/%s: negative ExpiresAt", it.PK, it.SK)
	}
	return tenant, nil
}

// OpKey returns the key an op writes or checks.
func OpKey(op *Op) Key {
	if op.Put != nil {
		return Key{PK: op.Put.PK, SK: op.Put.SK}
	}
	return *op.Delete
}

// ValidateOps checks a Transact call: the op count, each op, one tenant,
// no key twice.
func ValidateOps(ops []Op) error {
	if len(ops) > MaxTransactOps {
		return fmt.Errorf("%d ops: %w", len(ops), ErrTooManyOps)
	}
	var tenant string
	for i := range ops {
		op := &ops[i]
		if (op.Put == nil) == (op.Delete == nil) {
			return InvalidInput("op %d: exactly one of Put and Delete must be set", i)
		}
		if n := btoi(op.IfAbsent) + btoi(op.IfVersion != 0) + btoi(op.IfExists); n > 1 {
			return InvalidInput("op %d: IfAbsent, IfVersion and IfExists are exclusive", i)
		}
		if op.Check && !op.Conditional() {
			return InvalidInput("op %d: a Check needs IfAbsent, IfVersion or IfExists", i)
		}
		if op.IfExists && op.Put != nil && !op.Check {
			return InvalidInput("op %d: IfExists is for Check and Delete ops", i)
		}
		var t string
		var err error
		if op.Put != nil {
			t, err = ValidateItem(op.Put)
		} else {
			t, err = ValidateKey(*op.Delete)
		}
		if err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
		if i == 0 {
			tenant = t
		} else if t != tenant {
			return InvalidInput("op %d: all ops of a transaction must belong to one tenant", i)
		}
	}
	if len(ops) <= 16 { // quadratic beats a map for the usual few ops
		for i := range ops {
			ki := OpKey(&ops[i])
			for j := range i {
				if OpKey(&ops[j]) == ki {
					return InvalidInput("ops %d and %d both name %s/%s", j, i, ki.PK, ki.SK)
				}
			}
		}
		return nil
	}
	seen := make(map[Key]int, len(ops))
	for i := range ops {
		k := OpKey(&ops[i])
		if j, dup := seen[k]; dup {
			return InvalidInput("ops %d and %d both name %s/%s", j, i, k.PK, k.SK)
		}
		seen[k] = i
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
