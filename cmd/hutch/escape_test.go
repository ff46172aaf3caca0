package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/hutch-sandbox/hutch/internal/testenv"
)

// probeCmd is hutchCmd with the escape probe installed in the project.
func probeCmd(t *testing.T, hutchArgs ...string) *exec.Cmd {
	t.Helper()
	src, err := buildProbe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := hutchCmd(t, hutchArgs...)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cmd.Dir, "probe"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// wantVerdict checks the probe's verdict: exit 0 and "blocked: " (or "ok: "
// for a positive control) on every line, no ESCAPED, NOT-TRIED or
// UNEXPECTED.
func wantVerdict(t *testing.T, what string, out []byte, err error) {
	t.Helper()
	s := string(out)
	if err != nil || !strings.Contains(s, "blocked: ") && !strings.Contains(s, "ok: ") ||
		strings.Contains(s, "ESCAPED") || strings.Contains(s, "NOT-TRIED") || strings.Contains(s, "UNEXPECTED") {
		t.Errorf("%s: want the probe's expected verdict, got %v:\n%s", what, err, s)
	}
}

// TestEscapeHostSockets: none of the host's unix sockets is reachable, by
// path (in /tmp, in XDG_RUNTIME_DIR) or abstract, nor its loopback TCP.
func TestEscapeHostSockets(t *testing.T) {
	testenv.RequireUserNS(t)
	runtimeDir := t.TempDir()
	os.Chmod(runtimeDir, 0o700)
	unique := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	tmpSock := filepath.Join(os.TempDir(), "hutch-escape-"+unique+".sock")
	paths := []string{tmpSock, filepath.Join(runtimeDir, "agent.sock"), "@hutch-escape-abstract-" + unique}
	for _, p := range paths {
		l, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go acceptAll(l)
		// The socket works from the host...
		c, err := net.Dial("unix", p)
		if err != nil {
			t.Fatalf("host cannot reach its own socket %s: %v", p, err)
		}
		c.Close()
	}
	defer os.Remove(tmpSock)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	go acceptAll(tcp)

	// ...and from inside they must not: the paths are not there (/tmp is
	// the sandbox's own, the runtime dir is not bound), and the abstract
	// socket and the TCP port belong to the host's net namespace.
	attempts := [][]string{{"ECONNREFUSED", "tcp", tcp.Addr().String()},
		{"ENOENT", "unix", paths[0]}, {"ENOENT", "unix", paths[1]}, {"ECONNREFUSED", "unix", paths[2]}}
	for _, a := range attempts {
		cmd := probeCmd(t, append([]string{"run", "--", "./probe", "-want"}, a...)...)
		cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+runtimeDir, "SSH_AUTH_SOCK="+paths[1])
		out, err := cmd.CombinedOutput()
		wantVerdict(t, strings.Join(a, " "), out, err)
	}
}

func acceptAll(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// TestEscapeTIOCSTI: a command cannot push keystrokes into the caller's
// terminal, with or without hutch's pty. Each defence is tried alone:
// seccomp refuses TIOCSTI whatever the terminal; with seccomp off, the
// new session leaves the command no controlling terminal (/dev/tty gives
// ENXIO), and the kernel refuses TIOCSTI on a terminal that is not the
// caller's own (EPERM), or any TIOCSTI when dev.tty.legacy_tiocsti is 0
// (EIO).
func TestEscapeTIOCSTI(t *testing.T) {
	testenv.RequireUserNS(t)
	legacy, err := os.ReadFile("/proc/sys/dev/tty/legacy_tiocsti")
	kernelErrno := "EPERM"
	if err == nil && strings.TrimSpace(string(legacy)) == "0" {
		kernelErrno = "EIO"
	}
	for _, c := range []struct{ name, want string }{
		{"--tty never", "-want EPERM tiocsti 0"},
		{"--tty auto", "-want EPERM tiocsti 0"},
		{"--tty never --seccomp off", "-want " + kernelErrno + " tiocsti 0"},
		{"--tty never --seccomp off", "-want ENXIO open-read /dev/tty"},
	} {
		args := append([]string{"run"}, strings.Fields(c.name)...)
		args = append(append(args, "--", "./probe"), strings.Fields(c.want)...)
		cmd := probeCmd(t, args...)
		ptmx, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(ptmx)
		err = cmd.Wait()
		ptmx.Close()
		wantVerdict(t, c.name+": "+c.want, out, err)
	}
}
