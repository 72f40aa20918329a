package duckdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-cdp/cairn/internal/lake"
)

// CatalogFile is where the local catalog lists a table of the tenant's
// Glue database (grants.LocalCatalog reads it): the embedded default's
// stand-in for the Glue table the Athena engine keeps. "" when the
// location names no database.
func (e *Engine) CatalogFile(loc lake.Location, t lake.Table) string {
	if loc.Database == "" {
		return ""
	}
	return filepath.Join(e.root, loc.Region, "catalog", loc.Database, t.Name+".json")
}

// register lists the tables in the local catalog, as Glue lists the
// Athena engine's: the table's columns, then its partition keys (dt, hh),
// in the shape grants.Table is read in. A table listed as it is already is
// not written again.
func (e *Engine) register(loc lake.Location, tables ...lake.Table) error {
	for _, t := range tables {
		file := e.CatalogFile(loc, t)
		if file == "" {
			continue
		}
		cols := make([]string, 0, len(t.Columns)+2)
		for _, c := range t.Columns {
			cols = append(cols, c.Name)
		}
		if t.Partitioned {
			cols = append(cols, "dt", "hh")
		}
		b, err := json.Marshal(struct {
			Name    string
			Columns []string
		}{t.Name, cols})
		if err != nil {
			return err
		}
		if old, err := os.ReadFile(file); err == nil && bytes.Equal(old, b) {
			continue
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("catalog %s: %w", t.Name, err)
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return fmt.Errorf("catalog %s: %w", t.Name, err)
		}
		if err := os.WriteFile(file+".tmp", b, 0o600); err != nil {
			return fmt.Errorf("catalog %s: %w", t.Name, err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			return fmt.Errorf("catalog %s: %w", t.Name, err)
		}
	}
	return nil
}

// Sample implements lake.Engine: the first rows of the partitions'
// Parquet files (a JSON column's value as its text). It lists the table in
// the local catalog first, for tables written before the catalog listed
// them.
func (e *Engine) Sample(ctx context.Context, loc lake.Location, t lake.Table, partitions []string, limit int) ([]map[string]any, error) {
	if err := e.register(loc, t); err != nil {
		return nil, err
	}
	var files []string
	if !t.Partitioned {
		partitions = []string{""}
	}
	for _, p := range partitions {
		if f := e.partitionFile(loc, t, p); fileExists(f) {
			files = append(files, quote(f))
		}
	}
	if len(files) == 0 {
		return nil, nil
	}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = ident(c.Name)
		if c.Type == lake.JSON {
			cols[i] = fmt.Sprintf("CAST(%s AS VARCHAR) AS %s", ident(c.Name), ident(c.Name))
		}
	}
	rows, err := scanAll(e.db.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM read_parquet([%s]) LIMIT %d",
		strings.Join(cols, ", "), strings.Join(files, ", "), limit)))
	if err != nil {
		return nil, fmt.Errorf("sample %s: %w", t.Name, err)
	}
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		out[i] = make(map[string]any, len(r))
		for j, c := range t.Columns {
			out[i][c.Name] = r[j]
		}
	}
	return out, nil
}
