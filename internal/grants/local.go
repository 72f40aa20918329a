package grants

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// LocalCatalog is the embedded default's Catalog: a ledger of permissions
// and data cells filters kept as JSON beside the local engine's zones, so
// the broker applies the same rules and moves through the same states with
// no AWS account. Root is the local engine's root:
//
//	<Root>/<region>/catalog/<db>/<table>.json     a table (name, columns, shared)
//	<Root>/<region>/lakeformation.json            permissions, filters and LF-tags
//
// It refuses what Lake Formation refuses (CheckPermission, a data cells
// filter without a row filter, a tag or tag value that does not exist), so
// that the embedded default and AWS mode fail alike. It is safe for
// concurrent use within one process.
type LocalCatalog struct {
	Root string
	mu   sync.Mutex
}

var _ Catalog = (*LocalCatalog)(nil)

type localLedger struct {
	Permissions []Permission  `json:"permissions"`
	Filters     []CellsFilter `json:"filters"`
	// Tags are the LF-tags and their values.
	Tags map[string][]string `json:"tags,omitempty"`
	// Assigned maps "db", "db/table" or "db/table/column" to the LF-tags
	// assigned to it (key → value).
	Assigned map[string]map[string]string `json:"assigned,omitempty"`
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

// read loads the Region's ledger under the lock.
func (c *LocalCatalog) read(region string) (localLedger, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.load(region)
}

// update runs fn on the Region's ledger under the lock and saves it,
// unless fn fails.
func (c *LocalCatalog) update(region string, fn func(*localLedger) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, err := c.load(region)
	if err != nil {
		return fmt.Errorf("local catalog: %w", err)
	}
	if err := fn(&l); err != nil {
		return fmt.Errorf("local catalog: %w", err)
	}
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
	return a.Principal == b.Principal && sameResource(a, b)
}

// Grant adds the permissions, merging with what the principal already has
// on the same resource, as Lake Formation does. It refuses, as Lake
// Formation does, a permission the resource does not take
// (ErrInvalidPermission), a data cells filter that does not exist
// (ErrNotFound) and a tag policy on a tag or value that does not exist.
func (c *LocalCatalog) Grant(_ context.Context, region string, p Permission) error {
	if err := CheckPermission(p); err != nil {
		return err
	}
	return c.update(region, func(l *localLedger) error {
		if p.CellsFilter != "" && !slices.ContainsFunc(l.Filters, func(f CellsFilter) bool {
			return f.Database == p.Resource.Database && f.Table == p.Resource.Table && f.Name == p.CellsFilter
		}) {
			return fmt.Errorf("data cells filter %s on %s.%s: %w", p.CellsFilter, p.Resource.Database, p.Resource.Table, ErrNotFound)
		}
		for k, values := range p.Resource.Tags {
			for _, v := range values {
				if !slices.Contains(l.Tags[k], v) {
					return fmt.Errorf("LF-tag %s=%s: %w", k, v, ErrNotFound)
				}
			}
		}
		p.Resource.Region = ""
		for i, q := range l.Permissions {
			if samePermission(q, p) {
				for _, perm := range p.Permissions {
					if !slices.Contains(q.Permissions, perm) {
						l.Permissions[i].Permissions = append(l.Permissions[i].Permissions, perm)
					}
				}
				return nil
			}
		}
		l.Permissions = append(l.Permissions, p)
		return nil
	})
}

// Revoke removes the permissions; what is absent is ignored.
func (c *LocalCatalog) Revoke(_ context.Context, region string, p Permission) error {
	return c.update(region, func(l *localLedger) error {
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
		return nil
	})
}

// Permissions lists the permissions on the database and its tables; LF-tag
// policies are not the database's (TagPolicyPermissions).
func (c *LocalCatalog) Permissions(_ context.Context, region, database string) ([]Permission, error) {
	return c.permissionsWhere(region, func(p Permission) bool {
		return p.Resource.Database == database && len(p.Resource.Tags) == 0
	})
}

// TagPolicyPermissions lists the permissions on the LF-tag policy e.
func (c *LocalCatalog) TagPolicyPermissions(_ context.Context, region string, e TagExpression) ([]Permission, error) {
	return c.permissionsWhere(region, func(p Permission) bool {
		return len(p.Resource.Tags) > 0 && p.Resource.Tags.Equal(e)
	})
}

// permissionsWhere lists the Region's permissions keep is true for.
func (c *LocalCatalog) permissionsWhere(region string, keep func(Permission) bool) ([]Permission, error) {
	l, err := c.read(region)
	if err != nil {
		return nil, err
	}
	var out []Permission
	for _, p := range l.Permissions {
		if keep(p) {
			p.Resource.Region = region
			out = append(out, p)
		}
	}
	return out, nil
}

// EnsureCellsFilter records the filter, or brings the filter of that name
// back to f, as the Lake Formation adapter does. A filter without a row
// filter is refused: it would show every tenant's rows.
func (c *LocalCatalog) EnsureCellsFilter(_ context.Context, region string, f CellsFilter) error {
	if strings.TrimSpace(f.RowFilter) == "" {
		return fmt.Errorf("local catalog: data cells filter %s: a row filter is required", f.Name)
	}
	return c.update(region, func(l *localLedger) error {
		l.Filters = slices.DeleteFunc(l.Filters, func(g CellsFilter) bool {
			return g.Database == f.Database && g.Table == f.Table && g.Name == f.Name
		})
		l.Filters = append(l.Filters, f)
		return nil
	})
}

// DeleteCellsFilter forgets the filter.
func (c *LocalCatalog) DeleteCellsFilter(_ context.Context, region, database, table, name string) error {
	return c.update(region, func(l *localLedger) error {
		l.Filters = slices.DeleteFunc(l.Filters, func(g CellsFilter) bool {
			return g.Database == database && g.Table == table && g.Name == name
		})
		return nil
	})
}

// CellsFilters lists the filters recorded on the database's tables. The
// local catalog keeps no databases of its own: a database without a
// filter lists none.
func (c *LocalCatalog) CellsFilters(_ context.Context, region, database string) ([]CellsFilter, error) {
	l, err := c.read(region)
	if err != nil {
		return nil, fmt.Errorf("local catalog: %w", err)
	}
	var out []CellsFilter
	for _, f := range l.Filters {
		if f.Database == database {
			out = append(out, f)
		}
	}
	return out, nil
}

// EnsureTag records the LF-tag and adds the values it lacks.
func (c *LocalCatalog) EnsureTag(_ context.Context, region, key string, values []string) error {
	if key == "" || len(values) == 0 {
		return errors.New("local catalog: an LF-tag has a key and at least one value")
	}
	return c.update(region, func(l *localLedger) error {
		if l.Tags == nil {
			l.Tags = map[string][]string{}
		}
		for _, v := range values {
			if !slices.Contains(l.Tags[key], v) {
				l.Tags[key] = append(l.Tags[key], v)
			}
		}
		return nil
	})
}

// AssignTags records the assignment; a tag or value that does not exist
// is ErrNotFound, as in Lake Formation.
func (c *LocalCatalog) AssignTags(_ context.Context, region string, a TagAssignment) error {
	if a.Database == "" || (a.Table == "" && len(a.Columns) > 0) {
		return errors.New("local catalog: assign LF-tags: a database, and a table for columns")
	}
	return c.update(region, func(l *localLedger) error {
		for k, v := range a.Tags {
			if !slices.Contains(l.Tags[k], v) {
				return fmt.Errorf("LF-tag %s=%s: %w", k, v, ErrNotFound)
			}
		}
		if l.Assigned == nil {
			l.Assigned = map[string]map[string]string{}
		}
		targets := []string{a.Database}
		switch {
		case len(a.Columns) > 0:
			targets = targets[:0]
			for _, col := range a.Columns {
				targets = append(targets, a.Database+"/"+a.Table+"/"+col)
			}
		case a.Table != "":
			targets = []string{a.Database + "/" + a.Table}
		}
		for _, target := range targets {
			if l.Assigned[target] == nil {
				l.Assigned[target] = map[string]string{}
			}
			maps.Copy(l.Assigned[target], a.Tags)
		}
		return nil
	})
}

// ColumnTags returns each column's LF-tags: its own, then its table's,
// then its database's, the nearest winning per key.
func (c *LocalCatalog) ColumnTags(ctx context.Context, region, database, table string) (map[string]map[string]string, error) {
	t, err := c.Table(ctx, region, database, table)
	if err != nil {
		return nil, err
	}
	l, err := c.read(region)
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string]string, len(t.Columns))
	for _, col := range t.Columns {
		tags := map[string]string{}
		maps.Copy(tags, l.Assigned[database])
		maps.Copy(tags, l.Assigned[database+"/"+table])
		maps.Copy(tags, l.Assigned[database+"/"+table+"/"+col])
		out[col] = tags
	}
	return out, nil
}

