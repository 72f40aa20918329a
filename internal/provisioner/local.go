package provisioner

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cairn-cdp/cairn/templates"
)

// LocalAccountID is the stand-in AWS account of the local engine's
// outputs.
const LocalAccountID = "000000000000"

// LocalEngine is the embedded default's Engine: it lays each stack out on
// disk under Root, so the whole lifecycle works with no AWS account.
//
//	<Root>/<region>/stacks/<stack>.json    the stack's state, outputs and events
//	<Root>/<region>/buckets/<bucket>/      a zone "bucket" (raw, clean, curated)
//	<Root>/<region>/catalog/<db>.json      a Glue database stand-in
//
// Like CloudFormation it is asynchronous: CreateStack and DeleteStack only
// record the request (CREATE_IN_PROGRESS, DELETE_IN_PROGRESS) and the next
// Stacks call carries it out, so the reconciler goes through the same
// states with both engines. Buckets are retained when a stack is deleted,
// as the templates' DeletionPolicy retains them. It is safe for concurrent
// use within one process.
type LocalEngine struct {
	Root string
	mu   sync.Mutex
}

var _ Engine = (*LocalEngine)(nil)

type localStack struct {
	Stack
	Template   string            `json:"template"`
	Parameters map[string]string `json:"parameters"`
	Events     []StackEvent      `json:"events"`
	// TemplateBody and TemplateVersion are the template the stack was
	// created or last updated with (localchangeset.go).
	TemplateBody    string `json:"template_body,omitempty"`
	TemplateVersion string `json:"template_version,omitempty"`
	// ChangeSets are the stack's change sets by name; Executing names the
	// one being executed, Executions counts the change sets executed.
	ChangeSets map[string]*localChangeSet `json:"change_sets,omitempty"`
	Executing  string                     `json:"executing,omitempty"`
	Executions int                        `json:"executions,omitempty"`
	// DriftDetection and Drifts are the latest drift detection;
	// Detections counts them.
	DriftDetection *DriftDetection `json:"drift_detection,omitempty"`
	Drifts         []ResourceDrift `json:"drifts,omitempty"`
	Detections     int             `json:"detections,omitempty"`
}

func (e *LocalEngine) path(region string, parts ...string) string {
	return filepath.Join(append([]string{e.Root, region}, parts...)...)
}

func (e *LocalEngine) stackFile(region, name string) string {
	return e.path(region, "stacks", name+".json")
}

func (e *LocalEngine) load(region, name string) (*localStack, error) {
	b, err := os.ReadFile(e.stackFile(region, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrStackNotFound
	}
	if err != nil {
		return nil, err
	}
	var s localStack
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("local stack %s: %w", name, err)
	}
	return &s, nil
}

func writeFileAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (s *localStack) event(logicalID, typ, status, reason string) {
	s.Status = status
	s.Events = append(s.Events, StackEvent{
		ID: fmt.Sprintf("%s-%d", s.Name, len(s.Events)+1), Time: time.Now().UTC(),
		LogicalID: logicalID, ResourceType: typ, Status: status, Reason: reason,
	})
}

// CreateStack records the request; an existing stack is left as it is.
func (e *LocalEngine) CreateStack(_ context.Context, in CreateStackInput) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.load(in.Region, in.Name); err == nil {
		return nil
	} else if !errors.Is(err, ErrStackNotFound) {
		return err
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	s := &localStack{
		Stack:      Stack{Name: in.Name, ID: "local:stack/" + in.Name + "/" + hex.EncodeToString(id[:])},
		Template:   in.Template.Name,
		Parameters: in.Parameters,
		// Kept for change sets to diff against.
		TemplateBody: in.Template.Body, TemplateVersion: in.Template.Version,
	}
	s.event(in.Name, "AWS::CloudFormation::Stack", StackCreateInProgress, "User Initiated")
	return writeFileAtomic(e.stackFile(in.Region, in.Name), s)
}

