package main

import (
	"bufio"
	"bytes"
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
	initexe.Bytes, err = os.ReadFile(p)
	return cleanup, err
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

// TestEscapeInitExe: PID 1 of a sandbox runs the small hutch-init from a
// sealed memfd: /proc/PID/exe of init names no file on disk, and a handle
// to it, taken while init ran, cannot write the binary once init has
// exited (runc's CVE-2019-5736: the container overwrote the runtime's
// binary through /proc/self/exe). The command never gets such a handle
// (init is not dumpable: escape_files.txtar); here the sandbox's owner
// takes it from outside, as no one inside can, and the probe's write is
// refused by the seals: EPERM. The positive control writes through the
// same kind of handle to a file that is writable. The fallback (a build
// without the embedded init, make test-cgo's) runs this binary as init.
func TestEscapeInitExe(t *testing.T) {
	testenv.RequireUserNS(t)
	shipped := os.Getenv(testInitVar)
	if shipped == "fallback" {
		shipped = filepath.Join(t.TempDir(), "hutch-init")
		if err := buildTestInit(shipped); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	probe, err := buildProbe()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("shipped", func(t *testing.T) {
		exe, handle := runningInit(t, shipped)
		defer handle.Close()
		if exe != "/memfd:hutch-init (deleted)" {
			t.Fatalf("init runs %q, want the memfd /memfd:hutch-init (deleted)", exe)
		}
		attack := exec.Command(probe, "-want", "EPERM", "exe-write", "/proc/self/fd/3")
		attack.ExtraFiles = []*os.File{handle}
		out, err := attack.CombinedOutput()
		wantVerdict(t, "writing init's binary through a handle to /proc/PID/exe", out, err)

		// The control: the same attack where the file is writable.
		f := filepath.Join(t.TempDir(), "binary")
		if err := os.WriteFile(f, []byte("#!"), 0o755); err != nil {
			t.Fatal(err)
		}
		h, err := os.OpenFile(f, unix.O_PATH, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		control := exec.Command(probe, "-want", "ok", "exe-write", "/proc/self/fd/3")
		control.ExtraFiles = []*os.File{h}
		out, err = control.CombinedOutput()
		wantVerdict(t, "the control: a writable file through the same kind of handle", out, err)
	})
	t.Run("fallback", func(t *testing.T) {
		exe, handle := runningInit(t, "fallback")
		handle.Close()
		if want, _ := filepath.EvalSymlinks(self); exe != want {
			t.Fatalf("init runs %q, want this test binary %q (the fallback re-executes hutch)", exe, want)
		}
	})
}

// runningInit runs a sandbox whose hutch loads init from initPath
// (testInitVar), and returns, while its command runs, where its PID 1's
// /proc/PID/exe points and an O_PATH handle to it; the sandbox has ended
// when it returns.
func runningInit(t *testing.T, initPath string) (exe string, handle *os.File) {
	t.Helper()
	cmd := hutchCmd(t, "run", "--", "sh", "-c", "echo ready; read x; exit 0")
	cmd.Env = append(cmd.Env, testInitVar+"="+initPath)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("hutch run: %v\n%s", err, &stderr)
		}
	}()
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("the sandbox's command said %q: %v", line, err) // hutch's stderr: by the deferred Wait
	}
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
