package lakeformation

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	lf "github.com/aws/aws-sdk-go-v2/service/lakeformation"
	lftypes "github.com/aws/aws-sdk-go-v2/service/lakeformation/types"

	"github.com/cairn-cdp/cairn/internal/grants"
)

// tagValuesPerCall is the most LF-tag values one CreateLFTag or UpdateLFTag
// call takes (LFTag.TagValues: at most 50 items).
const tagValuesPerCall = 50

// EnsureTag creates the LF-tag key with values (CreateLFTag), or, when it
// exists (AlreadyExistsException), reads it (GetLFTag) and adds the values
// it lacks (UpdateLFTag with TagValuesToAdd), 50 values a call. Calls: one
// CreateLFTag, and for an existing tag one GetLFTag plus one UpdateLFTag per
// 50 missing values. Values it has that are not asked for are kept: a tag's
// values are used by other resources and grants.
func (c *Catalog) EnsureTag(ctx context.Context, region, key string, values []string) error {
	client, err := c.c.lf.Client(region)
	if err != nil {
		return fmt.Errorf("lakeformation: create LF-tag: %w", err)
	}
	if key == "" || len(values) == 0 {
		return errors.New("lakeformation: create LF-tag: a key and at least one value")
	}
	values = slices.Compact(sortedCopy(values))
	first := values[:min(len(values), tagValuesPerCall)]
	_, err = client.CreateLFTag(ctx, &lf.CreateLFTagInput{TagKey: aws.String(key), TagValues: first})
	var missing []string
	switch {
	case err == nil:
		missing = values[len(first):]
	case isAlreadyExists(err):
		got, err := client.GetLFTag(ctx, &lf.GetLFTagInput{TagKey: aws.String(key)})
		if err != nil {
			return fmt.Errorf("lakeformation: get LF-tag %s in %s: %w", key, region, err)
		}
		for _, v := range values {
			if !slices.Contains(got.TagValues, v) {
				missing = append(missing, v)
			}
		}
	default:
		return fmt.Errorf("lakeformation: create LF-tag %s in %s: %w", key, region, err)
	}
	for chunk := range slices.Chunk(missing, tagValuesPerCall) {
		if _, err := client.UpdateLFTag(ctx, &lf.UpdateLFTagInput{TagKey: aws.String(key), TagValuesToAdd: chunk}); err != nil {
			return fmt.Errorf("lakeformation: add values to LF-tag %s in %s: %w", key, region, err)
		}
	}
	return nil
}

// AssignTags gives the database, table or columns of a its tags with one
// AddLFTagsToResource call; the resource is a Database, a Table or a
// TableWithColumns. Lake Formation answers some failures as a list in a
// successful answer rather than as an error: they are returned as an error
// (a tag or value that does not exist wraps grants.ErrNotFound).
func (c *Catalog) AssignTags(ctx context.Context, region string, a grants.TagAssignment) error {
	client, err := c.c.lf.Client(region)
	if err != nil {
		return fmt.Errorf("lakeformation: assign LF-tags: %w", err)
	}
	if a.Database == "" || (a.Table == "" && len(a.Columns) > 0) || len(a.Tags) == 0 {
		return errors.New("lakeformation: assign LF-tags: a database (and a table for columns) and at least one tag")
	}
	res := &lftypes.Resource{Database: &lftypes.DatabaseResource{Name: aws.String(a.Database)}}
	switch {
	case len(a.Columns) > 0:
		res = &lftypes.Resource{TableWithColumns: &lftypes.TableWithColumnsResource{
			DatabaseName: aws.String(a.Database), Name: aws.String(a.Table), ColumnNames: sortedCopy(a.Columns),
		}}
	case a.Table != "":
		res = &lftypes.Resource{Table: &lftypes.TableResource{DatabaseName: aws.String(a.Database), Name: aws.String(a.Table)}}
	}
	var pairs []lftypes.LFTagPair
	for _, k := range slices.Sorted(maps.Keys(a.Tags)) {
		pairs = append(pairs, lftypes.LFTagPair{TagKey: aws.String(k), TagValues: []string{a.Tags[k]}})
	}
	where := a.Database
	if a.Table != "" {
		where += "." + a.Table
	}
	out, err := client.AddLFTagsToResource(ctx, &lf.AddLFTagsToResourceInput{Resource: res, LFTags: pairs})
	if err != nil {
		if isLFNotFound(err) {
			return fmt.Errorf("lakeformation: assign LF-tags to %s in %s: %w: %w", where, region, grants.ErrNotFound, err)
		}
		return fmt.Errorf("lakeformation: assign LF-tags to %s in %s: %w", where, region, err)
	}
	if len(out.Failures) > 0 {
		var msgs []string
		notFound := false
		for _, f := range out.Failures {
			code, msg := "", ""
			if f.Error != nil {
				code, msg = aws.ToString(f.Error.ErrorCode), aws.ToString(f.Error.ErrorMessage)
			}
			notFound = notFound || code == "EntityNotFoundException"
			tag := ""
			if f.LFTag != nil {
				tag = aws.ToString(f.LFTag.TagKey) + "=" + strings.Join(f.LFTag.TagValues, "|")
			}
			msgs = append(msgs, tag+": "+code+" "+msg)
		}
		err := fmt.Errorf("lakeformation: assign LF-tags to %s in %s: %s", where, region, strings.Join(msgs, "; "))
		if notFound {
			return fmt.Errorf("%w: %w", err, grants.ErrNotFound)
		}
		return err
	}
	return nil
}

