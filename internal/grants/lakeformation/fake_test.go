package lakeformation_test

// Tests against a scripted fake of the AWS APIs, for what the emulator
// cannot show: data cells filters (moto does not implement them), Lake
// Formation's own answers (errors for absent grants, SELECT listed as a
// column wildcard, pages) and the exact requests the adapters send. They run
// without an emulator.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	lftypes "github.com/aws/aws-sdk-go-v2/service/lakeformation/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/grants"
)

// fakeAccount is the account the fake's STS GetCallerIdentity answers.
const fakeAccount = "111122223333"

// awsError is an error answer of the fake.
type awsError struct {
	Code, Message string
}

// fakeRequest is one request the fake received. Body is the JSON body (Lake
// Formation, Glue) or the form (STS) as a map.
type fakeRequest struct {
	Op   string
	Body map[string]any
}

// fakeAWS answers Lake Formation (REST-JSON, POST /<Operation>), Glue
// (awsJson, X-Amz-Target) and STS (awsQuery). STS GetCallerIdentity and
// AssumeRole have fixed answers; every other operation is answered by the
// test's answer function (nil: an empty object).
type fakeAWS struct {
	t      *testing.T
	URL    string
	answer func(op string, body map[string]any) (any, *awsError)

	mu   sync.Mutex
	reqs []fakeRequest
}

