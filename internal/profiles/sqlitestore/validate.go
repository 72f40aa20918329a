package sqlitestore

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// The validation below is the same in dynamostore, where DynamoDB enforces
// some of it (one op per key, non-empty key attributes) and tenant routing
// needs the rest; the embedded store checks it too so that code that works
// here works there. See storetest's package doc.

// keyPrefix starts every partition key, followed by the tenant ID
// (tenantIDLen bytes) and '#'.
const (
	keyPrefix   = "TENANT#"
	tenantIDLen = len("ten_") + 26
)

// errInvalid wraps every validation error.
var errInvalid = errors.New("sqlitestore: invalid input")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, args...))
}

// tenantOf returns the tenant ID that pk starts with ("TENANT#<id>#...").
func tenantOf(pk string) (string, error) {
	n := len(keyPrefix) + tenantIDLen
	if len(pk) <= n || pk[:len(keyPrefix)] != keyPrefix || pk[n] != '#' || !utf8.ValidString(pk) {
		return "", invalid("key %q does not start with %s<tenant id>#", pk, keyPrefix)
	}
	id := pk[len(keyPrefix):n]
	if id[:4] != "ten_" {
		return "", invalid("key %q does not start with %s<tenant id>#", pk, keyPrefix)
	}
	for i := 4; i < len(id); i++ {
		if c := id[i]; (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return "", invalid("key %q does not start with %s<tenant id>#", pk, keyPrefix)
		}
	}
	return id, nil
}

func validateKey(k profiles.Key) (string, error) {
	tenant, err := tenantOf(k.PK)
	if err != nil {
		return "", err
	}
	if k.SK == "" || !utf8.ValidString(k.SK) {
		return "", invalid("sort key %q of %s must be non-empty UTF-8", k.SK, k.PK)
	}
	return tenant, nil
}

func validateItem(it *profiles.Item) (string, error) {
	tenant, err := validateKey(profiles.Key{PK: it.PK, SK: it.SK})
	if err != nil {
		return "", err
	}
	if (it.GSI1PK == "") != (it.GSI1SK == "") {
		return "", invalid("item %s/%s: GSI1PK and GSI1SK must be both set or both empty", it.PK, it.SK)
	}
	if it.GSI1PK != "" {
		gsiTenant, err := tenantOf(it.GSI1PK)
		if err != nil {
			return "", err
		}
		if gsiTenant != tenant {
			return "", invalid("item %s/%s: GSI1PK belongs to another tenant", it.PK, it.SK)
		}
		if !utf8.ValidString(it.GSI1SK) {
			return "", invalid("item %s/%s: GSI1SK is not UTF-8", it.PK, it.SK)
		}
	}
	if it.ExpiresAt < 0 {
		return "", invalid("item %s/%s: negative ExpiresAt", it.PK, it.SK)
	}
	return tenant, nil
}

// opKey returns the key an op writes or checks.
func opKey(op *profiles.Op) profiles.Key {
	if op.Put != nil {
		return profiles.Key{PK: op.Put.PK, SK: op.Put.SK}
	}
	return *op.Delete
}

// validateOps checks a Transact call: the op count, each op, one tenant,
// no key twice.
func validateOps(ops []profiles.Op) error {
	if len(ops) > profiles.MaxTransactOps {
		return fmt.Errorf("sqlitestore: %d ops: %w", len(ops), profiles.ErrTooManyOps)
	}
	var tenant string
	for i := range ops {
		op := &ops[i]
		if (op.Put == nil) == (op.Delete == nil) {
			return invalid("op %d: exactly one of Put and Delete must be set", i)
		}
		if op.IfAbsent && op.IfVersion != 0 {
			return invalid("op %d: IfAbsent and IfVersion are exclusive", i)
		}
		if op.Check && !op.IfAbsent && op.IfVersion == 0 {
			return invalid("op %d: a Check needs IfAbsent or IfVersion", i)
		}
		var t string
		var err error
		if op.Put != nil {
			t, err = validateItem(op.Put)
		} else {
			t, err = validateKey(*op.Delete)
		}
		if err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
		if i == 0 {
			tenant = t
		} else if t != tenant {
			return invalid("op %d: all ops of a transaction must belong to one tenant", i)
		}
	}
	if len(ops) <= 16 { // quadratic beats a map for the usual few ops
		for i := range ops {
			ki := opKey(&ops[i])
			for j := range i {
				if opKey(&ops[j]) == ki {
					return invalid("ops %d and %d both name %s/%s", j, i, ki.PK, ki.SK)
				}
			}
		}
		return nil
	}
	seen := make(map[profiles.Key]int, len(ops))
	for i := range ops {
		k := opKey(&ops[i])
		if j, dup := seen[k]; dup {
			return invalid("ops %d and %d both name %s/%s", j, i, k.PK, k.SK)
		}
		seen[k] = i
	}
	return nil
}