// Readable returns, sorted, the columns of the table that the principal
// may SELECT, as Lake Formation would answer them: through a grant on
// every table of the database, on the table, on its columns, on a data
// cells filter of it (the filter's columns; its row filter is not
// applied here), or on an LF-tag policy whose expression the column's
// LF-tags (its own, its table's, its database's) match. It is the embedded
// default's stand-in for Lake Formation's enforcement, which has no engine
// reading the lake on a principal's behalf. A missing table is
// ErrNotFound.
func (c *LocalCatalog) Readable(ctx context.Context, region, principal, database, table string) ([]string, error) {
	tags, err := c.ColumnTags(ctx, region, database, table)
	if err != nil {
		return nil, err
	}
	l, err := c.read(region)
	if err != nil {
		return nil, err
	}
	readable := map[string]bool{}
	for _, p := range l.Permissions {
		if p.Principal != principal || !slices.Contains(p.Permissions, "SELECT") {
			continue
		}
		r := p.Resource
		var cols []string
		switch p.Kind() {
		case OnTagPolicy:
			for col, t := range tags {
				if r.Tags.Matches(t) {
					cols = append(cols, col)
				}
			}
		case OnAllTables:
			if r.Database == database {
				cols = slices.Collect(maps.Keys(tags))
			}
		case OnTable:
			if r.Database == database && r.Table == table {
				cols = slices.Collect(maps.Keys(tags))
			}
		case OnColumns:
			if r.Database == database && r.Table == table {
				cols = r.Columns
			}
		case OnCellsFilter:
			i := slices.IndexFunc(l.Filters, func(f CellsFilter) bool {
				return f.Database == database && f.Table == table && f.Name == p.CellsFilter
			})
			if r.Database == database && r.Table == table && i >= 0 {
				cols = l.Filters[i].Columns
				if len(cols) == 0 {
					cols = slices.Collect(maps.Keys(tags))
				}
			}
		}
		for _, col := range cols {
			readable[col] = true
		}
	}
	return slices.Sorted(maps.Keys(readable)), nil
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