// ColumnTags returns each column's LF-tags with GetResourceLFTags on the
// table (one call, plus Glue GetTable for the columns): a column's own,
// else its table's, else its database's value of each key, which is how
// Lake Formation matches LF-tag expressions. A missing table wraps
// grants.ErrNotFound.
func (c *Catalog) ColumnTags(ctx context.Context, region, database, table string) (map[string]map[string]string, error) {
	t, err := c.Table(ctx, region, database, table)
	if err != nil {
		return nil, err
	}
	client, err := c.c.lf.Client(region)
	if err != nil {
		return nil, fmt.Errorf("lakeformation: get LF-tags: %w", err)
	}
	out, err := client.GetResourceLFTags(ctx, &lf.GetResourceLFTagsInput{
		Resource: &lftypes.Resource{Table: &lftypes.TableResource{DatabaseName: aws.String(database), Name: aws.String(table)}},
	})
	if err != nil {
		if isLFNotFound(err) {
			return nil, fmt.Errorf("lakeformation: get LF-tags of %s.%s in %s: %w: %w", database, table, region, grants.ErrNotFound, err)
		}
		return nil, fmt.Errorf("lakeformation: get LF-tags of %s.%s in %s: %w", database, table, region, err)
	}
	inherited := map[string]string{}
	addPairs(inherited, out.LFTagOnDatabase)
	addPairs(inherited, out.LFTagsOnTable)
	tags := make(map[string]map[string]string, len(t.Columns))
	for _, col := range t.Columns {
		tags[col] = maps.Clone(inherited)
	}
	for _, col := range out.LFTagsOnColumns {
		if m, ok := tags[aws.ToString(col.Name)]; ok {
			addPairs(m, col.LFTags)
		}
	}
	return tags, nil
}

// addPairs sets each pair's key to its (single) value.
func addPairs(m map[string]string, pairs []lftypes.LFTagPair) {
	for _, p := range pairs {
		if len(p.TagValues) > 0 {
			m[aws.ToString(p.TagKey)] = p.TagValues[0]
		}
	}
}

// TagPolicyPermissions lists the permissions on the LF-tag policy on
// tables with expression e (ListPermissions on that LFTagPolicy resource,
// one call per page), merged per principal with their permissions sorted.
// Resource.Tags is e and Resource.Database the value of grants.TagDatabase
// in e, if any.
func (c *Catalog) TagPolicyPermissions(ctx context.Context, region string, e grants.TagExpression) ([]grants.Permission, error) {
	client, err := c.c.lf.Client(region)
	if err != nil {
		return nil, fmt.Errorf("lakeformation: list LF-tag policy permissions: %w", err)
	}
	if len(e) == 0 {
		return nil, errors.New("lakeformation: list LF-tag policy permissions: an empty expression")
	}
	byPrincipal := map[string]*grants.Permission{}
	pages := lf.NewListPermissionsPaginator(client, &lf.ListPermissionsInput{
		Resource: &lftypes.Resource{LFTagPolicy: &lftypes.LFTagPolicyResource{
			ResourceType: lftypes.ResourceTypeTable,
			Expression:   lfExpression(e),
		}},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("lakeformation: list permissions on LF-tag policy %s in %s: %w", e, region, err)
		}
		for _, prp := range page.PrincipalResourcePermissions {
			if prp.Principal == nil || prp.Resource == nil || prp.Resource.LFTagPolicy == nil || len(prp.Permissions) == 0 {
				continue
			}
			if got := expressionOf(prp.Resource.LFTagPolicy.Expression); !got.Equal(e) {
				continue
			}
			id := aws.ToString(prp.Principal.DataLakePrincipalIdentifier)
			p, ok := byPrincipal[id]
			if !ok {
				var db string
				if v := e[grants.TagDatabase]; len(v) == 1 {
					db = v[0]
				}
				p = &grants.Permission{Principal: id, Resource: grants.Resource{Region: region, Database: db, Tags: e}}
				byPrincipal[id] = p
			}
			for _, perm := range prp.Permissions {
				if !slices.Contains(p.Permissions, string(perm)) {
					p.Permissions = append(p.Permissions, string(perm))
				}
			}
		}
	}
	out := make([]grants.Permission, 0, len(byPrincipal))
	for _, id := range slices.Sorted(maps.Keys(byPrincipal)) {
		p := byPrincipal[id]
		slices.Sort(p.Permissions)
		out = append(out, *p)
	}
	return out, nil
}

// expressionOf converts Lake Formation's expression.
func expressionOf(tags []lftypes.LFTag) grants.TagExpression {
	out := grants.TagExpression{}
	for _, t := range tags {
		out[aws.ToString(t.TagKey)] = append(out[aws.ToString(t.TagKey)], t.TagValues...)
	}
	return out
}
