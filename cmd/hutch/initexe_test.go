package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/hutch-sandbox/hutch/internal/initexe"
	"github.com/hutch-sandbox/hutch/internal/testenv"
	"golang.org/x/sys/unix"
)

// testInitVar names the hutch-init binary that the test binary, acting
// as hutch, puts into its sealed memfd (internal/initexe), as `make
// build` embeds it: every sandbox of the suite runs the small init that
// ships. TestMain builds ./cmd/hutch-init once, with this binary's own
// tags and cgo setting (make mutate's hutch_mutate included), unless the
// variable is set already (scripts/mutate.sh builds it once for all its
// runs). "fallback" leaves it out: init is then this binary through
// /proc/self/exe, as in a plain `go build ./cmd/hutch` — which `make
// test-cgo` runs (HUTCH_TEST_CGO=1), the build variant it stands for.
const testInitVar = "HUTCH_TEST_INIT"

// testInitCacheVar set to "off" leaves initexe.Sum unset: init then runs
// from the sealed memfd, as in a build without the sum, not from its
// cached copy (which the tests use otherwise, as make build's hutch does).
const testInitCacheVar = "HUTCH_TEST_INIT_CACHE"

// setupTestInit is TestMain's: in the test process (main) it builds the
// init and names it in the environment for every hutch the tests start;
// in each of those it loads the binary. It returns what to remove at the
// end.
func setupTestInit(main bool) (cleanup func(), err error) {
	cleanup = func() {}
	p := os.Getenv(testInitVar)
	if p == "" && main {
		if os.Getenv("HUTCH_TEST_CGO") == "1" {
			p = "fallback"
		} else {
			dir, err := os.MkdirTemp("", "hutch-init-")
			if err != nil {
				return cleanup, err
			}
			cleanup = func() { os.RemoveAll(dir) }
			p = filepath.Join(dir, "hutch-init")
			if err := buildTestInit(p); err != nil {
				return cleanup, err
			}
		}
		os.Setenv(testInitVar, p)
	}
	if p == "" || p == "fallback" {
		return cleanup, nil
	}
	if initexe.Bytes, err = os.ReadFile(p); err != nil {
		return cleanup, err
	}
	if os.Getenv(testInitCacheVar) != "off" {
		initexe.Sum = fileSum(initexe.Bytes)
	}
	return cleanup, nil
}

// fileSum is what make build links into hutch as initexe.Sum.
func fileSum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// buildTestInit builds ./cmd/hutch-init as the Makefile does, with this
// test binary's build tags and cgo setting.
func buildTestInit(out string) error {
	tags, cgo := "", "0"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "-tags":
				tags = s.Value
			case "CGO_ENABLED":
				cgo = s.Value
			}
		}
	}
	cmd := exec.Command("go", "build", "-trimpath", "-tags", tags, "-ldflags", "-s -w", "-o", out, "../hutch-init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building hutch-init for the tests: %v\n%s", err, b)
	}
	return os.Chmod(filepath.Dir(out), 0o755)
}

