package grants

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/grants/pii"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// EnsureTagVocabulary creates, in region's Data Catalog, the LF-tags the
// broker classifies with (TagPII and TagPIIKind, with every value
// TagValues lists), or adds the values they lack. It is idempotent, and
// every method that needs the tags calls it first; provisioning may call it
// too, so that the tags exist before any table does.
func (s *Service) EnsureTagVocabulary(ctx context.Context, region string) error {
	vocabulary := TagValues()
	for _, k := range slices.Sorted(maps.Keys(vocabulary)) {
		if err := s.catalog.EnsureTag(ctx, region, k, vocabulary[k]); err != nil {
			return fmt.Errorf("LF-tag %s: %w", k, err)
		}
	}
	return nil
}

// tagDatabase gives the database its TagDatabase value, which scopes its
// tag grants to it (CatalogPermissions), after the vocabulary its
// expressions use.
func (s *Service) tagDatabase(ctx context.Context, region, database string) error {
	if err := s.EnsureTagVocabulary(ctx, region); err != nil {
		return err
	}
	if err := s.catalog.EnsureTag(ctx, region, TagDatabase, []string{database}); err != nil {
		return fmt.Errorf("LF-tag %s: %w", TagDatabase, err)
	}
	if err := s.catalog.AssignTags(ctx, region, TagAssignment{Database: database, Tags: map[string]string{TagDatabase: database}}); err != nil {
		return fmt.Errorf("tag database %s: %w", database, err)
	}
	return nil
}

