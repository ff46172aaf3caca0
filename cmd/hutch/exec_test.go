package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/testenv"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// startSandbox runs hutch ARGS -- sh -c 'echo ready; exec sleep 600' and
// returns once the command runs, with the command and its hutch ps id.
func startSandbox(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	run := probeCmd(t, append(append([]string{"run"}, args...), "--", "sh", "-c", "echo ready; exec sleep 600")...)
	stdout, err := run.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.Process.Kill(); run.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("the sandbox did not start: %q %v", line, err)
	}
	ps := exec.Command(run.Path, "hutch", "ps", "--json")
	ps.Args, ps.Env = []string{"hutch", "ps", "--json"}, run.Env
	out, err := ps.Output()
	if err != nil {
		t.Fatalf("hutch ps: %v", err)
	}
	var list []supervise.RunInfo
	json.Unmarshal(out, &list)
	for _, r := range list {
		if r.PID == run.Process.Pid {
			return run, r.ID
		}
	}
	t.Fatalf("hutch ps does not list pid %d: %s", run.Process.Pid, out)
	return nil, ""
}

// execIn returns hutch exec ARGS for the sandbox run started.
func execIn(run *exec.Cmd, args ...string) *exec.Cmd {
	cmd := exec.Command(run.Path)
	cmd.Args = append([]string{"hutch", "exec"}, args...)
	cmd.Env, cmd.Dir = run.Env, run.Dir
	return cmd
}

// TestExec: hutch exec runs a command in a running sandbox with its
// command's user, capabilities, no_new_privs and seccomp filter, in its
// namespaces (its hostname, its processes, its overlay), and returns its
// status; it refuses a sandbox that ended and one that is not yours.
func TestExec(t *testing.T) {
	testenv.RequireUserNS(t)
	for _, tc := range []struct {
		name string
		args []string
		uid  string
		caps string // CapEff inside
	}{
		{"self", nil, fmt.Sprint(os.Getuid()), "0000000000000000"},
		{"root", []string{"--user", "root"}, "0", "00000000800405fb"},
		{"fuse overlay", []string{"--project-mode", "overlay", "--overlay", "fuse"}, fmt.Sprint(os.Getuid()), "0000000000000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run, id := startSandbox(t, tc.args...)
			want := func(out []byte, err error, wants ...string) {
				t.Helper()
				if err != nil {
					t.Fatalf("hutch exec: %v\n%s", err, out)
				}
				for _, w := range wants {
					if !strings.Contains(string(out), w) {
						t.Errorf("hutch exec output lacks %q:\n%s", w, out)
					}
				}
			}
			out, err := execIn(run, id, "--", "sh", "-c",
				`id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; hostname; echo x > exec-wrote; pwd
				for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = sleep ] && grep CapEff $p/status | sed 's/^/run: /'; done; exit 0`).CombinedOutput()
			// The run's command (sleep) holds the same capabilities.
			want(out, err, tc.uid+"\n", "CapEff:\t"+tc.caps, "run: CapEff:\t"+tc.caps, "NoNewPrivs:\t1", "Seccomp:\t2", "hutch\n", run.Dir+"\n")
			// The same filter as the run's command: the keyring is refused.
			out, err = execIn(run, id, "--", "./probe", "-want", "EPERM", "keyctl").CombinedOutput()
			want(out, err, "blocked: keyctl: EPERM")
			// Its writes land where the run's would: in the overlay, not
			// on the host, when the project is overlaid.
			_, statErr := os.Stat(filepath.Join(run.Dir, "exec-wrote"))
			if overlaid := tc.name == "fuse overlay"; overlaid != os.IsNotExist(statErr) {
				t.Errorf("overlaid=%v, but the write on the host: %v", overlaid, statErr)
			}
			out, err = execIn(run, "-e", "EXTRA=1", "-w", "/tmp", id, "--", "sh", "-c", `echo "$EXTRA $(pwd)"; exit 7`).CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 || !strings.Contains(string(out), "1 /tmp") {
				t.Errorf("hutch exec -e -w ... exit 7: %v\n%s", err, out)
			}
		})
	}

	run, id := startSandbox(t)
	out, err := execIn(run, id, "--", "no-such-command").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 127 {
		t.Errorf("exec of a missing command: %v, want exit 127\n%s", err, out)
	}
	// Under a terminal: a pty of the sandbox's own devpts, never yours.
	cmd := execIn(run, id, "--", "sh", "-c", "tty; echo done")
	ptmx, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	io.Copy(&buf, ptmx)
	ptmx.Close()
	if err := cmd.Wait(); err != nil || !strings.Contains(buf.String(), "/dev/pts/") || !strings.Contains(buf.String(), "done") {
		t.Errorf("hutch exec under a pty: %v\n%s", err, buf.String())
	}
	callerTTY, _ := os.Readlink("/proc/self/fd/0")
	if strings.Contains(buf.String(), callerTTY+"\r") && callerTTY != "" && strings.HasPrefix(callerTTY, "/dev/pts/") {
		t.Errorf("the command got the caller's terminal %s", callerTTY)
	}

	// kill -9 of hutch exec: the command it started goes too (the run's
	// own command stays).
	bg := execIn(run, id, "--", "sh", "-c", "echo started; exec sleep 601.25")
	bgOut, _ := bg.StdoutPipe()
	if err := bg.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(bgOut).ReadString('\n'); line != "started\n" {
		t.Fatalf("hutch exec did not start its command: %q", line)
	}
	// The exec'd sh, or the sleep it became (the same process): "601.25" is
	// in its command line either way, as in hutch exec's own (and not in
	// another test binary's path, as a bare "601" can be).
	var pids []int
	for _, p := range pgrep(t, "601.25") {
		if p != bg.Process.Pid {
			pids = append(pids, p)
		}
	}
	if len(pids) != 1 {
		t.Fatalf("the exec'd sleep 601.25: pids %v", pids)
	}
	pidfd, err := unix.PidfdOpen(pids[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	bg.Process.Kill()
	bg.Wait()
	// Event-based: the pidfd turns readable when the process exits; a
	// minute is only the bound that turns a leak into a failure.
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 60_000); err != nil || n != 1 {
		t.Errorf("ESCAPED: the command of a killed hutch exec runs on (poll: %d, %v)", n, err)
	}
	unix.Close(pidfd)
	if out, err := execIn(run, id, "--", "true").CombinedOutput(); err != nil {
		t.Errorf("the sandbox did not survive a killed hutch exec: %v\n%s", err, out)
	}

	// Once the sandbox ended, there is nothing to join.
	run.Process.Kill()
	run.Wait()
	out, err = execIn(run, id, "--", "true").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "no such running sandbox") {
		t.Errorf("exec after the end: %v, want exit 2\n%s", err, out)
	}
}

