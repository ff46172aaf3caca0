package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hutch-sandbox/hutch/internal/testenv"
)

// The attacks of this file run against real servers: a tmux server and an
// ssh-agent holding a key, both listening in /tmp as they do on a desktop.
// Each refusal is paired with a positive control that shows the same
// attack succeeding where nothing stops it, so a check cannot pass
// because the attack was broken.

// hostEnv is the environment for the servers: /tmp as their temporary
// directory, as on a desktop.
func hostEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "TMPDIR" || k == "TMUX_TMPDIR" || k == "TMUX" || k == "SSH_AUTH_SOCK" || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "TERM=dumb")
}

// startTmux starts a tmux server of the test user's in /tmp/tmux-UID and
// returns its socket; the server is killed when the test ends.
func startTmux(t *testing.T, home string) string {
	t.Helper()
	testenv.RequireProgram(t, "tmux")
	name := fmt.Sprintf("hutch-escape-%d", os.Getpid())
	cmd := exec.Command("tmux", "-L", name, "-f", "/dev/null", "new-session", "-d")
	cmd.Env = hostEnv(home)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("starting tmux: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		kill := exec.Command("tmux", "-L", name, "kill-server")
		kill.Env = hostEnv(home)
		kill.Run()
	})
	return filepath.Join("/tmp", fmt.Sprintf("tmux-%d", os.Getuid()), name)
}