// taggedColumns returns, sorted, the columns of r.Table whose LF-tags
// match r.Tags.
func (s *Service) taggedColumns(ctx context.Context, r Resource) ([]string, error) {
	tags, err := s.catalog.ColumnTags(ctx, r.Region, r.Database, r.Table)
	if err != nil {
		return nil, fmt.Errorf("LF-tags of %s.%s: %w", r.Database, r.Table, err)
	}
	var out []string
	for col, t := range tags {
		if r.Tags.Matches(t) {
			out = append(out, col)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ErrUnknownColumn is returned (wrapped) by TagColumns for a finding on a
// column the table does not have.
var ErrUnknownColumn = errors.New("no such column")

// TagColumns records a table's PII classification (pii.Classify) in Lake
// Formation, so that grants can select on it: the table and every column
// of it get TagPII=false and TagPIIKind=none, and each column that
// findings name gets TagPII=true and TagPIIKind=its kind (pii.ColumnKinds:
// "mixed" for several). Every column is given both values explicitly, so
// that classifying a table again (after its schema or data changed)
// replaces the previous classification, a column no longer holding PII
// included. The table must exist in the tenant's catalog in region (the
// tenant's Glue database there): placement.ErrNotReady, ErrNotFound or a
// finding on an unknown column (ErrUnknownColumn) change nothing. The
// classification is written to the audit log (action table.classify, actor
// cairn): the columns' kinds ("pii") and the findings' JSON paths
// ("paths"), which LF-tags cannot name.
//
// Calls: the vocabulary's EnsureTag (see EnsureTagVocabulary), one
// AssignTags for the table and one per distinct (TagPII, TagPIIKind) pair
// among its columns. Safe to repeat.
func (s *Service) TagColumns(ctx context.Context, tenantID, region, table string, findings []pii.Finding) error {
	db, tbl, err := s.tenantTable(ctx, tenantID, region, table)
	if err != nil {
		return err
	}
	kinds := pii.ColumnKinds(findings)
	for col := range kinds {
		if !slices.Contains(tbl.Columns, col) {
			return fmt.Errorf("classify %s.%s: %w: %s", db, table, ErrUnknownColumn, col)
		}
	}
	if err := s.EnsureTagVocabulary(ctx, region); err != nil {
		return err
	}
	none := map[string]string{TagPII: "false", TagPIIKind: KindNone}
	if err := s.catalog.AssignTags(ctx, region, TagAssignment{Database: db, Table: table, Tags: none}); err != nil {
		return fmt.Errorf("tag table %s.%s: %w", db, table, err)
	}
	groups := map[pii.Kind][]string{}
	for _, col := range tbl.Columns {
		k, ok := kinds[col]
		if !ok {
			k = KindNone
		}
		groups[k] = append(groups[k], col)
	}
	var tagged []string
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		tags := map[string]string{TagPII: "true", TagPIIKind: string(k)}
		if k == KindNone {
			tags = none
		} else {
			for _, col := range groups[k] {
				tagged = append(tagged, col+"="+string(k))
			}
		}
		if err := s.catalog.AssignTags(ctx, region, TagAssignment{Database: db, Table: table, Columns: groups[k], Tags: tags}); err != nil {
			return fmt.Errorf("tag columns of %s.%s: %w", db, table, err)
		}
	}
	slices.Sort(tagged)
	detail := map[string]string{"pii": strings.Join(tagged, ",")}
	// Where inside JSON columns, which LF-tags cannot name.
	var paths []string
	for _, f := range findings {
		if f.Path != "" {
			paths = append(paths, f.Column+f.Path+"="+string(f.Kind))
		}
	}
	if len(paths) > 0 {
		detail["paths"] = strings.Join(paths, ",")
	}
	return s.record(ctx, audit.Event{TenantID: tenantID, Actor: audit.ActorCairn, Action: "table.classify",
		TargetType: "table", TargetID: region + "/" + db + "/" + table, Outcome: audit.OutcomeOK, Detail: detail})
}

// tenantTable returns the tenant's Glue database in region and its table.
func (s *Service) tenantTable(ctx context.Context, tenantID, region, table string) (string, Table, error) {
	t, err := s.tenants.Get(ctx, tenantID)
	if err != nil {
		return "", Table{}, err
	}
	pl, err := s.catalogOf(ctx, t, region)
	if err != nil {
		return "", Table{}, err
	}
	db := pl.GlueDatabase()
	tbl, err := s.catalog.Table(ctx, region, db, table)
	if errors.Is(err, ErrNotFound) && pl.Kind == placement.Pooled {
		// A pooled tenant's lake tables are the pool's shared ones: their
		// classification (LF-tags on columns) is the table's, for every
		// tenant of the pool, and findings only add to it.
		pool := provisioner.PoolGlueDatabase()
		if shared, err := s.catalog.Table(ctx, region, pool, table); err == nil && shared.Shared {
			return pool, shared, nil
		}
	}
	if err != nil {
		return "", Table{}, fmt.Errorf("table %s.%s: %w", db, table, err)
	}
	return db, tbl, nil
}

// AddFindings adds findings to a table's classification, as the lake's
// refinery finds them in samples of what it writes: a column tagged as
// holding personal data keeps its kind (joined with a new kind, it becomes
// "mixed"), so a sample without a column's personal data never untags it,
// and the other columns get the findings' kinds (TagColumns). When the
// table is classified already and the findings add nothing, nothing is
// written. Errors are TagColumns's.
//
// Calls: ColumnTags, then TagColumns's only when the classification
// changes. Safe to repeat.
func (s *Service) AddFindings(ctx context.Context, tenantID, region, table string, findings []pii.Finding) error {
	db, _, err := s.tenantTable(ctx, tenantID, region, table)
	if err != nil {
		return err
	}
	tags, err := s.catalog.ColumnTags(ctx, region, db, table)
	if err != nil {
		return fmt.Errorf("LF-tags of %s.%s: %w", db, table, err)
	}
	merged := slices.Clone(findings)
	before := map[string]pii.Kind{}
	classified := true
	for col, t := range tags {
		switch t[TagPII] {
		case "true":
			before[col] = pii.Kind(t[TagPIIKind])
			merged = append(merged, pii.Finding{Column: col, Kind: before[col]})
		case "false":
		default:
			classified = false
		}
	}
	if classified && maps.Equal(pii.ColumnKinds(merged), before) {
		return nil
	}
	return s.TagColumns(ctx, tenantID, region, table, merged)
}
