package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hutch-sandbox/hutch/image"
	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/internal/nsprobe"
	"github.com/hutch-sandbox/hutch/internal/testenv"
	"github.com/hutch-sandbox/hutch/oci"
	"github.com/hutch-sandbox/hutch/sandbox/pid1"
	"github.com/hutch-sandbox/hutch/sandbox/session"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// TestMain lets the test binary act as hutch and as its hidden entries:
// testscript dispatches on argv[0]. hutch-init itself is the small
// binary that ships, built once here (setupTestInit); only the fallback
// of a build without it (make test-cgo) runs this binary as hutch-init.
func TestMain(m *testing.M) {
	// hutch exec's stage is known by argv[1] (nsenter runs it through
	// /proc/self/fd): as main does, dispatch it before anything else.
	if pid1.IsExecStage(os.Args) {
		os.Exit(pid1.ExecStageMain())
	}
	cmds := map[string]func(){
		"hutch": func() {
			watchdog()
			os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr))
		},
		wire.InitName:            func() { os.Exit(pid1.InitMain()) },
		nsprobe.Name:             func() { os.Exit(nsprobe.Main()) },
		wire.Stage2Name:          func() { os.Exit(pid1.Stage2Main()) },
		wire.ServiceName:         func() { os.Exit(pid1.ServiceMain()) },
		session.LayersHelperName: func() { os.Exit(session.LayersHelperMain()) },
		image.HelperName:         func() { os.Exit(image.HelperMain()) },
		oci.ShimName:             func() { os.Exit(oci.ShimMain()) },
	}
	_, dispatched := cmds[filepath.Base(os.Args[0])]
	cleanup, err := setupTestInit(!dispatched) // initexe_test.go
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		cleanup()
		os.Exit(2)
	}
	testscript.Main(runThen{m, cleanup}, cmds)
}

// runThen runs the tests, then cleans up (testscript.Main exits).
type runThen struct {
	m     *testing.M
	after func()
}

func (r runThen) Run() int {
	defer r.after()
	return r.m.Run()
}

func TestScripts(t *testing.T) {
	p := scriptParams()
	p.Dir = "testdata/script"
	testscript.Run(t, p)
}

// scriptParams are the settings every script run shares.
func scriptParams() testscript.Params {
	return testscript.Params{
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			// Scripts run with a clean environment; give them the host's
			// PATH so helpers (newuidmap, fuse-overlayfs, ...) are found.
			env.Setenv("PATH", os.Getenv("PATH"))
			if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
				env.Setenv("XDG_RUNTIME_DIR", d)
			}
			env.Setenv("HUTCH_TEST_STRICT", os.Getenv("HUTCH_TEST_STRICT"))
			// make mutate's switch (read only by -tags hutch_mutate builds).
			env.Setenv(mutate.Var, os.Getenv(mutate.Var))
			env.Setenv("HUTCH_TEST_CMD_TIMEOUT", os.Getenv("HUTCH_TEST_CMD_TIMEOUT"))
			env.Setenv("HUTCH_TEST_CGROUP", os.Getenv("HUTCH_TEST_CGROUP"))
			env.Setenv(testInitVar, os.Getenv(testInitVar))
			return nil
		},
		Condition: condition,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"status":    cmdStatus,
			"idself":    cmdIDSelf,
			"ownedbyme": cmdOwnedByMe,
			"probe":     cmdProbe,
			"registry":  cmdRegistry,
			"mkimage":   cmdMkimage,
			"mkrootfs":  cmdMkrootfs,
		},
	}
}