// TestExecNotYours: a run directory that names a process that is not
// yours (here the host's pid 1, root's) gets no exec: joining another
// user's namespaces is refused by the kernel, and hutch says so. ESCAPED if
// the command ran.
func TestExecNotYours(t *testing.T) {
	testenv.RequireUserNS(t)
	if os.Getuid() == 0 {
		t.Skip("as root every process is yours")
	}
	runtime := t.TempDir()
	state := filepath.Join(runtime, "hutch")
	dir := filepath.Join(state, "run-forged")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := os.Create(filepath.Join(dir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	// The lock is held by another process: a live run, as hutch ps sees it.
	holder := exec.Command("flock", filepath.Join(dir, "lock"), "sh", "-c", "echo held; exec sleep 600")
	held, _ := holder.StdoutPipe()
	// flock forks its command rather than exec'ing it: kill the group,
	// or the sleep outlives the test.
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { syscall.Kill(-holder.Process.Pid, syscall.SIGKILL); holder.Wait() }()
	if line, _ := bufio.NewReader(held).ReadString('\n'); line != "held\n" {
		t.Fatalf("flock: %q", line)
	}
	info, _ := json.Marshal(supervise.RunInfo{ID: "forged", PID: 1, InitPID: 1, Args: []string{"x"}})
	os.WriteFile(filepath.Join(dir, "info.json"), info, 0o600)
	// What hutch exec reads: the config frame a run's init got.
	var frame bytes.Buffer
	wire.WriteFrame(&frame, &wire.Config{Plan: &sandbox.Plan{Args: []string{"x"}, Env: []string{"PATH=/bin"}, Cwd: "/"}})
	os.WriteFile(filepath.Join(dir, "exec.frame"), frame.Bytes(), 0o600)
	cmd := hutchCmd(t, "exec", "forged", "--", "sh", "-c", "echo ESCAPED")
	cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+runtime)
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "ESCAPED") {
		t.Fatalf("ESCAPED: hutch exec joined root's pid 1:\n%s", out)
	}
	if err == nil || !strings.Contains(string(out), "permission denied") {
		t.Errorf("hutch exec into a process not yours: %v, want a refusal saying permission denied\n%s", err, out)
	}
	t.Logf("blocked: %s", strings.TrimSpace(string(out)))
}
