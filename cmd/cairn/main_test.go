package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cairn-cdp/cairn/api"
)

// The tests run the CLI against a real server on the embedded default,
// built from ./cmd/server and started once for the package on a free port
// with a data directory of its own; it needs no PostgreSQL and no AWS.

var (
	binOnce sync.Once
	binDir  string
	binErr  error

	liveOnce sync.Once
	live     *server
	liveErr  error
)

type server struct {
	url   string
	token string // an ISV admin token
	cmd   *exec.Cmd
}

func TestMain(m *testing.M) {
	code := m.Run()
	if live != nil {
		_ = live.cmd.Process.Kill()
		_ = live.cmd.Wait()
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds the server and the CLI once for the package.
func binaries(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "cairn-cli-test-")
		if binErr != nil {
			return
		}
		for _, b := range []struct{ out, pkg string }{{"server", "../server"}, {"cairn", "."}} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, b.out), b.pkg).CombinedOutput()
			if err != nil {
				binErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// liveServer starts the package's server on first use.
func liveServer(t *testing.T) *server {
	t.Helper()
	liveOnce.Do(func() { live, liveErr = startServer(binaries(t)) })
	if liveErr != nil {
		t.Fatal(liveErr)
	}
	return live
}

func startServer(bin string) (*server, error) {
	dataDir, err := os.MkdirTemp(bin, "data-")
	if err != nil {
		return nil, err
	}
	serverBin := filepath.Join(bin, "server")
	mint := exec.Command(serverBin, "token", "--admin", "--data-dir", dataDir, "--ttl", "12h")
	mint.Env = serverEnv()
	tok, err := mint.Output()
	if err != nil {
		return nil, fmt.Errorf("server token: %w", err)
	}
	cmd := exec.Command(serverBin, "--addr", "127.0.0.1:0", "--data-dir", dataDir,
		"--job-poll-interval", "100ms", "--stack-poll-interval", "200ms", "--log-level", "warn")
	cmd.Env = serverEnv()
	dieWithTest(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "Cairn is serving on "); ok {
				urls <- u
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case u := <-urls:
		return &server{url: u, token: strings.TrimSpace(string(tok)), cmd: cmd}, nil
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("the server did not say where it serves within 2 minutes")
	}
}

// serverEnv is this process's environment without CAIRN_* variables: only
// the flags configure the test's server, not a database URL of the caller's.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_") {
			env = append(env, kv)
		}
	}
	return env
}

// result is one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs the CLI in-process with env as its whole environment.
func cli(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	return result{stdout.String(), stderr.String(), exitCode(err)}
}

// ok runs the CLI and fails the test unless it succeeds.
func ok(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	r := cli(t, env, args...)
	if r.code != 0 {
		t.Fatalf("cairn %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// env is a CLI environment with a context of its own pointing at s.
func env(t *testing.T, s *server) map[string]string {
	t.Helper()
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(s.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := map[string]string{"CAIRN_CONFIG": filepath.Join(dir, "cairn", "config")}
	ok(t, e, "config", "set-context", "test", "--server", s.url, "--token-file", tokFile)
	return e
}

var (
	specOnce sync.Once
	spec     *openapi3.T
	specErr  error
)

// validate checks a JSON answer printed by -o json against the contract:
// the schema of one of the operation's 2xx responses must accept it.
func validate(t *testing.T, operationID, body string) map[string]any {
	t.Helper()
	specOnce.Do(func() {
		spec, specErr = openapi3.NewLoader().LoadFromData(api.Spec)
	})
	if specErr != nil {
		t.Fatal(specErr)
	}
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%s: the output is not JSON: %v\n%s", operationID, err, body)
	}
	var op *openapi3.Operation
	for _, item := range spec.Paths.Map() {
		for _, o := range item.Operations() {
			if o.OperationID == operationID {
				op = o
			}
		}
	}
	if op == nil {
		t.Fatalf("no operation %s in the contract", operationID)
	}
	var errs []string
	for code, resp := range op.Responses.Map() {
		if !strings.HasPrefix(code, "2") || resp.Value == nil {
			continue
		}
		mt := resp.Value.Content.Get("application/json")
		if mt == nil || mt.Schema == nil {
			continue
		}
		err := mt.Schema.Value.VisitJSON(v)
		if err == nil {
			m, _ := v.(map[string]any)
			return m
		}
		errs = append(errs, code+": "+err.Error())
	}
	t.Fatalf("%s: the output matches no 2xx response schema:\n%s\n%s", operationID, strings.Join(errs, "\n"), body)
	return nil
}
