package main

// The provisioner's AWS integration tests: the real server in AWS mode
// (--cloud aws) on Postgres, provisioning on moto, checked through the AWS
// API. Helpers are in awsenv_test.go; crash recovery and replicas in
// aws_recovery_test.go.
//
//	scripts/testenv.sh run go test ./cmd/server/ -run AWS -v

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

// TestAWSOnboardAndOffboard onboards a dedicated and two pooled tenants in
// two Regions, checks in moto that each got what it should, then offboards
// them and checks that it is gone.
func TestAWSOnboardAndOffboard(t *testing.T) {
	moto := awstest.Endpoint(t)
	t.Parallel()
	ctx := t.Context()
	keyFile := t.TempDir() + "/signing-key.pem"
	admin := adminToken(t, keyFile)
	url := startAWSServer(t, "onboard", awsVars(t, moto, testdb.Postgres(t), keyFile))
	regions := []string{"us-east-2", "eu-west-2"} // see the Regions in awsenv_test.go

	ded := awsOnboard(t, url, admin, "dedicated", regions...)
	pooled := []string{awsOnboard(t, url, admin, "pooled", regions...), awsOnboard(t, url, admin, "pooled", regions...)}
	awaitTenants(t, url, admin, append([]string{ded}, pooled...), "active", 90*time.Second)

	type bucketObject struct{ region, bucket, key string }
	var dedBuckets, pooledObjects []bucketObject
	var poolItems []bucketObject // region, table, partition key
	var dedTables []bucketObject // region, table
	var dedKeys []bucketObject   // region, KMS key ARN
	name := dedicatedStack(ded)
	if want := "cairn-" + strings.ReplaceAll(ded, "_", "-"); name != want {
		t.Fatalf("dedicated stack name %q, want %q", name, want)
	}

	// The dedicated tenant: its own stack in each Region, whose outputs
	// name real resources in that Region.
	stacks := tenantStacks(t, url, admin, ded)
	for _, region := range regions {
		st := stacks[region]
		if st == nil {
			t.Fatalf("no stack in %s for %s: %v", region, ded, stacks)
		}
		if jstr(st, "status") != "ready" || jstr(st, "stack_name") != name || jstr(st, "stack_status") != "CREATE_COMPLETE" || jstr(st, "kind") != "dedicated" || jnum(st, "attempt") != 1 {
			t.Errorf("%s stack in %s: %v", ded, region, st)
		}
		desc, err := motoCFN(moto, region).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err != nil {
			t.Fatalf("moto DescribeStacks %s in %s: %v", name, region, err)
		}
		if len(desc.Stacks) != 1 || desc.Stacks[0].StackStatus != "CREATE_COMPLETE" || !strings.Contains(aws.ToString(desc.Stacks[0].StackId), ":"+region+":") {
			t.Fatalf("moto has %s in %s as %+v, want one CREATE_COMPLETE stack of that Region", name, region, desc.Stacks)
		}
		if n := len(liveStacks(t, moto, region)[name]); n != 1 {
			t.Errorf("moto lists %d stacks named %s in %s, want 1", n, name, region)
		}
		out := outputsOf(st)
		for _, key := range []string{"raw_bucket", "clean_bucket", "curated_bucket", "stream_arn", "profile_table", "glue_database", "data_access_role_arn", "kms_key_arn", "athena_workgroup"} {
			if out[key] == "" {
				t.Errorf("%s in %s: no output %s in %v", ded, region, key, out)
			}
		}
		s3c := motoS3(moto, region)
		for _, key := range []string{"raw_bucket", "clean_bucket", "curated_bucket"} {
			bucket := out[key]
			if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
				t.Errorf("%s in %s: HeadBucket %s (%s): %v", ded, region, bucket, key, err)
				continue
			}
			loc, err := s3c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(bucket)})
			if err != nil {
				t.Fatal(err)
			}
			want := region
			if region == "us-east-1" {
				want = "" // S3's name for us-east-1
			}
			if got := string(loc.LocationConstraint); got != want {
				t.Errorf("%s's %s %s is in %q, want %q: data must stay in the tenant's Regions", ded, key, bucket, got, want)
			}
			dedBuckets = append(dedBuckets, bucketObject{region, bucket, ""})
		}
		// Data in the raw zone, so that the purge has something to purge.
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(out["raw_bucket"]), Key: aws.String("events/1.json"), Body: strings.NewReader(`{}`)}); err != nil {
			t.Fatal(err)
		}
		if _, err := motoDynamo(moto, region).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(out["profile_table"])}); err != nil {
			t.Errorf("%s in %s: DescribeTable %s: %v", ded, region, out["profile_table"], err)
		}
		dedTables = append(dedTables, bucketObject{region, out["profile_table"], ""})
		dedKeys = append(dedKeys, bucketObject{region, out["kms_key_arn"], ""})
		if want := "cairn_" + ded; out["glue_database"] != want {
			t.Errorf("%s in %s: glue_database %q, want %q", ded, region, out["glue_database"], want)
		}
		db, err := motoGlue(moto, region).GetDatabase(ctx, &glue.GetDatabaseInput{Name: aws.String("cairn_" + ded)})
		if err != nil {
			t.Errorf("%s in %s: Glue GetDatabase cairn_%s: %v", ded, region, ded, err)
		} else if got, want := aws.ToString(db.Database.LocationUri), "s3://"+out["raw_bucket"]+"/"; got != want {
			t.Errorf("%s in %s: Glue database location %q, want %q", ded, region, got, want)
		}
	}

	// The pool: one stack per Region, whoever else uses it, and a slice of
	// it for each pooled tenant.
	pools := poolsByRegion(t, url, admin)
	for _, region := range regions {
		pool := pools[region]
		if jstr(pool, "status") != "ready" || jstr(pool, "stack_name") != "cairn-pool" || jstr(pool, "stack_status") != "CREATE_COMPLETE" || jnum(pool, "tenant_count") != 2 {
			t.Errorf("GET /v1/pools in %s: %v, want ready cairn-pool with 2 tenants", region, pool)
		}
		live := liveStacks(t, moto, region)[provisioner.PoolStackName()]
		if len(live) != 1 || live[0].StackStatus != "CREATE_COMPLETE" {
			t.Fatalf("moto has %d pool stacks in %s (%+v), want exactly one, CREATE_COMPLETE", len(live), region, live)
		}
		poolRaw := stackOutput(live[0], "RawBucket")
		for _, id := range pooled {
			st := tenantStacks(t, url, admin, id)[region]
			out := outputsOf(st)
			if jstr(st, "status") != "ready" || jstr(st, "stack_name") != "cairn-pool" || jstr(st, "kind") != "pooled" {
				t.Errorf("pooled %s in %s: %v", id, region, st)
			}
			prefix := "tenants/" + id + "/"
			if out["raw_bucket"] != poolRaw || out["s3_prefix"] != prefix || out["key_prefix"] != "TENANT#"+id+"#" || out["glue_database"] != "cairn_pool_"+id {
				t.Errorf("pooled %s in %s: outputs %v; want the pool's raw bucket %s, prefix %s, its own Glue database", id, region, out, poolRaw, prefix)
			}
			db, err := motoGlue(moto, region).GetDatabase(ctx, &glue.GetDatabaseInput{Name: aws.String("cairn_pool_" + id)})
			if err != nil {
				t.Errorf("pooled %s in %s: Glue GetDatabase: %v", id, region, err)
			} else if got, want := aws.ToString(db.Database.LocationUri), "s3://"+poolRaw+"/"+prefix; got != want {
				t.Errorf("pooled %s in %s: Glue database location %q, want %q (under its prefix)", id, region, got, want)
			}
			key := prefix + "events/1.json"
			if _, err := motoS3(moto, region).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(poolRaw), Key: aws.String(key), Body: strings.NewReader(`{}`)}); err != nil {
				t.Fatal(err)
			}
			pooledObjects = append(pooledObjects, bucketObject{region, poolRaw, key})
		}
		// Profile items in the home Region's pool table, as ingestion writes
		// them, of the pooled tenants and of one that stays.
		if region == regions[0] {
			table := outputsOf(tenantStacks(t, url, admin, pooled[0])[region])["profile_table"]
			if table == "" {
				t.Fatalf("no profile_table in the outputs of %s in %s", pooled[0], region)
			}
			for _, id := range append(pooled, tenants.NewID()) {
				pk := "TENANT#" + id + "#M#m1"
				if _, err := motoDynamo(moto, region).PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]ddbtypes.AttributeValue{
					"pk": &ddbtypes.AttributeValueMemberS{Value: pk}, "sk": &ddbtypes.AttributeValueMemberS{Value: "M"}, "v": &ddbtypes.AttributeValueMemberN{Value: "1"},
				}}); err != nil {
					t.Fatal(err)
				}
				poolItems = append(poolItems, bucketObject{region, table, pk})
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Offboard: the dedicated tenant and the first pooled one with purge,
	// the second pooled one without.
	mustAPI(t, "DELETE", url+"/v1/tenants/"+ded+"?purge=true", admin, "", http.StatusAccepted)
	mustAPI(t, "DELETE", url+"/v1/tenants/"+pooled[0]+"?purge=true", admin, "", http.StatusAccepted)
	mustAPI(t, "DELETE", url+"/v1/tenants/"+pooled[1], admin, "", http.StatusAccepted)
	awaitTenants(t, url, admin, append([]string{ded}, pooled...), "deleted", 90*time.Second)

	for _, region := range regions {
		st := tenantStacks(t, url, admin, ded)[region]
		if jstr(st, "status") != "deleted" {
			t.Errorf("%s's stack in %s after offboarding: %v", ded, region, st)
		}
		// Its ID is kept, and finds the deleted stack and its events, which
		// its name no longer does.
		stackID := jstr(st, "stack_id")
		if !strings.HasPrefix(stackID, "arn:aws:cloudformation:"+region+":") {
			t.Errorf("%s's stack in %s after offboarding: stack_id %q, want its ARN", ded, region, stackID)
		} else if out, err := motoCFN(moto, region).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stackID)}); err != nil ||
			len(out.Stacks) != 1 || out.Stacks[0].StackStatus != "DELETE_COMPLETE" {
			t.Errorf("moto DescribeStacks %s after offboarding: %v, want the stack, DELETE_COMPLETE", stackID, err)
		} else if ev, err := motoCFN(moto, region).DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stackID)}); err != nil || len(ev.StackEvents) == 0 {
			t.Errorf("moto DescribeStackEvents %s after offboarding: %v, want its events", stackID, err)
		}
		_, err := motoCFN(moto, region).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("moto DescribeStacks %s in %s after offboarding: %v, want \"does not exist\"", name, region, err)
		}
		if n := len(liveStacks(t, moto, region)[name]); n != 0 {
			t.Errorf("moto still lists %d stacks named %s in %s", n, name, region)
		}
		if _, err := motoGlue(moto, region).GetDatabase(ctx, &glue.GetDatabaseInput{Name: aws.String("cairn_" + ded)}); awsErrorCode(err) != "EntityNotFoundException" {
			t.Errorf("Glue database cairn_%s in %s after offboarding: %v, want EntityNotFoundException", ded, region, err)
		}
		for _, id := range pooled {
			if _, err := motoGlue(moto, region).GetDatabase(ctx, &glue.GetDatabaseInput{Name: aws.String("cairn_pool_" + id)}); awsErrorCode(err) != "EntityNotFoundException" {
				t.Errorf("Glue database cairn_pool_%s in %s after offboarding: %v, want EntityNotFoundException", id, region, err)
			}
		}
		// Pooled tenants leaving do not take the shared pool with them.
		if live := liveStacks(t, moto, region)[provisioner.PoolStackName()]; len(live) != 1 {
			t.Errorf("moto has %d pool stacks in %s after pooled tenants left, want 1", len(live), region)
		}
		if pool := poolsByRegion(t, url, admin)[region]; jstr(pool, "status") != "ready" || jnum(pool, "tenant_count") != 0 {
			t.Errorf("GET /v1/pools in %s after offboarding: %v, want ready with 0 tenants", region, pool)
		}
	}
	// The KMS key is RetainExceptOnCreate: the stack's deletion leaves it
	// (the emulator honours that as AWS does), and Cairn does not delete it.
	for _, k := range dedKeys {
		kmsc := kms.NewFromConfig(awstest.Config(""), func(o *kms.Options) { o.Region, o.BaseEndpoint = k.region, aws.String(moto) })
		if key, err := kmsc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k.bucket)}); err != nil || key.KeyMetadata.KeyState != "Enabled" {
			t.Errorf("KMS key %s in %s after offboarding: %v (%v), want it retained, enabled", k.bucket, k.region, err, key)
		}
	}
	for _, tb := range dedTables {
		if _, err := motoDynamo(moto, tb.region).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tb.bucket)}); awsErrorCode(err) != "ResourceNotFoundException" {
			t.Errorf("profile table %s in %s after offboarding: %v, want ResourceNotFoundException", tb.bucket, tb.region, err)
		}
	}
	for _, b := range dedBuckets {
		if _, err := motoS3(moto, b.region).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.bucket)}); awsErrorCode(err) != "NotFound" {
			t.Errorf("retained bucket %s in %s after offboarding with purge: %v, want NotFound", b.bucket, b.region, err)
		}
	}
	// Offboarding deletes a pooled tenant's profile items from the pool
	// table, with purge or without (a dedicated tenant's go with its
	// table), and no other tenant's.
	for i, it := range poolItems {
		got, err := motoDynamo(moto, it.region).GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(it.bucket), Key: map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: it.key}, "sk": &ddbtypes.AttributeValueMemberS{Value: "M"},
		}})
		switch kept := i == len(poolItems)-1; {
		case err != nil:
			t.Fatal(err)
		case kept && got.Item == nil:
			t.Errorf("profile item %s of a tenant that stays is gone from %s", it.key, it.bucket)
		case !kept && got.Item != nil:
			t.Errorf("profile item %s of an offboarded pooled tenant is still in %s", it.key, it.bucket)
		}
	}
	for _, o := range pooledObjects {
		_, err := motoS3(moto, o.region).HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(o.key)})
		purged := strings.Contains(o.key, pooled[0])
		switch {
		case purged && awsErrorCode(err) != "NotFound":
			t.Errorf("object %s/%s of a pooled tenant offboarded with purge: %v, want NotFound", o.bucket, o.key, err)
		case !purged && err != nil:
			t.Errorf("object %s/%s of a pooled tenant offboarded without purge: %v, want it kept", o.bucket, o.key, err)
		}
	}
}

