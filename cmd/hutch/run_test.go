package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/creack/pty"

	"github.com/hutch-sandbox/hutch/internal/initexe"
	"github.com/hutch-sandbox/hutch/internal/testenv"
)

// hutchCmd returns a command that runs this test binary as hutch (TestMain
// dispatches on argv[0]), in a fresh home and project.
func hutchCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	proj := filepath.Join(home, "proj")
	if err := os.Mkdir(proj, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: exe, Args: append([]string{"hutch"}, args...), Dir: proj}
	cmd.Env = append(os.Environ(), "HOME="+home)
	return cmd
}

// TestRunPTY: under a terminal the command gets a pty of the sandbox's own
// devpts, never the caller's terminal, and its window size. Names prove
// nothing (both devpts instances have a /dev/pts/0): the terminals are
// told apart by the device their devpts instance has. With --tty never,
// the command's stdin is the caller's terminal: the control.
func TestRunPTY(t *testing.T) {
	testenv.RequireUserNS(t)
	for _, tty := range []string{"auto", "never"} {
		cmd := hutchCmd(t, "run", "--tty", tty, "--", "sh", "-c",
			`tty; readlink /proc/self/fd/0; ls /dev/pts | tr '\n' ' '; echo; stty size; stat -L -c dev=%d /proc/self/fd/0; echo done`)
		ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 33, Cols: 101})
		if err != nil {
			t.Fatal(err)
		}
		n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/dev/pts/%d", n), &st); err != nil {
			t.Fatal(err)
		}
		callerDev := fmt.Sprintf("dev=%d\n", st.Dev)
		var out bytes.Buffer
		io.Copy(&out, ptmx) // ends with EIO when hutch exits
		ptmx.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("hutch --tty %s: %v\n%s", tty, err, out.String())
		}
		got := strings.ReplaceAll(out.String(), "\r\n", "\n")
		if tty == "never" {
			if !strings.Contains(got, callerDev) {
				t.Errorf("--tty never: the command's stdin is not the caller's terminal (%s), so the check below proves nothing:\n%s", callerDev, got)
			}
			continue
		}
		for _, want := range []string{"/dev/pts/0\n/dev/pts/0\n", "0 ptmx \n", "33 101\n", "done\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("output lacks %q:\n%s", want, got)
			}
		}
		if strings.Contains(got, callerDev) || !strings.Contains(got, "dev=") {
			t.Errorf("the command's terminal is on the caller's devpts (%s):\n%s", callerDev, got)
		}
	}
}

// TestRunNoTTYSetsid: without hutch's pty (--tty never) the command is in
// a new session with no controlling terminal, even when hutch runs on
// one. The control: the same shell outside hutch, on the same kind of
// terminal, has one.
func TestRunNoTTYSetsid(t *testing.T) {
	testenv.RequireUserNS(t)
	const script = `cut -d' ' -f7 /proc/self/stat`
	control := exec.Command("sh", "-c", script)
	for _, cmd := range []*exec.Cmd{control, hutchCmd(t, "run", "--tty", "never", "--", "sh", "-c", script)} {
		ptmx, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		io.Copy(&out, ptmx)
		ptmx.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, out.String())
		}
		// Field 7 is the controlling terminal's device (0: none).
		tty := strings.TrimSpace(out.String())
		if cmd == control {
			if tty == "0" || tty == "" {
				t.Fatalf("control: a shell on a pty reports no controlling terminal (%q), so the check proves nothing", tty)
			}
			continue
		}
		if tty != "0" {
			t.Errorf("--tty never: the command has a controlling terminal (%q)", tty)
		}
	}
}