// condition evaluates the custom script conditions. Under
// HUTCH_TEST_STRICT=1 a missing capability is an error, not a false
// condition, so "[!userns] skip" fails the script instead of skipping it.
func condition(cond string) (bool, error) {
	var reason string
	switch cond {
	case "userns":
		reason = testenv.UserNSReason()
	case "root":
		return os.Geteuid() == 0, nil
	case "cgroupdelegated":
		// Whether this machine gives the test user a cgroup v2 it may
		// create children in; this one (cgroup v1 hybrid) does not. With
		// HUTCH_TEST_CGROUP=1 (a CI that delegates one) its absence is an
		// error, so the enforcement tests cannot be skipped there.
		ok := supervise.CgroupDelegated()
		if !ok && os.Getenv("HUTCH_TEST_CGROUP") == "1" {
			return false, fmt.Errorf("HUTCH_TEST_CGROUP=1, but this process has no delegated cgroup v2")
		}
		return ok, nil
	case "denygroup":
		reason = denyGroupReason()
	default:
		if prog, ok := cutPrefix(cond, "prog:"); ok {
			if _, err := exec.LookPath(prog); err != nil {
				reason = prog + " is not installed"
			}
			break
		}
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	if reason != "" && testenv.Strict() {
		return false, fmt.Errorf("HUTCH_TEST_STRICT=1 forbids skipping: %s", reason)
	}
	return reason == "", nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// status N PROG [ARGS...] runs PROG and fails unless it exits with N.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("status: %v", err)
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("status: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// idself sets UID_SELF and GID_SELF to the test's own ids.
func cmdIDSelf(ts *testscript.TestScript, neg bool, args []string) {
	ts.Setenv("UID_SELF", strconv.Itoa(os.Getuid()))
	ts.Setenv("GID_SELF", strconv.Itoa(os.Getgid()))
}

// ownedbyme FILE fails unless FILE is owned by the test's uid.
func cmdOwnedByMe(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: ownedbyme FILE")
	}
	fi, err := os.Lstat(ts.MkAbs(args[0]))
	ts.Check(err)
	uid := int(fi.Sys().(*syscall.Stat_t).Uid)
	if (uid == os.Getuid()) == neg {
		ts.Fatalf("%s is owned by uid %d; test runs as %d", args[0], uid, os.Getuid())
	}
}

var (
	probeOnce sync.Once
	probePath string
	probeErr  error
)

// buildProbe compiles testdata/probe, the escape-attempt program, once.
func buildProbe() (string, error) {
	probeOnce.Do(func() {
		if p := os.Getenv("HUTCH_PROBE"); p != "" {
			// A prebuilt probe, for running the test binary outside the module.
			probePath = p
			return
		}
		dir, err := os.MkdirTemp("", "hutch-probe-")
		if err != nil {
			probeErr = err
			return
		}
		probePath = filepath.Join(dir, "probe")
		cmd := exec.Command("go", "build", "-o", probePath, "./testdata/probe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("building the probe: %v\n%s", err, out)
		}
		os.Chmod(dir, 0o755)
	})
	return probePath, probeErr
}

// probe DIR installs the escape-attempt program as DIR/probe.
func cmdProbe(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: probe DIR")
	}
	src, err := buildProbe()
	ts.Check(err)
	data, err := os.ReadFile(src)
	ts.Check(err)
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	ts.Check(os.WriteFile(filepath.Join(dir, "probe"), data, 0o755))
}

// watchdog ends a hutch that runs longer than HUTCH_TEST_CMD_TIMEOUT
// (default 150s; "0" turns it off) in a test: its exit takes the sandbox
// with it (PDEATHSIG), so a hang fails one script line or one Go test, with
// a message naming it, instead of the whole suite at go test's timeout.
func watchdog() {
	limit := 150 * time.Second
	if v := os.Getenv("HUTCH_TEST_CMD_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "hutch (test): HUTCH_TEST_CMD_TIMEOUT=%q: %v\n", v, err)
			os.Exit(2)
		}
		limit = d
	}
	if limit <= 0 {
		return
	}
	time.AfterFunc(limit, func() {
		fmt.Fprintf(os.Stderr, "hutch (test): %q ran longer than %v; killed so that a hang fails this test alone\n", os.Args[1:], limit)
		os.Exit(125)
	})
}

// denyByGroup is a file scripts/test-user.sh makes unreadable to the test
// user through a group it is in (mode 0604, group hutchdeny).
const denyByGroup = "/opt/hutch-test/deny-by-group"

// denyGroupReason says why the deny-by-group check cannot run: the file is
// missing, or the test user can read it (not in its group).
func denyGroupReason() string {
	f, err := os.Open(denyByGroup)
	if err == nil {
		f.Close()
		return denyByGroup + " is readable: the test user is not in its group (run scripts/test-user.sh as root)"
	}
	if !errors.Is(err, os.ErrPermission) {
		return fmt.Sprintf("%s: %v (run scripts/test-user.sh as root)", denyByGroup, err)
	}
	return ""
}
