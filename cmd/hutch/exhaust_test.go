package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/testenv"
)

// heldProbe starts the probe inside hutch with PROBE_HOLD, waits for its
// verdict line and returns it; the probe keeps what it took until release
// is called, which ends the run and returns hutch's error and output.
func heldProbe(t *testing.T, hutchArgs []string, probeArgs ...string) (verdict string, release func() (error, string)) {
	t.Helper()
	args := append(append([]string{"run", "--env", "PROBE_HOLD=1"}, hutchArgs...), "--", "./probe")
	cmd := probeCmd(t, append(args, probeArgs...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	verdict, _ = r.ReadString('\n')
	return strings.TrimSpace(verdict), func() (error, string) {
		stdin.Close()
		io.Copy(io.Discard, r)
		err := cmd.Wait()
		return err, stderr.String()
	}
}

// hostCanFork runs a trivial program as the host user, outside the
// sandbox.
func hostCanFork() error {
	return exec.Command("/bin/sh", "-c", "exit 0").Run()
}

// TestForkBombBounded: without a delegated cgroup, a fork bomb stops at
// limits.pids (RLIMIT_NPROC counted in the sandbox's own user namespace),
// and meanwhile the host user can still start processes. The bound is
// small (200), and the bomb's processes end with the run.
func TestForkBombBounded(t *testing.T) {
	testenv.RequireUserNS(t)
	marker := fmt.Sprintf("%d.%d", 1000+os.Getpid()%1000, time.Now().UnixNano()%1000000)
	verdict, release := heldProbe(t, []string{"--pids", "200"}, "-want", "EAGAIN", "forkbomb", "1000", "/bin/sleep", marker)
	hostErr := hostCanFork()
	err, stderr := release()
	if !strings.HasPrefix(verdict, "blocked: forkbomb: EAGAIN") {
		t.Errorf("the fork bomb was not bounded: %q (hutch: %v)\n%s", verdict, err, stderr)
	}
	if hostErr != nil {
		t.Errorf("the host user could not fork during the bomb: %v", hostErr)
	}
	if err != nil {
		t.Errorf("hutch: %v\n%s", err, stderr)
	}
	waitGone(t, marker)
}

// TestForkBombBoundedByDefault: the default profile bounds processes too
// (limits.pids = 4096), here seen from inside as RLIMIT_NPROC.
func TestForkBombBoundedByDefault(t *testing.T) {
	testenv.RequireUserNS(t)
	cmd := hutchCmd(t, "run", "--", "sh", "-c", "grep '^Max processes' /proc/self/limits")
	out, err := cmd.CombinedOutput()
	if f := strings.Fields(string(out)); err != nil || len(f) < 4 || f[2] != "4096" || f[3] != "4096" {
		t.Fatalf("want RLIMIT_NPROC 4096 inside by default, got %q (%v)", out, err)
	}
}

// waitGone waits until no process has s in its command line (the kernel
// tears a pid namespace down asynchronously; this bounds the wait, it
// times nothing).
func waitGone(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(pgrep(t, s)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("processes outlived the run: %v", pgrep(t, s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInotifyBounded: inotify instances are bounded in the sandbox's own
// user namespace, below the host user's limit: a command that opens all
// it can (here the host's whole limit) is stopped with EMFILE, and the
// host user's own inotify_init still works meanwhile. Both the key's
// budget and the default (half of the host's) are tried.
func TestInotifyBounded(t *testing.T) {
	testenv.RequireUserNS(t)
	hostMax := readInt(t, "/proc/sys/user/max_inotify_instances")
	for _, tc := range []struct {
		name string
		args []string
	}{{"key", []string{"--inotify-instances", "8"}}, {"default", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			verdict, release := heldProbe(t, tc.args, "-want", "EMFILE", "inotify", fmt.Sprint(hostMax))
			fd, hostErr := unix.InotifyInit1(unix.IN_CLOEXEC)
			if hostErr == nil {
				unix.Close(fd)
			}
			err, stderr := release()
			if !strings.HasPrefix(verdict, "blocked: inotify: EMFILE") {
				t.Errorf("the sandbox took every inotify instance of the host user: %q (hutch: %v)\n%s", verdict, err, stderr)
			}
			if hostErr != nil {
				t.Errorf("the host user's inotify_init failed while the sandbox held its instances: %v", hostErr)
			}
			if err != nil {
				t.Errorf("hutch: %v\n%s", err, stderr)
			}
		})
	}
}

func readInt(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if _, err := fmt.Sscan(string(data), &n); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// TestForkBombAcrossUIDs: root inside, with a subordinate id map, can give
// each child its own uid, which the per-uid bound (limits.pids as
// RLIMIT_NPROC) never stops. The sandbox's user namespace keeps three
// quarters of hutch's RLIMIT_NPROC as its ceiling over all of the host
// user's processes, so the host user keeps a quarter. To keep the bomb
// small, hutch starts here with an RLIMIT_NPROC of the host user's tasks
// plus 900: the sandbox gets fewer than 850.
func TestForkBombAcrossUIDs(t *testing.T) {
	testenv.RequireUserNS(t)
	marker := fmt.Sprintf("%d.%d", 1000+os.Getpid()%1000, time.Now().UnixNano()%1000000)
	limit := uint64(userTasks() + 900)
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &old); err != nil {
		t.Fatal(err)
	}
	if old.Cur < limit {
		t.Fatalf("RLIMIT_NPROC %d is below %d", old.Cur, limit)
	}
	withNproc := func(fn func()) {
		low := old
		low.Cur = limit
		if err := unix.Setrlimit(unix.RLIMIT_NPROC, &low); err != nil {
			t.Fatal(err)
		}
		defer unix.Setrlimit(unix.RLIMIT_NPROC, &old)
		fn()
	}
	var verdict string
	var release func() (error, string)
	withNproc(func() {
		verdict, release = heldProbe(t, []string{"--user", "root", "--pids", "100"}, "-want", "EAGAIN", "forkbomb-uids", "850", "/bin/sleep", marker)
	})
	var hostErr error
	withNproc(func() { hostErr = hostCanFork() }) // as the host user with hutch's limit
	err, stderr := release()
	if !strings.HasPrefix(verdict, "blocked: forkbomb-uids: EAGAIN") {
		t.Errorf("a fork bomb across uids was not bounded: %q (hutch: %v)\n%s", verdict, err, stderr)
	}
	if hostErr != nil {
		t.Errorf("the host user could not fork during the bomb: %v", hostErr)
	}
	if err != nil {
		t.Errorf("hutch: %v\n%s", err, stderr)
	}
	waitGone(t, marker)
}

// userTasks counts the tasks (threads included, as RLIMIT_NPROC does) of
// processes whose real uid is ours.
func userTasks() int {
	uid := fmt.Sprint(os.Getuid())
	n := 0
	for _, pid := range allPids() {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == uid {
				tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
				n += len(tasks)
			}
		}
	}
	return n
}
