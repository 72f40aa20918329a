package deploy

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// instruction is one instruction of the Containerfile, continuation lines
// joined.
type instruction struct {
	op   string // upper case: FROM, COPY, ...
	args string
}

func parseContainerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open("../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out  []instruction
		line string
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if line == "" && (text == "" || strings.HasPrefix(text, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			line += cont + " "
			continue
		}
		line += text
		op, args, _ := strings.Cut(line, " ")
		out = append(out, instruction{op: strings.ToUpper(op), args: strings.Join(strings.Fields(args), " ")})
		line = ""
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// execForm parses a JSON array instruction argument (["/server", "x"]).
func execForm(t *testing.T, op, args string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("%s %s: want the exec form, a JSON array (a scratch image has no shell)", op, args)
	}
	return argv
}

// TestContainerfile checks what the image's build must and must not do:
// one stage from scratch, nothing run or fetched while building, a
// non-root numeric user, and a health check and entrypoint that are the
// server binary itself.
func TestContainerfile(t *testing.T) {
	img := parseContainerfile(t)
	var entrypoint []string
	for _, in := range img {
		switch in.op {
		case "FROM":
			if in.args != "scratch" {
				t.Errorf("FROM %s: the image builds from scratch, pulling nothing", in.args)
			}
		case "RUN":
			t.Errorf("RUN %s: a scratch image has nothing to run, and a build step must not reach the network", in.args)
		case "ADD":
			t.Errorf("ADD %s: use COPY (ADD fetches URLs and unpacks archives)", in.args)
		case "COPY":
			if strings.Contains(in.args, "--from") || strings.Contains(in.args, "://") {
				t.Errorf("COPY %s: copy only from the build context", in.args)
			}
		case "USER":
			uid, gid, _ := strings.Cut(in.args, ":")
			n, err := strconv.Atoi(uid)
			if err != nil || n == 0 {
				t.Errorf("USER %s: want a numeric user other than root (scratch has no /etc/passwd)", in.args)
			}
			if _, err := strconv.Atoi(gid); gid != "" && err != nil {
				t.Errorf("USER %s: want a numeric group", in.args)
			}
		case "ENTRYPOINT":
			entrypoint = execForm(t, in.op, in.args)
		}
	}
	ops := func(op string) []instruction {
		return slices.DeleteFunc(slices.Clone(img), func(in instruction) bool { return in.op != op })
	}
	if n := len(ops("FROM")); n != 1 {
		t.Errorf("%d FROM instructions, want one stage", n)
	}
	if len(ops("USER")) != 1 {
		t.Error("no USER: the server would run as root")
	}
	if len(entrypoint) != 1 {
		t.Fatalf("ENTRYPOINT %v: want the server binary alone", entrypoint)
	}
	hc := ops("HEALTHCHECK")
	if len(hc) != 1 {
		t.Fatal("want one HEALTHCHECK")
	}
	_, cmd, ok := strings.Cut(hc[0].args, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %s: want CMD", hc[0].args)
	}
	if argv := execForm(t, "HEALTHCHECK CMD", cmd); argv[0] != entrypoint[0] || len(argv) < 2 || argv[1] != "healthcheck" {
		t.Errorf("HEALTHCHECK runs %v: want %s healthcheck", argv, entrypoint[0])
	}
	env := imageEnv(t, img)
	_, port, err := net.SplitHostPort(env["CAIRN_ADDR"])
	if err != nil || !slices.Contains(ops("EXPOSE"), instruction{op: "EXPOSE", args: port}) {
		t.Errorf("EXPOSE %v does not match CAIRN_ADDR %q", ops("EXPOSE"), env["CAIRN_ADDR"])
	}
}

// imageEnv returns the variables ENV sets.
func imageEnv(t *testing.T, img []instruction) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, in := range img {
		if in.op != "ENV" {
			continue
		}
		for _, kv := range strings.Fields(in.args) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("ENV %s: want KEY=value pairs", in.args)
			}
			env[k] = v
		}
	}
	return env
}