func newFake(t *testing.T, answer func(op string, body map[string]any) (any, *awsError)) *fakeAWS {
	t.Helper()
	f := &fakeAWS{t: t, answer: answer}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// requests returns the requests of op received so far.
func (f *fakeAWS) requests(op string) []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeRequest
	for _, r := range f.reqs {
		if r.Op == op {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := fakeRequest{Body: map[string]any{}}
	switch {
	case strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		form, err := url.ParseQuery(string(raw))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Op = form.Get("Action")
		for k := range form {
			req.Body[k] = form.Get(k)
		}
	case r.Header.Get("X-Amz-Target") != "":
		_, req.Op, _ = strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	default:
		req.Op = strings.TrimPrefix(r.URL.Path, "/")
	}
	if req.Op == "" {
		http.Error(w, "fake: no operation", http.StatusBadRequest)
		return
	}
	if len(raw) > 0 && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if err := json.Unmarshal(raw, &req.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()

	switch req.Op {
	case "GetCallerIdentity":
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
			`<Arn>arn:aws:iam::%[1]s:role/cairn</Arn><UserId>AROAFAKE</UserId><Account>%[1]s</Account>`+
			`</GetCallerIdentityResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, fakeAccount)
		return
	case "AssumeRole":
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>`+
			`<AccessKeyId>ASIAFAKE</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken>`+
			`<Expiration>2030-01-02T03:04:05Z</Expiration></Credentials>`+
			`<AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/r/s</Arn><AssumedRoleId>AROAFAKE:s</AssumedRoleId></AssumedRoleUser>`+
			`</AssumeRoleResult><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></AssumeRoleResponse>`)
		return
	}

	var resp any
	var aerr *awsError
	if f.answer != nil {
		resp, aerr = f.answer(req.Op, req.Body)
	}
	contentType := "application/json"
	if r.Header.Get("X-Amz-Target") != "" {
		contentType = "application/x-amz-json-1.1"
	}
	w.Header().Set("Content-Type", contentType)
	if aerr != nil {
		w.Header().Set("X-Amzn-ErrorType", aerr.Code)
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": aerr.Code, "message": aerr.Message})
		return
	}
	if resp == nil {
		resp = map[string]any{}
	}
	_ = json.NewEncoder(w).Encode(resp)
}

// jsonOf round-trips v through JSON, to compare it with a decoded body.
func jsonOf(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

type obj = map[string]any

func TestGrantRequests(t *testing.T) {
	t.Parallel()
	fake := newFake(t, nil)
	catalog, calls := newCatalog(t, fake.URL)
	const role = "arn:aws:iam::111122223333:role/reader"
	for _, tc := range []struct {
		name         string
		p            grants.Permission
		wantResource obj
		wantPerms    []string
	}{
		{
			name:         "database",
			p:            grants.Permission{Principal: role, Resource: grants.Resource{Region: regionA, Database: "t1db"}, Permissions: []string{"DESCRIBE"}},
			wantResource: obj{"Database": obj{"Name": "t1db"}},
			wantPerms:    []string{"DESCRIBE"},
		},
		{
			name:         "table",
			p:            grants.Permission{Principal: role, Resource: grants.Resource{Database: "t1db", Table: "events"}, Permissions: []string{"SELECT", "DESCRIBE", "SELECT"}},
			wantResource: obj{"Table": obj{"DatabaseName": "t1db", "Name": "events"}},
			wantPerms:    []string{"DESCRIBE", "SELECT"},
		},
		{
			name:         "columns",
			p:            grants.Permission{Principal: role, Resource: grants.Resource{Database: "t1db", Table: "events", Columns: []string{"ts", "event"}}, Permissions: []string{"SELECT"}},
			wantResource: obj{"TableWithColumns": obj{"DatabaseName": "t1db", "Name": "events", "ColumnNames": []string{"event", "ts"}}},
			wantPerms:    []string{"SELECT"},
		},
		{
			name: "cells filter",
			p: grants.Permission{Principal: role, Resource: grants.Resource{Database: "t1db", Table: "events"},
				CellsFilter: "tenant_t1", Permissions: []string{"SELECT"}},
			wantResource: obj{"DataCellsFilter": obj{"TableCatalogId": fakeAccount, "DatabaseName": "t1db", "TableName": "events", "Name": "tenant_t1"}},
			wantPerms:    []string{"SELECT"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, op := range []string{"GrantPermissions", "RevokePermissions"} {
				before := len(fake.requests(op))
				var err error
				if op == "GrantPermissions" {
					err = catalog.Grant(t.Context(), regionA, tc.p)
				} else {
					err = catalog.Revoke(t.Context(), regionA, tc.p)
				}
				if err != nil {
					t.Fatal(err)
				}
				reqs := fake.requests(op)
				if len(reqs) != before+1 {
					t.Fatalf("%s requests = %d, want %d", op, len(reqs), before+1)
				}
				want := jsonOf(t, obj{
					"Principal":   obj{"DataLakePrincipalIdentifier": role},
					"Resource":    tc.wantResource,
					"Permissions": tc.wantPerms,
				})
				if diff := cmp.Diff(want, any(reqs[len(reqs)-1].Body)); diff != "" {
					t.Errorf("%s body (-want +got):\n%s", op, diff)
				}
			}
		})
	}
	// The filter grant and revoke share one catalog ID lookup.
	if n := calls.Total("STS.GetCallerIdentity"); n != 1 {
		t.Errorf("STS.GetCallerIdentity calls = %d, want 1", n)
	}

	// Columns with a filter: the grant would get the filter's columns, not
	// these, so it is refused; the revoke takes away the filter grant.
	withColumns := grants.Permission{Principal: role, Resource: grants.Resource{Database: "t1db", Table: "events",
		Columns: []string{"event"}}, CellsFilter: "tenant_t1", Permissions: []string{"SELECT"}}
	before := len(fake.requests("GrantPermissions"))
	if err := catalog.Grant(t.Context(), regionA, withColumns); err == nil {
		t.Error("Grant of columns through a data cells filter succeeded")
	}
	if n := len(fake.requests("GrantPermissions")); n != before {
		t.Errorf("refused Grant sent a request")
	}
	if err := catalog.Revoke(t.Context(), regionA, withColumns); err != nil {
		t.Fatal(err)
	}
	reqs := fake.requests("RevokePermissions")
	want := jsonOf(t, obj{"DataCellsFilter": obj{"TableCatalogId": fakeAccount, "DatabaseName": "t1db", "TableName": "events", "Name": "tenant_t1"}})
	if diff := cmp.Diff(want, reqs[len(reqs)-1].Body["Resource"]); diff != "" {
		t.Errorf("RevokePermissions resource (-want +got):\n%s", diff)
	}
}

func TestGrantRefusesBadInput(t *testing.T) {
	t.Parallel()
	fake := newFake(t, func(op string, _ map[string]any) (any, *awsError) {
		t.Errorf("unexpected call %s", op)
		return nil, nil
	})
	catalog, _ := newCatalog(t, fake.URL)
	const role = "arn:aws:iam::111122223333:role/reader"
	for _, tc := range []struct {
		name   string
		region string
		p      grants.Permission
	}{
		{"no region", "", grants.Permission{Principal: role, Resource: grants.Resource{Database: "d"}, Permissions: []string{"SELECT"}}},
		{"other region", regionA, grants.Permission{Principal: role, Resource: grants.Resource{Region: regionB, Database: "d"}, Permissions: []string{"SELECT"}}},
		{"no principal", regionA, grants.Permission{Resource: grants.Resource{Database: "d"}, Permissions: []string{"SELECT"}}},
		{"no permissions", regionA, grants.Permission{Principal: role, Resource: grants.Resource{Database: "d"}}},
		{"no database", regionA, grants.Permission{Principal: role, Resource: grants.Resource{Table: "t"}, Permissions: []string{"SELECT"}}},
		{"columns without table", regionA, grants.Permission{Principal: role, Resource: grants.Resource{Database: "d", Columns: []string{"c"}}, Permissions: []string{"SELECT"}}},
		{"filter without table", regionA, grants.Permission{Principal: role, Resource: grants.Resource{Database: "d"}, CellsFilter: "f", Permissions: []string{"SELECT"}}},
	} {
		if err := catalog.Grant(t.Context(), tc.region, tc.p); err == nil {
			t.Errorf("%s: Grant succeeded", tc.name)
		}
		if err := catalog.Revoke(t.Context(), tc.region, tc.p); err == nil {
			t.Errorf("%s: Revoke succeeded", tc.name)
		}
	}
}

func TestRevokeAbsent(t *testing.T) {
	t.Parallel()
	p := grants.Permission{Principal: "111122223333", Resource: grants.Resource{Database: "d", Table: "t", Columns: []string{"c"}},
		Permissions: []string{"SELECT"}}
	for _, tc := range []struct {
		answer  awsError
		wantErr bool
	}{
		// What Lake Formation answers when there is nothing to revoke.
		{answer: awsError{"InvalidInputException", "No permissions revoked. Grantee has no permissions and no grantable permissions on resource."}},
		{answer: awsError{"InvalidInputException", "No permissions revoked. Revoking Tag permissions on Tags that grantee does not have permissions on."}},
		{answer: awsError{"InvalidInputException", "cannot grant/revoke permission on non-existent column"}},
		{answer: awsError{"EntityNotFoundException", "Table t not found."}},
		// Real failures.
		{answer: awsError{"InvalidInputException", "Invalid principal"}, wantErr: true},
		{answer: awsError{"AccessDeniedException", "Insufficient Lake Formation permission(s)"}, wantErr: true},
	} {
		fake := newFake(t, func(op string, _ map[string]any) (any, *awsError) {
			return nil, &tc.answer
		})
		catalog, _ := newCatalog(t, fake.URL)
		err := catalog.Revoke(t.Context(), regionA, p)
		if gotErr := err != nil; gotErr != tc.wantErr {
			t.Errorf("answer %s %q: Revoke = %v, want error %t", tc.answer.Code, tc.answer.Message, err, tc.wantErr)
		}
		if tc.wantErr {
			// RevokePermissions does not model AccessDeniedException: the
			// SDK's generic API error carries the code.
			if apiErr, ok := errors.AsType[smithy.APIError](err); !ok || apiErr.ErrorCode() != tc.answer.Code {
				t.Errorf("Revoke error %v does not carry the API error %s", err, tc.answer.Code)
			}
		}
	}
}

func TestGrantMissingResource(t *testing.T) {
	t.Parallel()
	fake := newFake(t, func(string, map[string]any) (any, *awsError) {
		return nil, &awsError{"EntityNotFoundException", "Database d not found."}
	})
	catalog, _ := newCatalog(t, fake.URL)
	err := catalog.Grant(t.Context(), regionA, grants.Permission{Principal: "111122223333",
		Resource: grants.Resource{Database: "d"}, Permissions: []string{"DESCRIBE"}})
	if !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("Grant = %v, want grants.ErrNotFound", err)
	}
	if _, ok := errors.AsType[*lftypes.EntityNotFoundException](err); !ok {
		t.Errorf("Grant error %v does not carry the SDK's EntityNotFoundException", err)
	}
}

func TestGrantRetriesConcurrentModification(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	failures := 2
	fake := newFake(t, func(string, map[string]any) (any, *awsError) {
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			return nil, &awsError{"ConcurrentModificationException", "Concurrent modification"}
		}
		return nil, nil
	})
	catalog, calls := newCatalog(t, fake.URL)
	if err := catalog.Grant(t.Context(), regionA, grants.Permission{Principal: "111122223333",
		Resource: grants.Resource{Database: "d"}, Permissions: []string{"DESCRIBE"}}); err != nil {
		t.Fatal(err)
	}
	if got, want := calls.Attempts("LakeFormation.GrantPermissions"), int64(3); got != want {
		t.Errorf("GrantPermissions attempts = %d, want %d", got, want)
	}
}

// A filter confining tenant t-123 to its rows of a shared table.
var tenantFilter = grants.CellsFilter{
	Database:  "pool_db",
	Table:     "events",
	Name:      "cairn_tenant_t-123",
	RowFilter: "tenant_id = 't-123'",
	Columns:   []string{"tenant_id", "event"},
}

func TestEnsureCellsFilterCreates(t *testing.T) {
	t.Parallel()
	fake := newFake(t, nil)
	catalog, calls := newCatalog(t, fake.URL)

	if err := catalog.EnsureCellsFilter(t.Context(), regionA, tenantFilter); err != nil {
		t.Fatal(err)
	}
	allColumns := tenantFilter
	allColumns.Name, allColumns.Columns = "cairn_tenant_t-123_all", nil
	if err := catalog.EnsureCellsFilter(t.Context(), regionA, allColumns); err != nil {
		t.Fatal(err)
	}

	reqs := fake.requests("CreateDataCellsFilter")
	if len(reqs) != 2 {
		t.Fatalf("CreateDataCellsFilter requests = %d, want 2", len(reqs))
	}
	want := jsonOf(t, obj{"TableData": obj{
		"TableCatalogId": fakeAccount,
		"DatabaseName":   "pool_db",
		"TableName":      "events",
		"Name":           "cairn_tenant_t-123",
		"RowFilter":      obj{"FilterExpression": "tenant_id = 't-123'"},
		"ColumnNames":    []string{"event", "tenant_id"},
	}})
	if diff := cmp.Diff(want, any(reqs[0].Body)); diff != "" {
		t.Errorf("CreateDataCellsFilter body (-want +got):\n%s", diff)
	}
	data := reqs[0].Body["TableData"].(map[string]any)
	if expr := data["RowFilter"].(map[string]any)["FilterExpression"].(string); !strings.Contains(expr, "'t-123'") {
		t.Errorf("FilterExpression %q does not hold the tenant ID", expr)
	}
	want = jsonOf(t, obj{"TableData": obj{
		"TableCatalogId": fakeAccount,
		"DatabaseName":   "pool_db",
		"TableName":      "events",
		"Name":           "cairn_tenant_t-123_all",
		"RowFilter":      obj{"FilterExpression": "tenant_id = 't-123'"},
		"ColumnWildcard": obj{},
	}})
	if diff := cmp.Diff(want, any(reqs[1].Body)); diff != "" {
		t.Errorf("CreateDataCellsFilter body, all columns (-want +got):\n%s", diff)
	}
	if n := calls.Total("STS.GetCallerIdentity"); n != 1 {
		t.Errorf("STS.GetCallerIdentity calls = %d, want 1 (cached per Region)", n)
	}
	// Another Region looks its catalog ID up once too.
	if err := catalog.EnsureCellsFilter(t.Context(), regionB, tenantFilter); err != nil {
		t.Fatal(err)
	}
	if n := calls.Total("STS.GetCallerIdentity"); n != 2 {
		t.Errorf("STS.GetCallerIdentity calls = %d, want 2 (one per Region)", n)
	}
}

func TestEnsureCellsFilterExisting(t *testing.T) {
	t.Parallel()
	same := obj{
		"TableCatalogId": fakeAccount, "DatabaseName": "pool_db", "TableName": "events", "Name": tenantFilter.Name,
		"RowFilter": obj{"FilterExpression": "tenant_id = 't-123'"}, "ColumnNames": []string{"tenant_id", "event"}, "VersionId": "v1",
	}
	with := func(k string, v any) obj {
		out := obj{}
		for key, val := range same {
			out[key] = val
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		existing   obj
		wantUpdate bool
	}{
		{"same", same, false},
		{"other row filter", with("RowFilter", obj{"FilterExpression": "tenant_id = 't-999'"}), true},
		{"all rows", with("RowFilter", obj{"AllRowsWildcard": obj{}}), true},
		{"other columns", with("ColumnNames", []string{"tenant_id"}), true},
		{"column wildcard", with("ColumnNames", nil), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(t, func(op string, _ map[string]any) (any, *awsError) {
				switch op {
				case "CreateDataCellsFilter":
					return nil, &awsError{"AlreadyExistsException", "A data cells filter with that name already exists."}
				case "GetDataCellsFilter":
					existing := tc.existing
					if tc.name == "column wildcard" {
						existing = with("ColumnNames", nil)
						existing["ColumnWildcard"] = obj{}
					}
					return obj{"DataCellsFilter": existing}, nil
				}
				return nil, nil
			})
			catalog, _ := newCatalog(t, fake.URL)
			if err := catalog.EnsureCellsFilter(t.Context(), regionA, tenantFilter); err != nil {
				t.Fatal(err)
			}
			gets := fake.requests("GetDataCellsFilter")
			if len(gets) != 1 {
				t.Fatalf("GetDataCellsFilter requests = %d, want 1", len(gets))
			}
			wantGet := jsonOf(t, obj{"TableCatalogId": fakeAccount, "DatabaseName": "pool_db", "TableName": "events", "Name": tenantFilter.Name})
			if diff := cmp.Diff(wantGet, any(gets[0].Body)); diff != "" {
				t.Errorf("GetDataCellsFilter body (-want +got):\n%s", diff)
			}
			updates := fake.requests("UpdateDataCellsFilter")
			if got := len(updates) == 1; got != tc.wantUpdate || len(updates) > 1 {
				t.Fatalf("UpdateDataCellsFilter requests = %d, want update %t", len(updates), tc.wantUpdate)
			}
			if tc.wantUpdate {
				create := fake.requests("CreateDataCellsFilter")[0].Body
				if diff := cmp.Diff(create, updates[0].Body); diff != "" {
					t.Errorf("UpdateDataCellsFilter body differs from the desired filter (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestEnsureCellsFilterRefusesBadInput(t *testing.T) {
	t.Parallel()
	fake := newFake(t, func(op string, _ map[string]any) (any, *awsError) {
		t.Errorf("unexpected call %s", op)
		return nil, nil
	})
	catalog, _ := newCatalog(t, fake.URL)
	noRows := tenantFilter
	noRows.RowFilter = " "
	noName := tenantFilter
	noName.Name = ""
	for name, f := range map[string]grants.CellsFilter{"no row filter": noRows, "no name": noName} {
		if err := catalog.EnsureCellsFilter(t.Context(), regionA, f); err == nil {
			t.Errorf("%s: EnsureCellsFilter succeeded", name)
		}
	}
	if err := catalog.EnsureCellsFilter(t.Context(), "", tenantFilter); err == nil {
		t.Error("EnsureCellsFilter without a Region succeeded")
	}
}

func TestEnsureCellsFilterMissingTable(t *testing.T) {
	t.Parallel()
	fake := newFake(t, func(string, map[string]any) (any, *awsError) {
		return nil, &awsError{"EntityNotFoundException", "Table events not found."}
	})
	catalog, _ := newCatalog(t, fake.URL)
	if err := catalog.EnsureCellsFilter(t.Context(), regionA, tenantFilter); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("EnsureCellsFilter = %v, want grants.ErrNotFound", err)
	}
}

func TestDeleteCellsFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		answer  *awsError
		wantErr bool
	}{
		{"deleted", nil, false},
		{"absent", &awsError{"EntityNotFoundException", "Data cells filter not found."}, false},
		{"denied", &awsError{"AccessDeniedException", "Insufficient Lake Formation permission(s)"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(t, func(string, map[string]any) (any, *awsError) { return nil, tc.answer })
			catalog, _ := newCatalog(t, fake.URL)
			err := catalog.DeleteCellsFilter(t.Context(), regionA, "pool_db", "events", tenantFilter.Name)
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Fatalf("DeleteCellsFilter = %v, want error %t", err, tc.wantErr)
			}
			reqs := fake.requests("DeleteDataCellsFilter")
			if len(reqs) != 1 {
				t.Fatalf("DeleteDataCellsFilter requests = %d, want 1", len(reqs))
			}
			want := jsonOf(t, obj{"TableCatalogId": fakeAccount, "DatabaseName": "pool_db", "TableName": "events", "Name": tenantFilter.Name})
			if diff := cmp.Diff(want, any(reqs[0].Body)); diff != "" {
				t.Errorf("DeleteDataCellsFilter body (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPermissionsNormalises feeds Permissions Lake Formation's own answer
// shapes: SELECT on a table listed on the table with a column wildcard, a
// wildcard with excluded columns, data cells filter grants (IncludeRelated),
// grant-option-only entries, table wildcards, and pages.
func TestPermissionsNormalises(t *testing.T) {
	t.Parallel()
	const (
		roleA = "arn:aws:iam::111122223333:role/a"
		roleB = "arn:aws:iam::111122223333:role/b"
	)
	principal := func(p string) obj { return obj{"DataLakePrincipalIdentifier": p} }
	entry := func(p string, res obj, perms ...string) obj {
		return obj{"Principal": principal(p), "Resource": res, "Permissions": perms, "PermissionsWithGrantOption": []string{}}
	}
	column := func(name string) obj { return obj{"Name": name, "Type": "string"} }
	fake := newFake(t, func(op string, body map[string]any) (any, *awsError) {
		switch op {
		case "GetTables":
			if body["NextToken"] == nil {
				return obj{"TableList": []obj{{"Name": "events", "DatabaseName": "db",
					"Parameters":        obj{"cairn:shared": "true"},
					"StorageDescriptor": obj{"Columns": []obj{column("tenant_id"), column("event")}}}},
					"NextToken": "tables-2"}, nil
			}
			return obj{"TableList": []obj{{"Name": "profiles", "DatabaseName": "db",
				"StorageDescriptor": obj{"Columns": []obj{column("id"), column("email"), column("phone")}},
				"PartitionKeys":     []obj{column("dt")}}}}, nil
		case "ListPermissions":
			res := body["Resource"].(map[string]any)
			if res["Database"] != nil {
				return obj{"PrincipalResourcePermissions": []obj{
					entry("IAM_ALLOWED_PRINCIPALS", obj{"Database": obj{"CatalogId": fakeAccount, "Name": "db"}}, "ALL"),
					entry(roleA, obj{"Database": obj{"CatalogId": fakeAccount, "Name": "db"}}, "DESCRIBE"),
				}}, nil
			}
			if res["Table"].(map[string]any)["TableWildcard"] != nil {
				// Lake Formation lists SELECT on all tables as the columns
				// of "ALL_TABLES", the rest on the wildcard.
				return obj{"PrincipalResourcePermissions": []obj{
					entry(roleA, obj{"TableWithColumns": obj{"CatalogId": fakeAccount, "DatabaseName": "db", "Name": "ALL_TABLES", "ColumnWildcard": obj{}}}, "SELECT"),
					entry(roleA, obj{"Table": obj{"CatalogId": fakeAccount, "DatabaseName": "db", "TableWildcard": obj{}}}, "DESCRIBE"),
				}}, nil
			}
			switch res["Table"].(map[string]any)["Name"] {
			case "events":
				if body["NextToken"] == nil {
					return obj{"PrincipalResourcePermissions": []obj{
						entry(roleB, obj{"Table": obj{"CatalogId": fakeAccount, "DatabaseName": "db", "Name": "events"}}, "DESCRIBE"),
					}, "NextToken": "events-2"}, nil
				}
				grantOptionOnly := entry(roleA, obj{"Table": obj{"DatabaseName": "db", "Name": "events"}})
				grantOptionOnly["PermissionsWithGrantOption"] = []string{"SELECT"}
				return obj{"PrincipalResourcePermissions": []obj{
					entry(roleB, obj{"TableWithColumns": obj{"CatalogId": fakeAccount, "DatabaseName": "db", "Name": "events", "ColumnWildcard": obj{}}}, "SELECT"),
					entry(roleA, obj{"DataCellsFilter": obj{"TableCatalogId": fakeAccount, "DatabaseName": "db", "TableName": "events", "Name": "tenant_t1"}}, "SELECT", "DESCRIBE"),
					grantOptionOnly,
				}}, nil
			case "profiles":
				return obj{"PrincipalResourcePermissions": []obj{
					entry(roleA, obj{"TableWithColumns": obj{"DatabaseName": "db", "Name": "profiles", "ColumnNames": []string{"id", "email"}}}, "SELECT"),
					entry(roleB, obj{"TableWithColumns": obj{"DatabaseName": "db", "Name": "profiles", "ColumnWildcard": obj{"ExcludedColumnNames": []string{"phone"}}}}, "SELECT"),
					entry(roleB, obj{"Table": obj{"DatabaseName": "db", "TableWildcard": obj{}}}, "DESCRIBE"),
					entry(roleB, obj{"TableWithColumns": obj{"DatabaseName": "db", "Name": "ALL_TABLES", "ColumnWildcard": obj{}}}, "SELECT"),
					entry(roleB, obj{"Table": obj{"DatabaseName": "otherdb", "Name": "profiles"}}, "SELECT"),
					entry(roleB, obj{"DataLocation": obj{"ResourceArn": "arn:aws:s3:::bucket"}}, "DATA_LOCATION_ACCESS"),
				}}, nil
			}
		}
		return nil, &awsError{"InvalidInputException", "unexpected " + op}
	})
	catalog, calls := newCatalog(t, fake.URL)

	got, err := catalog.Permissions(t.Context(), regionA, "db")
	if err != nil {
		t.Fatal(err)
	}
	res := func(table string, columns ...string) grants.Resource {
		return grants.Resource{Region: regionA, Database: "db", Table: table, Columns: columns}
	}
	want := []grants.Permission{
		{Principal: "IAM_ALLOWED_PRINCIPALS", Resource: res(""), Permissions: []string{"ALL"}},
		{Principal: roleA, Resource: res(""), Permissions: []string{"DESCRIBE"}},
		{Principal: roleB, Resource: res("events"), Permissions: []string{"DESCRIBE", "SELECT"}},
		{Principal: roleA, Resource: res("events"), CellsFilter: "tenant_t1", Permissions: []string{"DESCRIBE", "SELECT"}},
		{Principal: roleB, Resource: res("profiles", "dt", "email", "id"), Permissions: []string{"SELECT"}},
		{Principal: roleA, Resource: res("profiles", "email", "id"), Permissions: []string{"SELECT"}},
		// On all tables: SELECT as Lake Formation lists it, merged with the
		// rest; the entries a table's list repeats are the same permission.
		{Principal: roleA, Resource: res(""), AllTables: true, Permissions: []string{"DESCRIBE", "SELECT"}},
		{Principal: roleB, Resource: res(""), AllTables: true, Permissions: []string{"DESCRIBE", "SELECT"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Permissions (-want +got):\n%s", diff)
	}

	wantCalls := map[string]int64{"Glue.GetTables": 2, "LakeFormation.ListPermissions": 5}
	if diff := cmp.Diff(wantCalls, calls.Snapshot()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	lists := fake.requests("ListPermissions")
	if diff := cmp.Diff(jsonOf(t, obj{"Resource": obj{"Database": obj{"Name": "db"}}}), any(lists[0].Body)); diff != "" {
		t.Errorf("database ListPermissions body (-want +got):\n%s", diff)
	}
	wildcard := jsonOf(t, obj{"Resource": obj{"Table": obj{"DatabaseName": "db", "TableWildcard": obj{}}}})
	if diff := cmp.Diff(wildcard, any(lists[1].Body)); diff != "" {
		t.Errorf("all tables ListPermissions body (-want +got):\n%s", diff)
	}
	for _, r := range lists[2:] {
		if r.Body["IncludeRelated"] != "TRUE" {
			t.Errorf("table ListPermissions without IncludeRelated=TRUE: %v", r.Body)
		}
	}
	if got := fake.requests("GetTables")[0].Body["MaxResults"]; got != float64(100) {
		t.Errorf("GetTables MaxResults = %v, want 100", got)
	}
}

func TestPermissionsMissingDatabaseFake(t *testing.T) {
	t.Parallel()
	fake := newFake(t, func(string, map[string]any) (any, *awsError) {
		return nil, &awsError{"EntityNotFoundException", "Database db not found."}
	})
	catalog, _ := newCatalog(t, fake.URL)
	if _, err := catalog.Permissions(t.Context(), regionA, "db"); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("Permissions = %v, want grants.ErrNotFound", err)
	}
}

func TestAssumeRoleRequest(t *testing.T) {
	t.Parallel()
	fake := newFake(t, nil)
	issuer, _ := newSTS(t, fake.URL)
	const policy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pool/t1/*"}]}`

	creds, err := issuer.AssumeRole(t.Context(), grants.AssumeRoleInput{
		Region: regionA, RoleARN: "arn:aws:iam::111122223333:role/data", SessionName: "cairn-t1",
		ExternalID: "t1", Policy: policy, Duration: 15 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := grants.Credentials{AccessKeyID: "ASIAFAKE", SecretAccessKey: "secret", SessionToken: "token",
		Expiration: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	if diff := cmp.Diff(want, creds); diff != "" {
		t.Errorf("credentials (-want +got):\n%s", diff)
	}
	if _, err := issuer.AssumeRole(t.Context(), grants.AssumeRoleInput{
		Region: regionA, RoleARN: "arn:aws:iam::111122223333:role/data", SessionName: "cairn-t1",
	}); err != nil {
		t.Fatal(err)
	}
	reqs := fake.requests("AssumeRole")
	if len(reqs) != 2 {
		t.Fatalf("AssumeRole requests = %d, want 2", len(reqs))
	}
	wantForm := obj{"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": "arn:aws:iam::111122223333:role/data",
		"RoleSessionName": "cairn-t1", "ExternalId": "t1", "Policy": policy, "DurationSeconds": "900"}
	if diff := cmp.Diff(wantForm, reqs[0].Body); diff != "" {
		t.Errorf("AssumeRole form (-want +got):\n%s", diff)
	}
	wantForm = obj{"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": "arn:aws:iam::111122223333:role/data",
		"RoleSessionName": "cairn-t1"}
	if diff := cmp.Diff(wantForm, reqs[1].Body); diff != "" {
		t.Errorf("AssumeRole form without options (-want +got):\n%s", diff)
	}

	for name, in := range map[string]grants.AssumeRoleInput{
		"no region":       {RoleARN: "arn:aws:iam::111122223333:role/data", SessionName: "s"},
		"no role":         {Region: regionA, SessionName: "s"},
		"no session name": {Region: regionA, RoleARN: "arn:aws:iam::111122223333:role/data"},
		"negative":        {Region: regionA, RoleARN: "arn:aws:iam::111122223333:role/data", SessionName: "s", Duration: -time.Second},
	} {
		if _, err := issuer.AssumeRole(t.Context(), in); err == nil {
			t.Errorf("%s: AssumeRole succeeded", name)
		}
	}
	if n := len(fake.requests("AssumeRole")); n != 2 {
		t.Errorf("AssumeRole requests after refused inputs = %d, want 2", n)
	}
}
