package cfn_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/provisioner/cfn"
)

// driftDouble answers CloudFormation's drift detection actions as the API
// reference shows them: moto, the emulator, implements none of them.
func driftDouble(t *testing.T) *httptest.Server {
	t.Helper()
	const ns = ` xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"`
	answers := map[string]string{
		"DetectStackDrift": `<DetectStackDriftResponse` + ns + `><DetectStackDriftResult>` +
			`<StackDriftDetectionId>b78ac9b0-dec1-11e7-a451-503a3example</StackDriftDetectionId>` +
			`</DetectStackDriftResult></DetectStackDriftResponse>`,
		"DescribeStackDriftDetectionStatus": `<DescribeStackDriftDetectionStatusResponse` + ns + `><DescribeStackDriftDetectionStatusResult>` +
			`<StackId>arn:aws:cloudformation:eu-west-1:123456789012:stack/cairn-x/1</StackId>` +
			`<StackDriftDetectionId>b78ac9b0-dec1-11e7-a451-503a3example</StackDriftDetectionId>` +
			`<StackDriftStatus>DRIFTED</StackDriftStatus><DetectionStatus>DETECTION_COMPLETE</DetectionStatus>` +
			`<DriftedStackResourceCount>1</DriftedStackResourceCount><Timestamp>2026-01-01T00:00:00Z</Timestamp>` +
			`</DescribeStackDriftDetectionStatusResult></DescribeStackDriftDetectionStatusResponse>`,
		"DescribeStackResourceDrifts": `<DescribeStackResourceDriftsResponse` + ns + `><DescribeStackResourceDriftsResult><StackResourceDrifts><member>` +
			`<StackId>arn:aws:cloudformation:eu-west-1:123456789012:stack/cairn-x/1</StackId>` +
			`<LogicalResourceId>ProfileTable</LogicalResourceId><PhysicalResourceId>cairn-x-profiles</PhysicalResourceId>` +
			`<ResourceType>AWS::DynamoDB::Table</ResourceType><StackResourceDriftStatus>MODIFIED</StackResourceDriftStatus>` +
			`<Timestamp>2026-01-01T00:00:00Z</Timestamp></member></StackResourceDrifts>` +
			`</DescribeStackResourceDriftsResult></DescribeStackResourceDriftsResponse>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		action := r.PostForm.Get("Action")
		body, ok := answers[action]
		if !ok {
			t.Errorf("unexpected call %s", action)
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		if action == "DescribeStackResourceDrifts" && (r.PostForm.Get("StackResourceDriftStatusFilters.member.1") != "MODIFIED" ||
			r.PostForm.Get("StackResourceDriftStatusFilters.member.2") != "DELETED") {
			t.Errorf("resource drifts asked without the MODIFIED and DELETED filters: %v", r.PostForm)
		}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestDriftDetection reads a detection through CloudFormation's API
// shapes, answered by a scripted double.
func TestDriftDetection(t *testing.T) {
	srv := driftDouble(t)
	cfg := awstest.Config(regionB)
	e, err := cfn.New(t.Context(), cfn.Config{AWS: awsclient.Settings{AWS: &cfg, EndpointURL: srv.URL, MaxBackoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := e.DetectDrift(t.Context(), regionB, "cairn-x")
	if err != nil || id != "b78ac9b0-dec1-11e7-a451-503a3example" {
		t.Fatalf("detect: %q, %v", id, err)
	}
	det, err := e.DriftDetection(t.Context(), regionB, id)
	want := provisioner.DriftDetection{ID: id, Status: provisioner.DetectionComplete, StackDriftStatus: provisioner.DriftDrifted, DriftedResources: 1}
	if err != nil || det != want {
		t.Fatalf("detection: %+v, %v", det, err)
	}
	drifts, err := e.ResourceDrifts(t.Context(), regionB, "cairn-x")
	if err != nil || len(drifts) != 1 || drifts[0] != (provisioner.ResourceDrift{LogicalID: "ProfileTable", PhysicalID: "cairn-x-profiles",
		ResourceType: "AWS::DynamoDB::Table", Status: "MODIFIED"}) {
		t.Fatalf("drifts: %+v, %v", drifts, err)
	}
}