// TestRunKill9LeavesNothing: kill -9 of the supervisor at a moment when the
// sandbox is running takes the whole sandbox with it, and the next run
// collects the dead run's state directory.
func TestRunKill9LeavesNothing(t *testing.T) {
	testenv.RequireUserNS(t)
	marker := fmt.Sprintf("hutch-kill9-%d-%d", os.Getpid(), time.Now().UnixNano())
	runtimeDir := t.TempDir()
	os.Chmod(runtimeDir, 0o700)
	cmd := hutchCmd(t, "run", "--", "sh", "-c", "echo ready; sleep 1000; : "+marker)
	cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+runtimeDir)
	startReady(t, cmd)
	// The sandboxed shell: the one with the marker in another pid namespace.
	ourPidNS, _ := os.Readlink("/proc/self/ns/pid")
	var mntns string
	for _, pid := range pgrep(t, marker) {
		if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); ns != ourPidNS {
			mntns, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
		}
	}
	if mntns == "" {
		t.Fatal("the sandboxed shell is not visible from the host")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	// The kernel tears the pid namespace down asynchronously; wait for it
	// (this bounds the wait, it does not time anything).
	deadline := time.Now().Add(10 * time.Second)
	for len(pgrep(t, marker)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sandboxed processes outlived kill -9 of hutch: %v", pgrep(t, marker))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// No process is left in the sandbox's mount namespace, so its mounts
	// are gone with it.
	// The kernel kills the rest of the pid namespace asynchronously too.
	for {
		var holders []int
		for _, pid := range allPids() {
			if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); ns == mntns {
				holders = append(holders, pid)
			}
		}
		if len(holders) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pids %v still hold the sandbox's mount namespace %s", holders, mntns)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The dead run's state directory is collected by the next run.
	runs, _ := filepath.Glob(filepath.Join(runtimeDir, "hutch", "run-*"))
	if len(runs) != 1 {
		t.Fatalf("want the killed run's state dir left behind, have %v", runs)
	}
	next := hutchCmd(t, "run", "--", "true")
	next.Env = append(next.Env, "XDG_RUNTIME_DIR="+runtimeDir)
	if out, err := next.CombinedOutput(); err != nil {
		t.Fatalf("next run: %v\n%s", err, out)
	}
	if runs, _ := filepath.Glob(filepath.Join(runtimeDir, "hutch", "run-*")); len(runs) != 0 {
		t.Fatalf("stale state dirs not collected: %v", runs)
	}
}

// TestRunSecondSignalKills: a command that ignores SIGTERM is killed by a
// second one, and hutch reports 128+9.
func TestRunSecondSignalKills(t *testing.T) {
	testenv.RequireUserNS(t)
	cmd := hutchCmd(t, "run", "--", "sh", "-c", `trap "" TERM INT; echo ready; while :; do sleep 1; done`)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	bufio.NewReader(stdout).ReadString('\n')
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errorsAs(err, &ee) || ee.ExitCode() != 137 {
		t.Fatalf("want exit status 137, got %v", err)
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

func allPids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// pgrep returns the pids whose command line contains s.
func pgrep(t *testing.T, s string) []int {
	var out []int
	for _, pid := range allPids() {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && bytes.Contains(data, []byte(s)) && pid != os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}

// TestRunKill9AnyMoment: kill -9 of hutch at any point of start-up, from
// before the namespaces exist to after the command runs, leaves no process
// behind.
func TestRunKill9AnyMoment(t *testing.T) {
	testenv.RequireUserNS(t)
	marker := fmt.Sprintf("hutch-anymoment-%d", os.Getpid())
	runtimeDir := t.TempDir()
	os.Chmod(runtimeDir, 0o700)
	for i := 0; i < 24; i++ {
		cmd := hutchCmd(t, "run", "--", "sh", "-c", "sleep 1000; : "+marker)
		cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+runtimeDir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Spread the kills over start-up: 0, 1, 2, ... ms after the start.
		time.Sleep(time.Duration(i) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := pgrep(t, marker)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes outlived kill -9 of hutch: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunConcurrent: runs sharing a state directory start side by side;
// none may collect another's run directory as stale.
func TestRunConcurrent(t *testing.T) {
	testenv.RequireUserNS(t)
	runtimeDir := t.TempDir()
	os.Chmod(runtimeDir, 0o700)
	const n = 12
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			cmd := hutchCmd(t, "run", "--", "sh", "-c", fmt.Sprintf("echo run %d", i))
			cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+runtimeDir)
			out, err := cmd.CombinedOutput()
			if err == nil && string(out) != fmt.Sprintf("run %d\n", i) {
				err = fmt.Errorf("output %q", out)
			}
			if err != nil {
				err = fmt.Errorf("run %d: %v: %s", i, err, out)
			}
			errs <- err
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	// What stays is the cached hutch-init's directory (internal/initexe).
	runs, _ := filepath.Glob(filepath.Join(runtimeDir, "hutch", "*"))
	runs = slices.DeleteFunc(runs, func(p string) bool { return filepath.Base(p) == initexe.CacheDir })
	if len(runs) != 0 {
		t.Errorf("run directories left behind: %v", runs)
	}
	// Twelve runs at once made one cached init, and left no temporary file.
	if ents, err := os.ReadDir(filepath.Join(runtimeDir, "hutch", initexe.CacheDir)); initexe.Sum != "" && (err != nil || len(ents) != 1) {
		t.Errorf("the init cache holds %v (%v), want one file", ents, err)
	}
}

// TestRunNested: with security.nested, hutch runs inside hutch (the inner
// one maps one id: no_new_privs makes newuidmap useless there).
func TestRunNested(t *testing.T) {
	testenv.RequireUserNS(t)
	exe, _ := os.Executable()
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	// The test binary, copied into the project as "hutch": argv[0] must be
	// "hutch" for it to act as hutch, and the project is visible inside.
	install := func(cmd *exec.Cmd) {
		if err := os.WriteFile(filepath.Join(cmd.Dir, "hutch"), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := hutchCmd(t, "run", "--nested", "--", "./hutch", "run", "--", "sh", "-c", "echo inner $(id -u); cat /proc/1/cmdline | tr '\\0' ' '")
	install(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("inner %d", os.Getuid())) || !strings.Contains(string(out), "hutch-init") {
		t.Fatalf("nested run: %v\n%s", err, out)
	}
	// Without it, the inner sandbox cannot create its namespaces.
	cmd = hutchCmd(t, "run", "--", "./hutch", "run", "--", "true")
	install(cmd)
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "hutch: error: creating the sandbox's namespaces") {
		t.Fatalf("nested run without --nested: %v\n%s", err, out)
	}
}

// TestShellInteractive: hutch shell runs your login shell on the sandbox's
// pty; what you type reaches it, and its status is hutch's.
func TestShellInteractive(t *testing.T) {
	testenv.RequireUserNS(t)
	cmd := hutchCmd(t, "shell")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	io.WriteString(ptmx, "echo inside-$((6*7)) $(hostname); exit 3\n")
	var out bytes.Buffer
	io.Copy(&out, ptmx)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errorsAs(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("want exit status 3, got %v", err)
	}
	if !strings.Contains(out.String(), "inside-42 hutch") {
		t.Errorf("the shell did not run the input:\n%s", out.String())
	}
}
