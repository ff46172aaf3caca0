package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hutch-sandbox/hutch/internal/testenv"
)

// servicesProject writes a hutch.toml with PostgreSQL and Redis services
// whose processes' titles carry marker (postgres's cluster_name, redis's
// proc-title-template), and returns hutch run's command for args.
func servicesProject(t *testing.T, marker string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := hutchCmd(t, append([]string{"run", "--"}, args...)...)
	toml := fmt.Sprintf(`[services.db]
command = ["sh", "-c", "PG=$(ls -d /usr/lib/postgresql/*/bin | tail -1); $PG/initdb -A trust -U postgres -D /data/pg >/dev/null && $PG/postgres -D /data/pg -k /tmp -h 127.0.0.1 -p 5432 -c cluster_name=%[1]s; : %[1]s"]
ready = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]

[services.cache]
command = ["redis-server", "--port", "6379", "--save", "", "--proc-title-template", "{title} %[1]s"]
ready = "tcp:6379"
`, marker)
	if err := os.WriteFile(filepath.Join(cmd.Dir, "hutch.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	runtimeDir := t.TempDir()
	os.Chmod(runtimeDir, 0o700)
	cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+runtimeDir)
	return cmd
}

// pidNSes are the pid namespaces of the processes whose command line
// holds marker, other than ours.
func pidNSes(t *testing.T, marker string) map[string]bool {
	ours, _ := os.Readlink("/proc/self/ns/pid")
	out := map[string]bool{}
	for _, pid := range pgrep(t, marker) {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && ns != ours {
			out[ns] = true
		}
	}
	return out
}

// inPidNSes lists the processes in any of nses.
func inPidNSes(nses map[string]bool) []int {
	var out []int
	for _, pid := range allPids() {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && nses[ns] {
			out = append(out, pid)
		}
	}
	return out
}

// TestServicesKill9LeavesNothing: kill -9 of hutch while the command runs
// beside PostgreSQL and Redis leaves no process of either: not postgres's
// workers, not redis-server, nothing in the services' pid namespaces.
func TestServicesKill9LeavesNothing(t *testing.T) {
	testenv.RequireUserNS(t)
	marker := fmt.Sprintf("hutch-svc-kill9-%d-%d", os.Getpid(), time.Now().UnixNano())
	cmd := servicesProject(t, marker, "sh", "-c", "echo ready; exec sleep 1000")
	startReady(t, cmd)
	// The command starts once both services are ready: both are running.
	nses := pidNSes(t, marker)
	if len(nses) != 2 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("want the two services' own pid namespaces, found %d", len(nses))
	}
	if len(inPidNSes(nses)) < 4 {
		t.Fatalf("want postgres with its workers and redis-server running, found pids %v", inPidNSes(nses))
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	// The kernel tears the pid namespaces down asynchronously; wait for
	// it (this bounds the wait, it does not time anything).
	deadline := time.Now().Add(10 * time.Second)
	for left := inPidNSes(nses); len(left) > 0; left = inPidNSes(nses) {
		if time.Now().After(deadline) {
			t.Fatalf("service processes outlived kill -9 of hutch: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServicesKill9AnyMoment: kill -9 of hutch at any moment of the
// services' start-up (before, while and after postgres initialises and
// Redis starts) leaves none of their processes.
func TestServicesKill9AnyMoment(t *testing.T) {
	testenv.RequireUserNS(t)
	marker := fmt.Sprintf("hutch-svc-anymoment-%d", os.Getpid())
	for i := 0; i < 12; i++ {
		cmd := servicesProject(t, marker, "sleep", "1000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Spread the kills over start-up: 0, 50, 100, ... ms after the start.
		time.Sleep(time.Duration(i) * 50 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	deadline := time.Now().Add(10 * time.Second)
	for left := pgrep(t, marker); len(left) > 0; left = pgrep(t, marker) {
		if time.Now().After(deadline) {
			t.Fatalf("service processes outlived kill -9 of hutch: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestExecBesideServices: hutch exec into a run with services joins the
// command's sandbox (hutch-stage2's namespaces and root), never init's
// (whose mount namespace shows the host's tree the services' roots were
// bound from) nor a service's.
func TestExecBesideServices(t *testing.T) {
	testenv.RequireUserNS(t)
	prof := filepath.Join(t.TempDir(), "services.toml")
	os.WriteFile(prof, []byte("[services.cache]\ncommand = [\"redis-server\", \"--port\", \"6379\", \"--save\", \"\"]\nready = \"tcp:6379\"\n"), 0o644)
	run, id := startSandbox(t, "--profile", prof)
	var home string
	for _, e := range run.Env {
		if v, ok := strings.CutPrefix(e, "HOME="); ok {
			home = v
		}
	}
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "id_rsa"), []byte("PRIVATE"), 0o600)
	for _, attack := range [][]string{
		{"-want", "ENOENT", "open-read", filepath.Join(home, ".ssh", "id_rsa")},
		{"-want", "ENOENT", "proc-root", "redis-server"},
		{"-want", "ok", "open-read", filepath.Join(run.Dir, "probe")}, // the control: the project shows
	} {
		out, err := execIn(run, append([]string{id, "--", "./probe"}, attack...)...).CombinedOutput()
		wantVerdict(t, strings.Join(attack, " "), out, err)
	}
	// The service is there for the exec'd command too: same network.
	out, err := execIn(run, id, "--", "redis-cli", "-h", "cache", "ping").CombinedOutput()
	if err != nil || string(out) != "PONG\n" {
		t.Errorf("redis-cli -h cache ping from hutch exec: %v %q", err, out)
	}
}

// TestServicePublishedPort: a port published with -p reaches a service
// (they share the command's network): Redis answers PING from the host.
func TestServicePublishedPort(t *testing.T) {
	testenv.RequireUserNS(t)
	prof := filepath.Join(t.TempDir(), "services.toml")
	os.WriteFile(prof, []byte("[services.cache]\ncommand = [\"redis-server\", \"--port\", \"6379\", \"--save\", \"\"]\nready = \"tcp:6379\"\n"), 0o644)
	hp := freePort(t)
	startSandbox(t, "--profile", prof, "-p", hp+":6379")
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+hp, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "PING\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	if line != "+PONG\r\n" {
		t.Errorf("redis through the published port %s said %q", hp, line)
	}
}