// startAgent starts a real ssh-agent holding a new ed25519 key, listening
// at sock, or where ssh-agent puts it (/tmp/ssh-XXXX) when sock is "". It
// returns the socket and the key's fingerprint; the agent is killed, by
// its pid, when the test ends.
func startAgent(t *testing.T, home, sock string) (string, string) {
	t.Helper()
	for _, p := range []string{"ssh-agent", "ssh-add", "ssh-keygen"} {
		testenv.RequireProgram(t, p)
	}
	args := []string{"-s"}
	if sock != "" {
		args = append(args, "-a", sock)
	}
	// The agent listens before it forks and prints: no wait is needed.
	cmd := exec.Command("ssh-agent", args...)
	cmd.Env = hostEnv(home)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("starting ssh-agent: %v", err)
	}
	m := regexp.MustCompile(`SSH_AUTH_SOCK=([^;]+);[\s\S]*SSH_AGENT_PID=(\d+);`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("ssh-agent said:\n%s", out)
	}
	sock = string(m[1])
	pid, _ := strconv.Atoi(string(m[2]))
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hutch-escape", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	add := exec.Command("ssh-add", key)
	add.Env = append(hostEnv(home), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	fp, err := exec.Command("ssh-keygen", "-l", "-f", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	return sock, strings.Fields(string(fp))[1]
}

// homeOutsideTmp makes a home for the test beside the test user's own:
// a home under /tmp would make /tmp one of its ancestors, which hutch
// leaves unbound for that reason alone.
func homeOutsideTmp(t *testing.T) string {
	t.Helper()
	base, err := os.UserHomeDir()
	if err != nil || strings.HasPrefix(base, "/tmp/") {
		t.Fatalf("the test user needs a home outside /tmp (HOME=%q)", base)
	}
	home, err := os.MkdirTemp(base, "hutch-escape-home-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	return home
}

// TestEscapeSharedProject: from /tmp (or from the directories tmux and
// ssh-agent make in it), the working directory is not a project: hutch
// refuses to run, with exit status 2 and why. Bound as the project, /tmp
// would hand the command the user's tmux server (code on the host) and
// ssh-agent (the keys). From a project of its own, neither socket is there.
func TestEscapeSharedProject(t *testing.T) {
	testenv.RequireUserNS(t)
	home := homeOutsideTmp(t)
	tmuxSock := startTmux(t, home)
	agentSock, fp := startAgent(t, home, "")
	marker := filepath.Join(t.TempDir(), "ran-on-the-host")
	tmuxAttack := []string{"tmux", "-S", tmuxSock, "run-shell", "id > " + marker}
	agentAttack := []string{"env", "SSH_AUTH_SOCK=" + agentSock, "ssh-add", "-l"}

	// Positive controls, on the host: both attacks work there.
	host := exec.Command(tmuxAttack[0], tmuxAttack[1:]...)
	host.Env = hostEnv(home)
	if out, err := host.CombinedOutput(); err != nil {
		t.Fatalf("control: tmux run-shell on the host: %v\n%s", err, out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("control: tmux run-shell did not run on the host: %v", err)
	}
	os.Remove(marker)
	host = exec.Command(agentAttack[0], agentAttack[1:]...)
	host.Env = hostEnv(home)
	if out, err := host.CombinedOutput(); err != nil || !bytes.Contains(out, []byte(fp)) {
		t.Fatalf("control: ssh-add -l on the host: %v\n%s", err, out)
	}

	hutch := func(dir string, args ...string) (string, string, int) {
		cmd := hutchCmd(t, args...)
		cmd.Dir = dir
		cmd.Env = append(hostEnv(home), "PWD="+dir)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	escaped := func(what, stdout string) bool {
		if _, err := os.Stat(marker); err == nil {
			os.Remove(marker)
			t.Errorf("ESCAPED: %s: tmux ran a command on the host", what)
			return true
		}
		if strings.Contains(stdout, fp) {
			t.Errorf("ESCAPED: %s: ssh-agent listed its key:\n%s", what, stdout)
			return true
		}
		return false
	}

	// From the shared places, and from the servers' own directories in
	// them: refused before anything runs.
	for _, dir := range []string{"/tmp", filepath.Dir(tmuxSock), filepath.Dir(agentSock)} {
		for _, attack := range [][]string{tmuxAttack, agentAttack} {
			what := fmt.Sprintf("cd %s && hutch run -- %s", dir, strings.Join(attack, " "))
			stdout, stderr, code := hutch(dir, append([]string{"run", "--"}, attack...)...)
			if escaped(what, stdout) {
				continue
			}
			if code != 2 || !strings.Contains(stderr, "hutch: error: the working directory "+dir+" is not a project: ") ||
				!strings.Contains(stderr, "hutch: hint: make a directory for the work") {
				t.Errorf("%s: want exit 2 and the refusal, got %d:\n%s", what, code, stderr)
				continue
			}
			t.Logf("blocked: %s: %s", what, strings.SplitN(stderr, "\n", 2)[0])
		}
	}

	// Positive control through hutch itself: named on purpose with
	// --project, /tmp is the project, with a note, and the attacks work
	// once the sockets are let through too (hutch covers a bind's sockets
	// otherwise: TestEscapeProjectSockets). The refusal above is what
	// stops them.
	open := []string{"--socket", agentSock, "--socket", tmuxSock}
	stdout, stderr, code := hutch("/tmp", append(append([]string{"run", "--project", "/tmp"}, open...), append([]string{"--"}, agentAttack...)...)...)
	if code != 0 || !strings.Contains(stdout, fp) || !strings.Contains(stderr, "hutch: note: --project /tmp: ") {
		t.Errorf("control: --project /tmp: want the key listed and a note, got %d:\n%s%s", code, stdout, stderr)
	}
	hutch("/tmp", append(append([]string{"run", "--project", "/tmp"}, open...), append([]string{"--"}, tmuxAttack...)...)...)
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("control: --project /tmp: tmux run-shell did not reach the server")
	}
	os.Remove(marker)

	// From a project of its own: neither socket is there.
	src, err := buildProbe()
	if err != nil {
		t.Fatal(err)
	}
	proj := t.TempDir()
	data, _ := os.ReadFile(src)
	if err := os.WriteFile(filepath.Join(proj, "probe"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sock := range []string{tmuxSock, agentSock} {
		stdout, stderr, code := hutch(proj, "run", "--", "./probe", "-want", "ENOENT", "unix", sock)
		if code != 0 || !strings.HasPrefix(stdout, "blocked: unix: ENOENT") {
			t.Errorf("ESCAPED? connect %s from a project: %d\n%s%s", sock, code, stdout, stderr)
		}
	}
	for _, attack := range [][]string{tmuxAttack, agentAttack} {
		what := "from a project: " + strings.Join(attack, " ")
		stdout, _, code := hutch(proj, append([]string{"run", "--"}, attack...)...)
		if !escaped(what, stdout) && code == 0 {
			t.Errorf("%s: exited 0", what)
		}
	}
	if _, err := net.Dial("unix", agentSock); err != nil {
		t.Errorf("the agent went away during the test: %v", err)
	}
}

// TestEscapeRuntimeDirInHome: without systemd, XDG_RUNTIME_DIR often lies
// in home (~/.run here), and ssh-agent listens in it. With home visible
// (home = "ro", --ro ~), the runtime directory itself stays hidden, not
// only hutch's state in it.
func TestEscapeRuntimeDirInHome(t *testing.T) {
	testenv.RequireUserNS(t)
	for _, p := range []string{"ssh-agent", "ssh-add", "ssh-keygen"} {
		testenv.RequireProgram(t, p)
	}
	home := homeOutsideTmp(t)
	run := filepath.Join(home, ".run")
	proj := filepath.Join(home, "proj")
	for _, d := range []string{run, proj} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	sock, fp := startAgent(t, home, filepath.Join(run, "agent.sock"))
	env := append(hostEnv(home), "XDG_RUNTIME_DIR="+run)
	src, err := buildProbe()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(src)
	if err := os.WriteFile(filepath.Join(proj, "probe"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	hutch := func(args ...string) (string, int) {
		cmd := hutchCmd(t, args...)
		cmd.Dir = proj
		cmd.Env = append(env, "PWD="+proj)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	// Positive controls: bound by its own path on purpose, the agent is
	// reachable with the same probe, and lists its key.
	// The socket is let through by name: a bind's sockets are covered
	// otherwise (TestEscapeProjectSockets).
	if out, code := hutch("run", "--ro", run, "--socket", sock, "--", "./probe", "-want", "ok", "unix", sock); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("control: --ro %s: want the agent reached, got %d:\n%s", run, code, out)
	}
	if out, code := hutch("run", "--ro", run, "--socket", sock, "--", "env", "SSH_AUTH_SOCK="+sock, "ssh-add", "-l"); code != 0 || !strings.Contains(out, fp) {
		t.Fatalf("control: --ro %s: want the key listed, got %d:\n%s", run, code, out)
	}
	for _, flags := range [][]string{{"--home", "ro"}, {"--ro", home}, {"--home", "overlay"}} {
		what := strings.Join(flags, " ")
		args := append(append([]string{"run"}, flags...), "--", "./probe", "-want", "ENOENT", "unix", sock)
		out, code := hutch(args...)
		if code != 0 || !strings.HasPrefix(out, "blocked: unix: ENOENT") {
			t.Errorf("%s: the agent in XDG_RUNTIME_DIR: want blocked, got %d:\n%s", what, code, out)
			continue
		}
		t.Logf("%s: %s", what, strings.TrimSpace(out))
		args = append(append([]string{"run"}, flags...), "--", "env", "SSH_AUTH_SOCK="+sock, "ssh-add", "-l")
		if out, code := hutch(args...); code == 0 || strings.Contains(out, fp) {
			t.Errorf("ESCAPED: %s: ssh-add -l reached the agent:\n%s", what, out)
		}
	}
}
