package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hutch-sandbox/hutch/internal/testenv"
)

// The programs issue 16 names, which ignore HTTP(S)_PROXY, reach allowed
// servers on the host's loopback through mode proxy's redirect, by name:
// hutch's DNS inside answers the name, the proxy dials it on the host.

// startServer starts a test server and returns once a line of its output
// contains ready; it is killed when the test ends.
func startServer(t *testing.T, cmd *exec.Cmd, ready string) {
	t.Helper()
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); w.Close() })
	var log strings.Builder
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), ready) {
			go io.Copy(io.Discard, r)
			return
		}
	}
	t.Fatalf("%s never said %q:\n%s", cmd.Path, ready, log.String())
}

// TestNetTransparentNode: Node's built-in fetch, which reads no proxy
// variable, in mode proxy.
func TestNetTransparentNode(t *testing.T) {
	testenv.RequireUserNS(t)
	testenv.RequireProgram(t, "node")
	_, pp, _ := testServers(t)
	cmd := hutchCmd(t, "run", "--network", "proxy", "--host-loopback", "--allow", "allowed.test:"+pp, "--", "node", "-e",
		`fetch("http://allowed.test:`+pp+`/node").then(r => r.text()).then(t => console.log("fetched:", t), e => console.log("failed:", e.cause || e))`)
	cmd.Env = append(cmd.Env, "HUTCH_PROXY_RESOLVE=allowed.test=127.0.0.1")
	if out := runOut(t, cmd); !strings.Contains(out, "fetched: plain hello /node") {
		t.Errorf("node fetch through the transparent proxy:\n%s", out)
	}
}

// TestNetTransparentGitSSH: git clone over ssh from an sshd the test
// starts on the host's loopback, with allow = ["git.test:PORT"] and no
// proxy settings.
func TestNetTransparentGitSSH(t *testing.T) {
	testenv.RequireUserNS(t)
	testenv.RequireProgram(t, "git")
	testenv.RequireProgram(t, "ssh")
	keygen := testenv.RequireProgram(t, "ssh-keygen")
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		testenv.Skip(t, "sshd is not installed (openssh-server)")
	}
	dir := t.TempDir()
	for _, k := range []string{"host", "client"} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "client.pub"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	repo := filepath.Join(dir, "repo.git")
	for _, args := range [][]string{
		{"init", "-q", "--bare", repo},
		{"-C", repo, "symbolic-ref", "HEAD", "refs/heads/main"},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	work := filepath.Join(dir, "work")
	script := "git init -q -b main " + work + " && cd " + work + " && echo from-the-host > README && git add README && " +
		"git -c user.name=t -c user.email=t@t commit -qm one && git push -q " + repo + " main"
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	port := freePort(t)
	conf := filepath.Join(dir, "sshd_config")
	os.WriteFile(conf, []byte("ListenAddress 127.0.0.1\nPort "+port+"\nHostKey "+filepath.Join(dir, "host")+
		"\nAuthorizedKeysFile "+filepath.Join(dir, "authorized_keys")+"\nStrictModes no\nUsePAM no\nPidFile none\n"), 0o600)
	startServer(t, exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", conf), "Server listening on 127.0.0.1")

	cmd := hutchCmd(t, "run", "--network", "proxy", "--host-loopback", "--allow", "git.test:"+port, "--", "sh", "-c",
		"GIT_SSH_COMMAND='ssh -i ./key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR' "+
			"git clone -q ssh://"+os.Getenv("USER")+"@git.test:"+port+repo+" clone && cat clone/README")
	cmd.Env = append(cmd.Env, "HUTCH_PROXY_RESOLVE=git.test=127.0.0.1")
	key, err := os.ReadFile(filepath.Join(dir, "client"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cmd.Dir, "key"), key, 0o600) // the project dir is the sandbox's cwd
	if out := runOut(t, cmd); !strings.Contains(out, "from-the-host") {
		t.Errorf("git clone over ssh through the transparent proxy:\n%s", out)
	}
}

// TestNetTransparentPostgres: psql to a Postgres the test starts (initdb
// into a temporary directory, as the test user), allow = ["db.test:PORT"].
func TestNetTransparentPostgres(t *testing.T) {
	testenv.RequireUserNS(t)
	testenv.RequireProgram(t, "psql")
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		testenv.Skip(t, "Postgres's server is not installed (postgresql)")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "tester", "--auth=trust", "--no-locale", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := freePort(t)
	startServer(t, exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-h", "127.0.0.1", "-p", port),
		"database system is ready to accept connections")
	cmd := hutchCmd(t, "run", "--network", "proxy", "--host-loopback", "--allow", "db.test:"+port, "--", "sh", "-c",
		"psql -h db.test -p "+port+" -U tester -d postgres -Atc 'select 40 + 2' && "+
			"psql -h db.test -p "+port+" -U tester -d postgres -Atc \"select 'through ' || inet_client_addr()\"")
	cmd.Env = append(cmd.Env, "HUTCH_PROXY_RESOLVE=db.test=127.0.0.1")
	if out := runOut(t, cmd); !strings.Contains(out, "42\n") || !strings.Contains(out, "through 127.0.0.1") {
		t.Errorf("psql through the transparent proxy:\n%s", out)
	}
}