// TestEscapeInitExe: PID 1 of a sandbox runs the small hutch-init, never
// hutch's own binary, from a file no handle to /proc/1/exe can write once
// init has exited (runc's CVE-2019-5736: the container overwrote the
// runtime's binary through /proc/self/exe; while init runs, ETXTBSY).
// The command never gets such a handle (init is not dumpable:
// escape_files.txtar); here the sandbox's owner takes it from outside, as
// no one inside can, and the probe's write is refused: by the file's
// mode (0500: EACCES) for the cached copy in the runtime directory, which
// no sandbox shows, or by the seals (EPERM) for the memfd. The positive
// control writes through the same kind of handle to a file that is
// writable. A planted cached init with write bits is replaced, not run.
// The fallback (a build without the embedded init, make test-cgo's) runs
// this binary as init.
func TestEscapeInitExe(t *testing.T) {
	testenv.RequireUserNS(t)
	shipped := os.Getenv(testInitVar)
	if shipped == "fallback" {
		shipped = filepath.Join(t.TempDir(), "hutch-init")
		if err := buildTestInit(shipped); err != nil {
			t.Fatal(err)
		}
	}
	bin, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	probe, err := buildProbe()
	if err != nil {
		t.Fatal(err)
	}
	// exeWrite is the attack through handle, a handle to an exited
	// init's /proc/PID/exe, answered with want.
	exeWrite := func(t *testing.T, what string, handle *os.File, want string) {
		t.Helper()
		attack := exec.Command(probe, "-want", want, "exe-write", "/proc/self/fd/3")
		attack.ExtraFiles = []*os.File{handle}
		out, err := attack.CombinedOutput()
		wantVerdict(t, what, out, err)
	}
	// A runtime directory of the test's own: the cached init's path is
	// known, and other tests' runs do not race with the planted file.
	xdg := func(t *testing.T) (env, cachePath string) {
		dir := t.TempDir()
		return "XDG_RUNTIME_DIR=" + dir, filepath.Join(dir, "hutch", initexe.CacheDir, initexe.CacheName(fileSum(bin)))
	}

	t.Run("cached", func(t *testing.T) {
		env, cachePath := xdg(t)
		exe, handle := runningInit(t, shipped, env)
		defer handle.Close()
		if exe != cachePath {
			t.Fatalf("init runs %q, want its cached copy %s", exe, cachePath)
		}
		exeWrite(t, "writing the cached init through a handle to /proc/PID/exe", handle, "EACCES")
		exeWrite(t, "the control: a writable file through the same kind of handle", writableHandle(t), "ok")
	})
	t.Run("cached-planted", func(t *testing.T) {
		// A cached init that someone could write (write bits) must not
		// run: it is replaced by one that no one can.
		env, cachePath := xdg(t)
		if err := os.MkdirAll(filepath.Dir(cachePath), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cachePath, bin, 0o700); err != nil {
			t.Fatal(err)
		}
		exe, handle := runningInit(t, shipped, env)
		defer handle.Close()
		if exe != cachePath {
			t.Fatalf("init runs %q, want its cached copy %s", exe, cachePath)
		}
		exeWrite(t, "writing a planted writable cached init through /proc/PID/exe", handle, "EACCES")
	})
	t.Run("cached-hidden", func(t *testing.T) {
		// Inside a sandbox that shows the runtime directory's parent
		// writable, hutch's directory, and the cached init in it, is not
		// there; next to it a file is, and is writable.
		env, cachePath := xdg(t)
		dir := strings.TrimPrefix(env, "XDG_RUNTIME_DIR=")
		other := filepath.Join(dir, "other")
		if err := os.WriteFile(other, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ want, attack, path string }{
			{"ok", "open-write", other}, // the control
			{"ENOENT", "open-write", cachePath},
			{"ENOENT", "open-read", cachePath},
			{"ENOENT", "create", filepath.Join(filepath.Dir(cachePath), "planted")},
		} {
			cmd := probeCmd(t, "run", "--rw", dir, "--", "./probe", "-want", tc.want, tc.attack, tc.path)
			// The small init, also where the suite runs the fallback
			// (make test-cgo): the cached file must exist to be hidden.
			cmd.Env = append(cmd.Env, env, testInitVar+"="+shipped)
			out, err := cmd.CombinedOutput()
			wantVerdict(t, tc.attack+" "+tc.path+" from inside a sandbox", out, err)
		}
		// The attempts above ran from the cache: the file they did not
		// find is there.
		var st unix.Stat_t
		if err := unix.Stat(cachePath, &st); err != nil || st.Mode&0o7777 != 0o500 {
			t.Fatalf("the cached init %s: mode %#o, %v", cachePath, st.Mode&0o7777, err)
		}
	})
	t.Run("memfd", func(t *testing.T) {
		exe, handle := runningInit(t, shipped, testInitCacheVar+"=off")
		defer handle.Close()
		if exe != "/memfd:hutch-init (deleted)" {
			t.Fatalf("init runs %q, want the memfd /memfd:hutch-init (deleted)", exe)
		}
		exeWrite(t, "writing init's memfd through a handle to /proc/PID/exe", handle, "EPERM")
		exeWrite(t, "the control: a writable file through the same kind of handle", writableHandle(t), "ok")
	})
	t.Run("fallback", func(t *testing.T) {
		exe, handle := runningInit(t, "fallback")
		handle.Close()
		if want, _ := filepath.EvalSymlinks(self); exe != want {
			t.Fatalf("init runs %q, want this test binary %q (the fallback re-executes hutch)", exe, want)
		}
	})
}

// writableHandle is an O_PATH handle to a file its owner can write.
func writableHandle(t *testing.T) *os.File {
	f := filepath.Join(t.TempDir(), "binary")
	if err := os.WriteFile(f, []byte("#!"), 0o755); err != nil {
		t.Fatal(err)
	}
	h, err := os.OpenFile(f, unix.O_PATH, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// runningInit runs a sandbox whose hutch loads init from initPath
// (testInitVar), with env added to its environment, and returns, while
// its command runs, where its PID 1's /proc/PID/exe points and an O_PATH
// handle to it; the sandbox has ended when it returns.
func runningInit(t *testing.T, initPath string, env ...string) (exe string, handle *os.File) {
	t.Helper()
	cmd := hutchCmd(t, "run", "--", "sh", "-c", "echo ready; read x; exit 0")
	cmd.Env = append(append(cmd.Env, testInitVar+"="+initPath), env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := startReady(t, cmd) // faults_test.go
	defer func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("hutch run: %v\n%s", err, stderr)
		}
	}()
	pid := childNamed(t, cmd.Process.Pid, "hutch-init")
	proc := fmt.Sprintf("/proc/%d/exe", pid)
	if exe, err = os.Readlink(proc); err != nil {
		t.Fatal(err)
	}
	if handle, err = os.OpenFile(proc, unix.O_PATH, 0); err != nil {
		t.Fatal(err)
	}
	return exe, handle
}

// childNamed is the child of pid whose argv[0] is name.
func childNamed(t *testing.T, pid int, name string) int {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(b)) {
			cmdline, _ := os.ReadFile("/proc/" + c + "/cmdline")
			if arg0, _, _ := strings.Cut(string(cmdline), "\x00"); arg0 == name {
				n, _ := strconv.Atoi(c)
				return n
			}
		}
	}
	t.Fatalf("no child of hutch (pid %d) is %s", pid, name)
	return 0
}
