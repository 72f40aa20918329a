package main

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lakeformation"
	lftypes "github.com/aws/aws-sdk-go-v2/service/lakeformation/types"

	"github.com/cairn-cdp/cairn/internal/testdb"
)

func motoLakeFormation(endpoint, region string) *lakeformation.Client {
	cfg := motoConfig()
	cfg.Region = region
	return lakeformation.NewFromConfig(cfg, func(o *lakeformation.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// dbPermissions lists Lake Formation's own permissions on a database, by
// principal.
func dbPermissions(t *testing.T, lf *lakeformation.Client, db string) map[string][]string {
	t.Helper()
	return listPermissions(t, lf, &lftypes.Resource{Database: &lftypes.DatabaseResource{Name: aws.String(db)}})
}

// allTablesPermissions lists Lake Formation's own permissions on every
// table of a database (its table wildcard), by principal.
func allTablesPermissions(t *testing.T, lf *lakeformation.Client, db string) map[string][]string {
	t.Helper()
	return listPermissions(t, lf, allTables(db))
}

func allTables(db string) *lftypes.Resource {
	return &lftypes.Resource{Table: &lftypes.TableResource{DatabaseName: aws.String(db), TableWildcard: &lftypes.TableWildcard{}}}
}

func listPermissions(t *testing.T, lf *lakeformation.Client, res *lftypes.Resource) map[string][]string {
	t.Helper()
	out, err := lf.ListPermissions(t.Context(), &lakeformation.ListPermissionsInput{Resource: res})
	if err != nil {
		t.Fatal(err)
	}
	perms := map[string][]string{}
	for _, p := range out.PrincipalResourcePermissions {
		id := aws.ToString(p.Principal.DataLakePrincipalIdentifier)
		for _, x := range p.Permissions {
			perms[id] = append(perms[id], string(x))
		}
	}
	return perms
}

// TestAWSGrantsAndReconcile drives the grants broker against the
// emulator's Lake Formation: grants and revokes show up in Lake Formation's
// own ListPermissions (SELECT on the database as SELECT on all its tables,
// which is what Lake Formation takes), reconcile repairs a permission
// deleted behind the broker's back and reports one added behind its back,
// and credentials come from STS.
func TestAWSGrantsAndReconcile(t *testing.T) {
	moto := awsTestEndpoint(t)
	t.Parallel()
	keyFile := t.TempDir() + "/signing-key.pem"
	admin := adminToken(t, keyFile)
	url := startAWSServer(t, "grants", awsVars(t, moto, testdb.Postgres(t), keyFile))
	const region = "eu-north-1"
	id := awsOnboard(t, url, admin, "dedicated", region)
	awaitTenants(t, url, admin, []string{id}, "active", 90*time.Second)
	db := outputsOf(tenantStacks(t, url, admin, id)[region])["glue_database"]
	lf := motoLakeFormation(moto, region)

	role := "arn:aws:iam::123456789012:role/analysts-" + awsRandom(8)
	mustAPI(t, "POST", url+"/v1/tenants/"+id+"/principals", admin, `{"principal":"`+role+`"}`, http.StatusCreated)
	g := mustAPI(t, "POST", url+"/v1/tenants/"+id+"/grants", admin,
		`{"principal":"`+role+`","resource":{"region":"`+region+`","database":"`+db+`"},"permissions":["SELECT"]}`, http.StatusAccepted)
	gid := jstr(g, "id")
	waitGrant := func(status string) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; {
			if got := mustAPI(t, "GET", url+"/v1/tenants/"+id+"/grants/"+gid, admin, "", http.StatusOK); jstr(got, "status") == status {
				return
			} else if time.Now().After(deadline) {
				t.Fatalf("grant is %s, waited for %s", jstr(got, "status"), status)
			}
			time.Sleep(100 * time.Millisecond) // polling the API, not waiting blind
		}
	}
	waitGrant("active")
	if perms := allTablesPermissions(t, lf, db); !slices.Contains(perms[role], "SELECT") {
		t.Fatalf("the grant is not in Lake Formation: %v", perms)
	}
	if perms := dbPermissions(t, lf, db); len(perms[role]) != 0 {
		t.Fatalf("SELECT was granted on the database itself, which Lake Formation refuses: %v", perms)
	}

	// Behind the broker's back: its grant is revoked, a stranger's added.
	if _, err := lf.RevokePermissions(t.Context(), &lakeformation.RevokePermissionsInput{
		Principal:   &lftypes.DataLakePrincipal{DataLakePrincipalIdentifier: aws.String(role)},
		Resource:    allTables(db),
		Permissions: []lftypes.Permission{lftypes.PermissionSelect},
	}); err != nil {
		t.Fatal(err)
	}
	const stranger = "999999999999"
	if _, err := lf.GrantPermissions(t.Context(), &lakeformation.GrantPermissionsInput{
		Principal:   &lftypes.DataLakePrincipal{DataLakePrincipalIdentifier: aws.String(stranger)},
		Resource:    &lftypes.Resource{Database: &lftypes.DatabaseResource{Name: aws.String(db)}},
		Permissions: []lftypes.Permission{lftypes.PermissionDescribe},
	}); err != nil {
		t.Fatal(err)
	}
	r := mustAPI(t, "POST", url+"/v1/tenants/"+id+"/grants/reconcile", admin, "", http.StatusOK)
	repaired, _ := r["repaired"].([]any)
	if len(repaired) != 1 || repaired[0] != gid {
		t.Fatalf("reconcile repaired %v, want [%s]", r["repaired"], gid)
	}
	unmanaged, _ := r["unmanaged"].([]any)
	found := false
	for _, u := range unmanaged {
		if m, _ := u.(map[string]any); m["principal"] == stranger {
			found = true
		}
	}
	if !found {
		t.Fatalf("reconcile did not report the stranger's permission: %v", r["unmanaged"])
	}
	if perms := allTablesPermissions(t, lf, db); !slices.Contains(perms[role], "SELECT") {
		t.Fatalf("after reconcile: %v (the repair must be back)", perms)
	}
	if perms := dbPermissions(t, lf, db); !slices.Contains(perms[stranger], "DESCRIBE") {
		t.Fatalf("after reconcile: %v (the stranger's must be left alone)", perms)
	}

	// Revoke: gone from Lake Formation, kept in the ledger.
	mustAPI(t, "DELETE", url+"/v1/tenants/"+id+"/grants/"+gid, admin, "", http.StatusAccepted)
	waitGrant("revoked")
	if perms := allTablesPermissions(t, lf, db); slices.Contains(perms[role], "SELECT") {
		t.Fatalf("revoked grant still in Lake Formation: %v", perms)
	}

	// Credentials come from STS on the tenant's data-access role.
	c := mustAPI(t, "POST", url+"/v1/tenants/"+id+"/credentials", admin, "", http.StatusCreated)
	if jstr(c, "access_key_id") == "" || jstr(c, "session_token") == "" || jstr(c, "role_arn") != outputsOf(tenantStacks(t, url, admin, id)[region])["data_access_role_arn"] {
		t.Fatalf("credentials: %v", c)
	}
}
