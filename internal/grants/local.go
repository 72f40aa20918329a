package grants

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// LocalCatalog is the embedded default's Catalog: a ledger of permissions
// and data cells filters kept as JSON beside the local engine's zones, so
// the broker applies the same rules and moves through the same states with
// no AWS account. Root is the local engine's root:
//
//	<Root>/<region>/catalog/<db>/<table>.json     a table (name, columns, shared)
//	<Root>/<region>/lakeformation.json            granted permissions and filters
//
// It is safe for concurrent use within one process.
type LocalCatalog struct {
	Root string
	mu   sync.Mutex
}

var _ Catalog = (*LocalCatalog)(nil)

type localLedger struct {
	Permissions []Permission  `json:"permissions"`
	Filters     []CellsFilter `json:"filters"`
}

func (c *LocalCatalog) ledgerPath(region string) string {
	return filepath.Join(c.Root, region, "lakeformation.json")
}

func (c *LocalCatalog) load(region string) (localLedger, error) {
	var l localLedger
	b, err := os.ReadFile(c.ledgerPath(region))
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, err
	}
	return l, json.Unmarshal(b, &l)
}

func (c *LocalCatalog) save(region string, l localLedger) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	path := c.ledgerPath(region)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// update runs fn on the Region's ledger under the lock and saves it.
func (c *LocalCatalog) update(region string, fn func(*localLedger)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.load(region)
	if err != nil {
		return fmt.Errorf("local catalog: %w", err)
	}
	fn(&l)
	return c.save(region, l)
}

// Table reads a table registered under the database, or ErrNotFound.
func (c *LocalCatalog) Table(_ context.Context, region, database, table string) (Table, error) {
	b, err := os.ReadFile(filepath.Join(c.Root, region, "catalog", database, table+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return Table{}, ErrNotFound
	}
	if err != nil {
		return Table{}, err
	}
	var t Table
	if err := json.Unmarshal(b, &t); err != nil {
		return Table{}, fmt.Errorf("local table %s.%s: %w", database, table, err)
	}
	t.Name = table
	return t, nil
}

func samePermission(a, b Permission) bool {
	return a.Principal == b.Principal && a.Resource.Database == b.Resource.Database && a.Resource.Table == b.Resource.Table &&
		a.CellsFilter == b.CellsFilter && sameSet(a.Resource.Columns, b.Resource.Columns)
}

// Grant adds the permissions, merging with what the principal already has
// on the same resource, as Lake Formation does.
func (c *LocalCatalog) Grant(_ context.Context, region string, p Permission) error {
	return c.update(region, func(l *localLedger) {
		p.Resource.Region = ""
		for i, q := range l.Permissions {
			if samePermission(q, p) {
				for _, perm := range p.Permissions {
					if !slices.Contains(q.Permissions, perm) {
						l.Permissions[i].Permissions = append(l.Permissions[i].Permissions, perm)
					}
				}
				return
			}
		}
		l.Permissions = append(l.Permissions, p)
	})
}

// Revoke removes the permissions; what is absent is ignored.
func (c *LocalCatalog) Revoke(_ context.Context, region string, p Permission) error {
	return c.update(region, func(l *localLedger) {
		kept := l.Permissions[:0]
		for _, q := range l.Permissions {
			if samePermission(q, p) {
				q.Permissions = slices.DeleteFunc(slices.Clone(q.Permissions), func(perm string) bool {
					return slices.Contains(p.Permissions, perm)
				})
			}
			if len(q.Permissions) > 0 {
				kept = append(kept, q)
			}
		}
		l.Permissions = kept
	})
}

// Permissions lists the permissions on the database and its tables.
func (c *LocalCatalog) Permissions(_ context.Context, region, database string) ([]Permission, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.load(region)
	if err != nil {
		return nil, err
	}
	var out []Permission
	for _, p := range l.Permissions {
		if p.Resource.Database == database {
			p.Resource.Region = region
			out = append(out, p)
		}
	}
	return out, nil
}

// EnsureCellsFilter records the filter unless it exists.
func (c *LocalCatalog) EnsureCellsFilter(_ context.Context, region string, f CellsFilter) error {
	return c.update(region, func(l *localLedger) {
		if !slices.ContainsFunc(l.Filters, func(g CellsFilter) bool {
			return g.Database == f.Database && g.Table == f.Table && g.Name == f.Name
		}) {
			l.Filters = append(l.Filters, f)
		}
	})
}

// DeleteCellsFilter forgets the filter.
func (c *LocalCatalog) DeleteCellsFilter(_ context.Context, region, database, table, name string) error {
	return c.update(region, func(l *localLedger) {
		l.Filters = slices.DeleteFunc(l.Filters, func(g CellsFilter) bool {
			return g.Database == database && g.Table == table && g.Name == name
		})
	})
}

// LocalCredentials issues stand-in credentials in the embedded default,
// where there is no AWS to enforce them: random keys that expire like
// STS's, so clients can be built and tested against the same API.
type LocalCredentials struct{}

var _ CredentialIssuer = LocalCredentials{}

// AssumeRole returns random credentials valid for in.Duration.
func (LocalCredentials) AssumeRole(_ context.Context, in AssumeRoleInput) (Credentials, error) {
	key := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	return Credentials{
		AccessKeyID:     "LOCAL" + key(8),
		SecretAccessKey: key(20),
		SessionToken:    "local-" + key(32),
		Expiration:      time.Now().Add(in.Duration).UTC().Truncate(time.Second),
	}, nil
}