// TestAWSFaults provisions through an awsfault proxy that makes moto look
// like AWS on a bad day: stacks in progress, rolled back, throttled calls,
// lost requests and lost answers. Each case has its own proxy and server,
// so that the proxy's counts are its own.
func TestAWSFaults(t *testing.T) {
	moto := awstest.Endpoint(t)
	t.Parallel()
	const region = "eu-west-3"

	// setupDB starts a server on a proxy of its own, and returns its
	// database as well.
	setupDB := func(t *testing.T) (f *faultEndpoint, url, admin, dbURL string) {
		f = newFaultEndpoint(t, moto)
		keyFile := t.TempDir() + "/signing-key.pem"
		admin = adminToken(t, keyFile)
		dbURL = testdb.Postgres(t)
		url = startAWSServer(t, t.Name(), awsVars(t, f.URL, dbURL, keyFile))
		return f, url, admin, dbURL
	}
	setup := func(t *testing.T) (f *faultEndpoint, url, admin string) {
		f, url, admin, _ = setupDB(t)
		return f, url, admin
	}

	t.Run("in progress", func(t *testing.T) {
		t.Parallel()
		f, url, admin := setup(t)
		gate := closeCreates(f)
		id := awsOnboard(t, url, admin, "dedicated", region)
		name := dedicatedStack(id)
		f.HoldInProgress(name, 5)
		seen := watchStack(f, name)
		gate.Open()

		// Poll fast: the stack is in progress for 5 polling rounds, 100ms
		// apart, and the test must see the tenant then.
		sawInProgress := false
		deadline := time.After(60 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			tn := mustAPI(t, "GET", url+"/v1/tenants/"+id, admin, "", http.StatusOK)
			st := tenantStacks(t, url, admin, id)[region]
			if jstr(st, "stack_status") == "CREATE_IN_PROGRESS" {
				if jstr(tn, "status") != "provisioning" || jstr(st, "status") != "creating" {
					t.Fatalf("stack CREATE_IN_PROGRESS but tenant %s and stack %s, want provisioning and creating", jstr(tn, "status"), jstr(st, "status"))
				}
				sawInProgress = true
			}
			if jstr(tn, "status") == "active" {
				if jstr(st, "status") != "ready" || jstr(st, "stack_status") != "CREATE_COMPLETE" {
					t.Fatalf("tenant active with its stack %v", st)
				}
				break
			}
			if s := jstr(tn, "status"); s != "provisioning" {
				t.Fatalf("tenant %s while its stack is in progress: %q\n%s", s, jstr(tn, "status_reason"), describeTenant(url, admin, id))
			}
			select {
			case <-deadline:
				t.Fatalf("tenant not active 60s after its stack was let go:\n%s", describeTenant(url, admin, id))
			case <-tick.C:
			}
		}
		if !sawInProgress {
			t.Error("never saw the stack CREATE_IN_PROGRESS in /stacks while the proxy held it")
		}
		// The server was told CREATE_IN_PROGRESS five times, then
		// CREATE_COMPLETE, and acted on the latter only.
		got := seen.Statuses()
		want := []string{"CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_COMPLETE"}
		if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
			t.Errorf("DescribeStacks answers showed %s as %v, want %v first", name, got, want)
		}
	})

	t.Run("rolled back then retried", func(t *testing.T) {
		t.Parallel()
		f, url, admin := setup(t)
		gate := closeCreates(f)
		id := awsOnboard(t, url, admin, "dedicated", region)
		name := dedicatedStack(id)
		const reason = "The following resource(s) failed to create: [RawZoneBucket]."
		fail := f.FailStack(name, "ROLLBACK_COMPLETE", reason)
		gate.Open()

		tn := awaitTenants(t, url, admin, []string{id}, "failed", 60*time.Second)[id]
		if !strings.Contains(jstr(tn, "status_reason"), reason) || !strings.Contains(jstr(tn, "status_reason"), region) {
			t.Errorf("failed tenant's status_reason %q, want the Region and %q", jstr(tn, "status_reason"), reason)
		}
		st := tenantStacks(t, url, admin, id)[region]
		if jstr(st, "status") != "failed" || jstr(st, "stack_status") != "ROLLBACK_COMPLETE" || !strings.Contains(jstr(st, "last_error"), reason) || jnum(st, "attempt") != 1 {
			t.Errorf("failed stack: %v, want failed, ROLLBACK_COMPLETE, last_error with the reason, attempt 1", st)
		}
		first := f.Ledger.Created(region, name)
		if len(first) != 1 {
			t.Fatalf("moto created %v under %s before the retry, want one stack", first, name)
		}

		// The cause is fixed; an operator retries the stack.
		fail.Remove()
		retried := mustAPI(t, "POST", url+"/v1/tenants/"+id+"/stacks/"+region+"/retry", admin, "", http.StatusAccepted)
		if s := jstr(retried, "status"); s != "replacing" {
			t.Errorf("retry answered a stack in %q, want replacing", s)
		}
		tn = awaitTenants(t, url, admin, []string{id}, "active", 60*time.Second)[id]
		if r := jstr(tn, "status_reason"); r != "" {
			t.Errorf("active tenant keeps status_reason %q", r)
		}
		st = tenantStacks(t, url, admin, id)[region]
		if jstr(st, "status") != "ready" || jstr(st, "stack_status") != "CREATE_COMPLETE" || jnum(st, "attempt") != 2 || jstr(st, "last_error") != "" {
			t.Errorf("retried stack: %v, want ready, CREATE_COMPLETE, attempt 2, no last_error", st)
		}
		// Replaced: the failed stack was deleted and one new stack made.
		created := f.Ledger.Created(region, name)
		live := liveStacks(t, moto, region)[name]
		if len(created) != 2 || len(live) != 1 || aws.ToString(live[0].StackId) != created[1] || created[0] == created[1] {
			t.Errorf("moto created %v under %s and lists %d live (%+v); want the failed stack replaced by one new stack", created, name, len(live), live)
		}
		var gone int
		for _, s := range stackHistory(t, moto, region)[name] {
			if aws.ToString(s.StackId) == first[0] && s.StackStatus == "DELETE_COMPLETE" {
				gone++
			}
		}
		if gone != 1 {
			t.Errorf("the failed stack %s is not DELETE_COMPLETE in moto's history", first[0])
		}
	})

	t.Run("throttled", func(t *testing.T) {
		t.Parallel()
		f, url, admin := setup(t)
		// Before onboarding: the first DescribeStacks and CreateStack calls
		// are the tenant's.
		describe := f.Throttle("cloudformation:DescribeStacks", 3)
		create := f.Throttle("cloudformation:CreateStack", 2)
		id := awsOnboard(t, url, admin, "dedicated", region)
		awaitTenants(t, url, admin, []string{id}, "active", 90*time.Second)
		name := dedicatedStack(id)

		if describe.Remaining() != 0 || create.Remaining() != 0 {
			t.Errorf("throttles left unused: DescribeStacks %d, CreateStack %d", describe.Remaining(), create.Remaining())
		}
		// Every throttled call was sent again, by the SDK's retryer within
		// one engine call: 3 CreateStack attempts, 1 call.
		if got, reached := f.Received("cloudformation:CreateStack"), f.Calls("cloudformation:CreateStack"); got != 3 || reached != 1 {
			t.Errorf("CreateStack: %d received, %d reached moto; want 3 and 1 (2 throttled, then retried)", got, reached)
		}
		if got, reached := f.Received("cloudformation:DescribeStacks"), f.Calls("cloudformation:DescribeStacks"); got-reached != 3 || reached < 1 {
			t.Errorf("DescribeStacks: %d received, %d reached moto; want 3 throttled and retried", got, reached)
		}
		if n := metric(t, url, "cairn_aws_calls_total", `operation="CloudFormation.CreateStack"`); n != 1 {
			t.Errorf("cairn_aws_calls_total CreateStack = %v, want 1 call (its retries are attempts, not calls)", n)
		}
		if created, live := f.Ledger.Created(region, name), liveStacks(t, moto, region)[name]; len(created) != 1 || len(live) != 1 {
			t.Errorf("moto created %v under %s and lists %d live; want one", created, name, len(live))
		}
	})

	t.Run("lost request and lost answer", func(t *testing.T) {
		t.Parallel()
		f, url, admin, dbURL := setupDB(t)
		// The first CreateStack never reaches moto; the second does, and
		// moto creates the stack, but the answer is lost; the third, if the
		// job's call retries before the poller finds the stack the second
		// made, is answered AlreadyExists.
		f.Drop("cloudformation:CreateStack", 1)
		f.DropResponse("cloudformation:CreateStack", 1)
		id := awsOnboard(t, url, admin, "dedicated", region)
		awaitTenants(t, url, admin, []string{id}, "active", 90*time.Second)
		name := dedicatedStack(id)
		// The poller can make the tenant active while the job's call is
		// still between retries: count once the job has ended.
		awaitJobsEnded(t, dbURL, "tenant_provision", id, 60*time.Second)

		got, reached := f.Received("cloudformation:CreateStack"), f.Calls("cloudformation:CreateStack")
		if got < 2 || got > 3 || reached != got-1 {
			t.Errorf("CreateStack: %d received, %d reached moto; want 2 or 3, all but the dropped first", got, reached)
		}
		created := f.Ledger.Created(region, name)
		live := liveStacks(t, moto, region)[name]
		history := stackHistory(t, moto, region)[name]
		if f.Ledger.Requests(region, name) != got || len(created) != 1 || len(live) != 1 || len(history) != 1 || aws.ToString(live[0].StackId) != created[0] {
			t.Errorf("%d CreateStack requests for %s, moto created %v, lists %d live and %d ever; want %d requests and exactly one stack",
				f.Ledger.Requests(region, name), name, created, len(live), len(history), got)
		}
		st := tenantStacks(t, url, admin, id)[region]
		if jstr(st, "status") != "ready" || jnum(st, "attempt") != 1 {
			t.Errorf("stack after lost calls: %v, want ready on attempt 1", st)
		}
	})
}
