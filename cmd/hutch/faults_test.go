package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/testenv"
)

// startReady starts cmd (a command that prints "ready" once running),
// waits for that line and returns its stderr buffer.
func startReady(t *testing.T, cmd *exec.Cmd) *bytes.Buffer {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("sandbox did not start: %q\n%s", line, stderr.String())
	}
	return &stderr
}

// waitBounded waits for cmd; a sandbox that runs on for a minute is
// killed (hutch and all) and the test fails: the bound keeps a broken
// defence from hanging the suite, it times nothing.
func waitBounded(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatal("the sandbox ran on")
		return nil
	}
}

// exitCode is cmd.Wait's status, -1 when it did not exit normally.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// TestHelperDies: kill -9 of a helper the sandbox depends on ends the
// sandbox: the command gets SIGTERM, hutch names the helper and exits 125,
// and no process of the sandbox nor the helper's mount is left.
func TestHelperDies(t *testing.T) {
	testenv.RequireUserNS(t)
	for _, tc := range []struct {
		helper string
		args   []string
	}{
		{"fuse-overlayfs", []string{"--project-mode", "overlay", "--overlay", "fuse"}},
		{"slirp4netns", []string{"--network", "slirp4netns"}},
		{"pasta", []string{"--network", "pasta"}},
	} {
		t.Run(tc.helper, func(t *testing.T) {
			testenv.RequireProgram(t, tc.helper)
			marker := fmt.Sprintf("hutch-helper-%d-%d", os.Getpid(), time.Now().UnixNano())
			args := append(append([]string{"run", "--result", "../result.json"}, tc.args...), "--", "sh", "-c", "echo ready; sleep 1000; : "+marker)
			cmd := hutchCmd(t, args...)
			home := filepath.Dir(cmd.Dir)
			stderr := startReady(t, cmd)
			var helpers []int
			if tc.helper == "fuse-overlayfs" {
				// Ours: its upper layer is in this test's home.
				for _, pid := range pgrep(t, home) {
					if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.HasPrefix(string(comm), "fuse-overlayfs") {
						helpers = append(helpers, pid)
					}
				}
			} else {
				// pasta re-executes itself as passt or passt.avx2.
				helpers = childrenNamed(cmd.Process.Pid, map[string]string{"slirp4netns": "slirp4netns", "pasta": "pas"}[tc.helper])
			}
			if len(helpers) == 0 {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no %s of this sandbox found", tc.helper)
			}
			syscall.Kill(helpers[0], syscall.SIGKILL)
			err := waitBounded(t, cmd)
			if code := exitCode(err); code != 125 {
				t.Errorf("want exit status 125, got %v\n%s", err, stderr)
			}
			want := "hutch: error: " + tc.helper + " died while the command ran; hutch stopped the sandbox\n"
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
			// --result records hutch's own failure after the start.
			if r := readResult(t, filepath.Join(home, "result.json")); r.ExitCode != 125 || r.Error == nil || r.Error.Kind != "helper-died" {
				t.Errorf("result: exit_code %d error %+v, want 125 and a helper-died error", r.ExitCode, r.Error)
			}
			waitGone(t, marker)
			if tc.helper == "fuse-overlayfs" {
				waitGone(t, home) // every fuse-overlayfs of the run, and so its mounts
			}
		})
	}
}

// TestHelperDiesKeptSession: a kept session whose fuse-overlayfs died is
// marked so, keeps what was written, and stays usable.
func TestHelperDiesKeptSession(t *testing.T) {
	testenv.RequireUserNS(t)
	testenv.RequireProgram(t, "fuse-overlayfs")
	cmd := hutchCmd(t, "run", "--keep", "k", "--overlay", "fuse", "--", "sh", "-c", "echo kept > f; echo ready; sleep 1000")
	home, proj := filepath.Dir(cmd.Dir), cmd.Dir
	stderr := startReady(t, cmd)
	var fuse []int
	for _, pid := range pgrep(t, home) {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.HasPrefix(string(comm), "fuse-overlayfs") {
			fuse = append(fuse, pid)
		}
	}
	if len(fuse) == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("no fuse-overlayfs of this sandbox found")
	}
	syscall.Kill(fuse[0], syscall.SIGKILL)
	if err := waitBounded(t, cmd); exitCode(err) != 125 {
		t.Fatalf("want exit status 125, got %v\n%s", err, stderr)
	}
	in := func(args ...string) string {
		c := hutchCmd(t, args...)
		c.Dir, c.Env = proj, append(os.Environ(), "HOME="+home)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("hutch %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := in("sessions"); !strings.Contains(out, "idle (its last run was stopped: fuse-overlayfs died)") {
		t.Errorf("the session is not marked:\n%s", out)
	}
	if out := in("run", "--keep", "k", "--overlay", "fuse", "--", "cat", "f"); !strings.HasPrefix(out, "kept\n") {
		t.Errorf("the session is not usable, or lost what was written: %q", out)
	}
	if out := in("sessions"); !strings.Contains(out, " idle\n") {
		t.Errorf("a run that ended on its own leaves the mark:\n%s", out)
	}
	in("discard", "k")
}