// TestImageBuildSteps performs the image's build steps natively
// (scripts/image.sh context, the step buildah's build runs first) and
// checks their output: every file the Containerfile copies is there, the
// server is a static binary (cgo, for DuckDB, linked statically, with Go's
// own resolver and user lookup rather than glibc's), it knows every CAIRN_*
// variable the control plane's template and the image set, and, started
// as the image starts it, it serves on the embedded default and passes
// the image's health check, which fails once it has stopped.
func TestImageBuildSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server")
	}
	img := parseContainerfile(t)
	dir := t.TempDir()
	build := exec.Command("bash", "../scripts/image.sh", "context", dir)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/image.sh context: %v\n%s", err, out)
	}
	for _, in := range img {
		if in.op != "COPY" {
			continue
		}
		fields := slices.DeleteFunc(strings.Fields(in.args), func(f string) bool { return strings.HasPrefix(f, "--") })
		for _, src := range fields[:len(fields)-1] {
			if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
				t.Errorf("COPY %s: not in the build context: %v", in.args, err)
			}
		}
	}

	server := filepath.Join(dir, "server")
	f, err := elf.Open(server)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the server has a program interpreter: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the server links shared libraries %v (%v)", libs, err)
	}
	f.Close()
	info, err := buildinfo.ReadFile(server)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["-trimpath"] != "true" || !slices.Contains(strings.Split(settings["-tags"], ","), "netgo") || !slices.Contains(strings.Split(settings["-tags"], ","), "osusergo") {
		t.Errorf("the server was built with -trimpath=%q, -tags=%q; want true and netgo,osusergo (a static glibc cannot load its resolver's or user lookup's modules)", settings["-trimpath"], settings["-tags"])
	}

	help, err := exec.Command(server, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("server --help: %v\n%s", err, help)
	}
	vars := regexp.MustCompile(`\bCAIRN_[A-Z0-9_]+`)
	env := imageEnv(t, img)
	known := vars.FindAllString(string(help), -1)
	for _, v := range slices.Concat(vars.FindAllString(string(ControlPlane), -1), slices.Collect(maps.Keys(env))) {
		if !slices.Contains(known, v) {
			t.Errorf("%s is set by the template or the image, but server --help does not know it", v)
		}
	}

	// Start it as the image does: its ENV, in its WORKDIR, no arguments;
	// on a free loopback port rather than the image's 0.0.0.0.
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	runEnv := []string{"CAIRN_DATA_DIR=" + data, "CAIRN_ADDR=" + addr, "HOME=" + dir}
	var logs bytes.Buffer
	srv := exec.Command(server)
	srv.Dir, srv.Env, srv.Stdout, srv.Stderr = data, runEnv, &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(time.Minute):
			_ = srv.Process.Kill()
			return errors.New("the server did not stop within a minute of SIGTERM")
		}
	}
	t.Cleanup(func() { _ = stop() })

	_, cmd, _ := strings.Cut(slices.DeleteFunc(slices.Clone(img), func(in instruction) bool { return in.op != "HEALTHCHECK" })[0].args, "CMD ")
	argv := execForm(t, "HEALTHCHECK CMD", cmd)
	healthcheck := func() error {
		c := exec.Command(server, argv[1:]...)
		c.Env = runEnv
		out, err := c.CombinedOutput()
		if err != nil {
			return errors.New(err.Error() + ": " + string(out))
		}
		return nil
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := healthcheck()
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			stopped = true
			t.Fatalf("the server exited (%v) before it was healthy:\n%s", werr, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the health check still fails after two minutes: %v\n%s", err, logs.String())
		}
		time.Sleep(200 * time.Millisecond) // polling a separate process; no signal to wait on
	}
	if err := stop(); err != nil {
		t.Fatalf("stop the server: %v\n%s", err, logs.String())
	}
	if err := healthcheck(); err == nil {
		t.Error("the health check passes with the server stopped")
	}
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