// DeleteStack records the request; an absent stack is not an error.
func (e *LocalEngine) DeleteStack(_ context.Context, region, name, _ string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.load(region, name)
	if errors.Is(err, ErrStackNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if s.Status == StackDeleteInProgress {
		return nil
	}
	s.event(name, "AWS::CloudFormation::Stack", StackDeleteInProgress, "User Initiated")
	return writeFileAtomic(e.stackFile(region, name), s)
}

// Stacks carries out pending requests and reports every stack in region.
func (e *LocalEngine) Stacks(_ context.Context, region string) (map[string]Stack, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	files, err := filepath.Glob(e.path(region, "stacks", "*.json"))
	if err != nil {
		return nil, err
	}
	out := map[string]Stack{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		s, err := e.load(region, name)
		if err != nil {
			return nil, err
		}
		switch s.Status {
		case StackCreateInProgress:
			e.build(region, s)
		case StackUpdateInProgress:
			e.update(region, s)
		case StackDeleteInProgress:
			if err := os.Remove(f); err != nil {
				return nil, err
			}
			continue
		}
		if err := writeFileAtomic(f, s); err != nil {
			return nil, err
		}
		if strings.HasPrefix(name, StackPrefix) {
			out[name] = s.Stack
		}
	}
	return out, nil
}

// build lays the stack's resources out and completes it, or rolls it back
// with the reason when the disk refuses.
func (e *LocalEngine) build(region string, s *localStack) {
	buckets := map[string]string{
		"RawBucket":     s.Name + "-raw",
		"CleanBucket":   s.Name + "-clean",
		"CuratedBucket": s.Name + "-curated",
	}
	for key, b := range buckets {
		if err := os.MkdirAll(e.path(region, "buckets", b), 0o700); err != nil {
			s.Reason = "The following resource(s) failed to create: [" + key + "]. " + err.Error()
			s.event(key, "AWS::S3::Bucket", StackCreateFailed, err.Error())
			s.event(s.Name, "AWS::CloudFormation::Stack", StackRollbackComplete, s.Reason)
			return
		}
		s.event(key, "AWS::S3::Bucket", StackCreateComplete, "")
	}
	// Outputs are shaped like AWS's, in a stand-in account, so everything
	// built on them (session policies, say) works the same locally.
	sum := sha256.Sum256([]byte(region + "/" + s.Name))
	keyID := fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	s.Outputs = buckets
	s.Outputs["StreamArn"] = "arn:aws:kinesis:" + region + ":" + LocalAccountID + ":stream/" + s.Name
	s.Outputs["ProfileTable"] = s.Name + "-profiles"
	s.Outputs["DataAccessRoleArn"] = "arn:aws:iam::" + LocalAccountID + ":role/cairn/" + s.Name + "-data-access"
	s.Outputs["KmsKeyArn"] = "arn:aws:kms:" + region + ":" + LocalAccountID + ":key/" + keyID
	if s.Template == templates.DedicatedFile {
		tenant := s.Parameters["TenantId"]
		s.Outputs["GlueDatabase"] = templates.DedicatedGlueDatabase(tenant)
		s.Outputs["AthenaWorkGroup"] = templates.DedicatedWorkGroup(tenant)
	} else {
		s.Outputs["AthenaWorkGroup"] = templates.PoolWorkGroup(s.Parameters["PoolId"])
	}
	s.event(s.Name, "AWS::CloudFormation::Stack", StackCreateComplete, "")
}

// StackEvents returns the stack's events, newest first.
func (e *LocalEngine) StackEvents(_ context.Context, region, name string) ([]StackEvent, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.load(region, name)
	if err != nil {
		return nil, err
	}
	events := make([]StackEvent, len(s.Events))
	for i, ev := range s.Events {
		events[len(events)-1-i] = ev
	}
	return events, nil
}

// EnsureDatabase records the catalog database if it is absent.
func (e *LocalEngine) EnsureDatabase(_ context.Context, region, name, location string, tags map[string]string) error {
	f := e.path(region, "catalog", name+".json")
	if _, err := os.Stat(f); err == nil {
		return nil
	}
	return writeFileAtomic(f, map[string]any{"name": name, "location_uri": location, "tags": tags})
}

// DeleteDatabase removes the catalog database and its tables (the lake
// engine lists them under catalog/<name>/), as deleting a Glue database
// does; absent is not an error.
func (e *LocalEngine) DeleteDatabase(_ context.Context, region, name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return fmt.Errorf("local engine: bad database name %q", name)
	}
	if err := os.RemoveAll(e.path(region, "catalog", name)); err != nil {
		return err
	}
	err := os.Remove(e.path(region, "catalog", name+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// DropTenantPartitions implements Engine: the embedded lake has no
// table shared by a pool's tenants, so there is nothing to drop.
func (e *LocalEngine) DropTenantPartitions(context.Context, string, string, string) error { return nil }

// DeleteBuckets removes retained zone directories.
func (e *LocalEngine) DeleteBuckets(_ context.Context, region string, buckets []string) error {
	for _, b := range buckets {
		if b == "" || strings.ContainsAny(b, `/\`) || b == "." || b == ".." {
			return fmt.Errorf("local engine: bad bucket name %q", b)
		}
		if err := os.RemoveAll(e.path(region, "buckets", b)); err != nil {
			return err
		}
	}
	return nil
}

// DeletePrefix removes everything under prefix in a zone directory.
func (e *LocalEngine) DeletePrefix(_ context.Context, region, bucket, prefix string) error {
	if bucket == "" || strings.Contains(bucket, "/") || strings.Contains(prefix, "..") || prefix == "" {
		return fmt.Errorf("local engine: bad bucket %q or prefix %q", bucket, prefix)
	}
	return os.RemoveAll(e.path(region, "buckets", bucket, filepath.FromSlash(prefix)))
}

// EnsureTenantRole records the role under <root>/iam/roles/ (IAM is
// global: no Region), with its policy, boundary and tags, replacing the
// policy of a role recorded already, and returns its ARN in LocalAccountID.
func (e *LocalEngine) EnsureTenantRole(_ context.Context, region string, r TenantRole) (string, error) {
	if !safeName(r.TenantID) || !safeName(region) || r.Policy == "" || !json.Valid([]byte(r.Policy)) {
		return "", fmt.Errorf("local engine: a tenant role needs a tenant and a JSON policy")
	}
	arn := "arn:aws:iam::" + LocalAccountID + ":role" + TenantRolePath + TenantRoleName(r.TenantID, region)
	return arn, writeFileAtomic(e.roleFile(r.TenantID, region), map[string]any{
		"arn": arn, "policy": json.RawMessage(r.Policy), "boundary": r.Boundary, "tags": r.Tags,
	})
}

// DeleteTenantRole forgets the role; absent is not an error.
func (e *LocalEngine) DeleteTenantRole(_ context.Context, region, tenantID string) error {
	if !safeName(tenantID) || !safeName(region) {
		return fmt.Errorf("local engine: bad tenant ID %q or Region %q", tenantID, region)
	}
	err := os.Remove(e.roleFile(tenantID, region))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (e *LocalEngine) roleFile(tenantID, region string) string {
	return filepath.Join(e.Root, "iam", "roles", TenantRoleName(tenantID, region)+".json")
}

// safeName reports whether s can name a file: not empty, no separator, not
// "." or "..".
func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`)
}