// TestKillGrace: a command that ignores SIGTERM is killed, with the whole
// sandbox, when process.kill_grace runs out after the one forwarded
// SIGTERM; hutch exits 137 and says why.
func TestKillGrace(t *testing.T) {
	testenv.RequireUserNS(t)
	marker := fmt.Sprintf("hutch-grace-%d-%d", os.Getpid(), time.Now().UnixNano())
	cmd := hutchCmd(t, "run", "--kill-grace", "1s", "--", "sh", "-c", `trap "" TERM INT HUP; echo ready; while :; do sleep 1; done; : `+marker)
	stderr := startReady(t, cmd)
	cmd.Process.Signal(syscall.SIGTERM)
	err := waitBounded(t, cmd)
	if code := exitCode(err); code != 137 {
		t.Errorf("want exit status 137, got %v\n%s", err, stderr)
	}
	want := "hutch: warning: the command did not end within process.kill_grace (1s) of SIGTERM; hutch killed the sandbox\n"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	waitGone(t, marker)
}

// TestConcurrentRuns: ephemeral runs with an overlaid project, many at
// once in one project, all succeed under either driver (one lost a lock
// race with another's stale-run collection: "session  is in use by pid
// 0"), and leave nothing behind.
func TestConcurrentRuns(t *testing.T) {
	testenv.RequireUserNS(t)
	for _, driver := range []string{"kernel", "fuse"} {
		t.Run(driver, func(t *testing.T) {
			if driver == "fuse" {
				testenv.RequireProgram(t, "fuse-overlayfs")
			}
			base := hutchCmd(t, "run", "--", "true")
			home, proj := filepath.Dir(base.Dir), base.Dir
			const runs, parallel = 200, 16
			var wg sync.WaitGroup
			sem := make(chan struct{}, parallel)
			errs := make(chan string, runs)
			for i := 0; i < runs; i++ {
				wg.Add(1)
				sem <- struct{}{}
				go func(i int) {
					defer wg.Done()
					defer func() { <-sem }()
					c := hutchCmd(t, "run", "--project-mode", "overlay", "--overlay", driver, "--", "sh", "-c", fmt.Sprintf("echo %d > f; cat f", i))
					c.Dir, c.Env = proj, append(os.Environ(), "HOME="+home)
					out, err := c.CombinedOutput()
					if err != nil || !strings.HasPrefix(string(out), fmt.Sprintf("%d\n", i)) {
						errs <- fmt.Sprintf("run %d: %v: %s", i, err, out)
					}
				}(i)
			}
			wg.Wait()
			close(errs)
			n := 0
			for e := range errs {
				if n++; n <= 5 {
					t.Error(e)
				}
			}
			if n > 0 {
				t.Errorf("%d of %d runs failed", n, runs)
			}
			left, _ := filepath.Glob(filepath.Join(home, ".local", "share", "hutch", "sessions", ".run-*"))
			if len(left) > 0 {
				t.Errorf("runs left their layers behind: %v", left)
			}
			if _, err := os.Stat(filepath.Join(proj, "f")); err == nil {
				t.Error("an overlaid run wrote into the project")
			}
		})
	}
}

// TestTerminalRestored: whatever the mode and however the run ends, the
// caller's terminal has the modes it had before (a command on a shared
// terminal, --tty never, left it raw and without echo).
func TestTerminalRestored(t *testing.T) {
	testenv.RequireUserNS(t)
	for _, tc := range []struct {
		name   string
		args   []string
		script string
		term   bool // hutch gets SIGTERM once the command is ready
		code   int
	}{
		{"never exit", []string{"--tty", "never"}, "stty raw -echo; echo ready; exit 3", false, 3},
		{"never killed", []string{"--tty", "never"}, "stty raw -echo; echo ready; kill -9 $$", false, 137},
		{"never signal grace", []string{"--tty", "never", "--kill-grace", "1s"}, `trap "" TERM; stty raw -echo; echo ready; while :; do sleep 1; done`, true, 137},
		{"never timeout", []string{"--tty", "never", "--timeout", "1s", "--kill-grace", "1s"}, `trap "" TERM; stty raw -echo; echo ready; while :; do sleep 1; done`, false, 124},
		{"auto signal", []string{"--tty", "auto"}, `stty raw -echo; echo ready; sleep 1000`, true, 143},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer ptmx.Close()
			defer tty.Close()
			before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			cmd := hutchCmd(t, append(append([]string{"run"}, tc.args...), "--", "sh", "-c", tc.script)...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			ready := make(chan struct{})
			var out bytes.Buffer
			go func() {
				buf := make([]byte, 4096)
				for signalled := false; ; {
					n, err := ptmx.Read(buf)
					out.Write(buf[:n])
					if !signalled && strings.Contains(out.String(), "ready") {
						signalled = true
						close(ready)
					}
					if err != nil {
						return
					}
				}
			}()
			if tc.term {
				<-ready
				cmd.Process.Signal(syscall.SIGTERM)
			}
			err = waitBounded(t, cmd)
			if code := exitCode(err); code != tc.code {
				t.Errorf("want exit status %d, got %v", tc.code, err)
			}
			after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			if *after != *before {
				t.Errorf("terminal modes changed: echo %v -> %v, icanon %v -> %v",
					before.Lflag&unix.ECHO != 0, after.Lflag&unix.ECHO != 0, before.Lflag&unix.ICANON != 0, after.Lflag&unix.ICANON != 0)
			}
		})
	}
}
