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

func wantBlocked(t *testing.T, what string, out []byte, err error) {
	t.Helper()
	s := string(out)
	if err != nil || !strings.Contains(s, "blocked: ") || strings.Contains(s, "ESCAPED") {
		t.Errorf("%s: want the attempt blocked, got %v:\n%s", what, err, s)
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

	attempts := append([][]string{}, []string{"tcp", tcp.Addr().String()})
	for _, p := range paths {
		attempts = append(attempts, []string{"unix", p})
	}
	for _, a := range attempts {
		// ...and from inside it must not.
		cmd := probeCmd(t, append([]string{"run", "--", "./probe"}, a...)...)
		cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+runtimeDir, "SSH_AUTH_SOCK="+paths[1])
		out, err := cmd.CombinedOutput()
		wantBlocked(t, strings.Join(a, " "), out, err)
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
// terminal, with or without hutch's pty.
func TestEscapeTIOCSTI(t *testing.T) {
	testenv.RequireUserNS(t)
	for _, tty := range []string{"never", "auto"} {
		cmd := probeCmd(t, "run", "--tty", tty, "--", "./probe", "tiocsti", "0")
		ptmx, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(ptmx)
		err = cmd.Wait()
		ptmx.Close()
		wantBlocked(t, "TIOCSTI with --tty "+tty, out, err)
	}
}
