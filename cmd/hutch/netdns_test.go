package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hutch-sandbox/hutch/internal/testenv"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
)

// dnsCmd is hutchCmd with the DNS test scripts in the project.
func dnsCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	testenv.RequireProgram(t, "python3")
	cmd := hutchCmd(t, args...)
	for _, f := range []string{"dnsq.py", "hostile.py"} {
		data, err := os.ReadFile(filepath.Join("testdata", "dns", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cmd.Dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cmd
}

// TestNetProxyDNS: in mode proxy hutch answers DNS inside, over UDP and
// TCP: an allowed name (pointed at the host's loopback by the test hook,
// with host_loopback) gets a made-up address of 198.18.0.0/15, the same
// each time; a denied name gets NXDOMAIN at once (ESCAPED: an address) and
// is reported with protocol dns, at exit and in --report.
func TestNetProxyDNS(t *testing.T) {
	testenv.RequireUserNS(t)
	report := filepath.Join(t.TempDir(), "report.json")
	script := strings.Join([]string{
		"python3 dnsq.py udp ok.test A", "python3 dnsq.py tcp ok.test A",
		"python3 dnsq.py udp ok.test AAAA", "python3 dnsq.py udp ok.test MX",
		"python3 dnsq.py udp denied.test A", "python3 dnsq.py tcp denied.test A",
		"getent hosts ok.test", "getent hosts denied.test || echo getent-denied=$?",
		"grep nameserver /etc/resolv.conf",
	}, "; ")
	cmd := dnsCmd(t, "run", "--network", "proxy", "--host-loopback", "--allow", "ok.test:8080", "--report", report, "--", "sh", "-c", script)
	// denied.test resolves on the host too: only the allowlist keeps it out.
	cmd.Env = append(cmd.Env, "HUTCH_PROXY_RESOLVE=ok.test=127.0.0.1,denied.test=127.0.0.1")
	out := runOut(t, cmd)
	for _, want := range []string{
		"udp ok.test A rcode=0 ancount=1 addrs=198.18.0.1\n", "tcp ok.test A rcode=0 ancount=1 addrs=198.18.0.1\n",
		"udp ok.test AAAA rcode=0 ancount=0 addrs=\n", "udp ok.test MX rcode=0 ancount=0 addrs=\n",
		"udp denied.test A rcode=3 ancount=0 addrs=\n", "tcp denied.test A rcode=3 ancount=0 addrs=\n",
		"198.18.0.1      ok.test", "getent-denied=2", "nameserver 127.0.0.1",
		"hutch:   dns  denied.test  (", "no network.allow rule names denied.test",
		`allow = ["denied.test"]`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "denied.test A rcode=0") {
		t.Errorf("ESCAPED: a denied name resolved inside:\n%s", out)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Blocked []proxy.Denial
		Allow   []string
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Blocked) != 1 || rep.Blocked[0].Host != "denied.test" || rep.Blocked[0].Proto != "dns" || len(rep.Allow) != 1 || rep.Allow[0] != "denied.test" {
		t.Errorf("report: %s", data)
	}

	// Without host_loopback the same allowed name is no such host: its
	// answer is the host's loopback, which the proxy refuses.
	cmd = dnsCmd(t, "run", "--network", "proxy", "--allow", "ok.test", "--", "python3", "dnsq.py", "udp", "ok.test")
	cmd.Env = append(cmd.Env, "HUTCH_PROXY_RESOLVE=ok.test=127.0.0.1")
	if out := runOut(t, cmd); !strings.Contains(out, "rcode=3") || !strings.Contains(out, "the host's own loopback") {
		t.Errorf("ESCAPED: without host_loopback, a name resolving to the host's loopback:\n%s", out)
	}
}

// TestNetDNSHostile: hostile DNS from inside (garbage, compression loops,
// oversized messages, a flood of TCP connections) gets no answer or a
// closed connection, in bounded numbers, and the supervisor still serves.
func TestNetDNSHostile(t *testing.T) {
	testenv.RequireUserNS(t)
	for _, mode := range []string{"proxy", "none"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"run", "--network", mode}
			if mode == "proxy" {
				args = append(args, "--host-loopback", "--allow", "ok.test")
			}
			cmd := dnsCmd(t, append(args, "--", "python3", "hostile.py")...)
			cmd.Env = append(cmd.Env, "HUTCH_PROXY_RESOLVE=ok.test=127.0.0.1")
			out := runOut(t, cmd)
			for _, want := range []string{"blocked: udp hostile packets", "blocked: tcp oversized message", "blocked: tcp compression loop",
				"blocked: tcp flood", "ok: tcp served after the flood"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "ESCAPED") {
				t.Errorf("ESCAPED:\n%s", out)
			}
		})
	}
}

// TestNpmOffline: npm install with a dependency fails at once without the
// network, in mode none (no such host, and npm_config_fetch_retries=0:
// npm retries even that, for 72 s) and in mode proxy (the registry is not
// allowed: 403 from the proxy, which npm does not retry), instead of
// retrying for minutes (5 min 52 s before hutch answered DNS).
// The timeout is a bound on a hang, not a measurement: hutch ends the
// sandbox with status 124 if npm is still trying.
func TestNpmOffline(t *testing.T) {
	testenv.RequireUserNS(t)
	testenv.RequireProgram(t, "npm")
	for _, mode := range []string{"none", "proxy"} {
		t.Run(mode, func(t *testing.T) {
			cmd := hutchCmd(t, "run", "--network", mode, "--timeout", "30s", "--", "npm", "install", "--no-audit", "--no-fund")
			pkg := `{"name": "offline-test", "version": "1.0.0", "dependencies": {"left-pad": "1.3.0"}}`
			if err := os.WriteFile(filepath.Join(cmd.Dir, "package.json"), []byte(pkg), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errorsAs(err, &ee) || ee.ExitCode() == 0 || ee.ExitCode() == 124 {
				t.Fatalf("npm install: %v (want a failure of npm's own, not the timeout's 124):\n%s", err, out)
			}
			if strings.Contains(string(out), "EAI_AGAIN") {
				t.Errorf("npm saw EAI_AGAIN (try again), which it retries:\n%s", out)
			}
			want := map[string]string{"none": "ENOTFOUND", "proxy": "403"}[mode]
			if !strings.Contains(string(out), want) {
				t.Errorf("npm's error lacks %s:\n%s", want, out)
			}
			hint := map[string]string{"none": "looked up registry.npmjs.org with the network off", "proxy": "registry.npmjs.org"}[mode]
			if !strings.Contains(string(out), hint) {
				t.Errorf("hutch's report lacks %q:\n%s", hint, out)
			}
		})
	}
}

// TestNetLearn: a learn run reaches three local names through the proxy,
// writes the [network] section that allows exactly them, each commented
// with what used it; a run with that profile succeeds, and the same run
// without it is refused. An existing file is kept unless
// --learn-overwrite; a project's hutch.toml cannot turn learn mode on
// without your approval (it reaches every host).
func TestNetLearn(t *testing.T) {
	testenv.RequireUserNS(t)
	testenv.RequireProgram(t, "curl")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s\n", r.Host)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	resolve := "HUTCH_PROXY_RESOLVE=one.test=127.0.0.1,two.test=127.0.0.1,three.test=127.0.0.1"
	script := "for h in one two two three; do curl -sS -m 10 http://$h.test:" + port + "/; done"
	learned := filepath.Join(t.TempDir(), "learned.toml")

	cmd := hutchCmd(t, "run", "--host-loopback", "--learn", learned, "--", "sh", "-c", script)
	cmd.Env = append(cmd.Env, resolve)
	out := runOut(t, cmd)
	for _, want := range []string{"hello one.test", "hello two.test", "hello three.test", "hutch: learn mode: wrote " + learned} {
		if !strings.Contains(out, want) {
			t.Errorf("learn run output lacks %q:\n%s", want, out)
		}
	}
	data, err := os.ReadFile(learned)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{"[network]\nmode = \"proxy\"\nhost_loopback = true  # as the learn run had it\nallow = [\n",
		fmt.Sprintf("  %-32s # http ×1\n", `"one.test:`+port+`",`),
		fmt.Sprintf("  %-32s # http ×1\n", `"three.test:`+port+`",`),
		fmt.Sprintf("  %-32s # http ×2\n", `"two.test:`+port+`",`),
		"only as good as the command you trusted to run once"} {
		if !strings.Contains(text, want) {
			t.Errorf("learned profile lacks %q:\n%s", want, text)
		}
	}

	// Run again with it (a profile by path, like any, needs approval:
	// --trust): allowed. Without it: refused.
	cmd = hutchCmd(t, "run", "--profile", learned, "--trust", "--", "sh", "-c", script)
	cmd.Env = append(cmd.Env, resolve)
	if out, err := cmd.CombinedOutput(); err != nil || strings.Count(string(out), "hello ") != 4 {
		t.Errorf("run with the learned profile: %v\n%s", err, out)
	}
	cmd = hutchCmd(t, "run", "--network", "proxy", "--host-loopback", "--", "sh", "-c", script)
	cmd.Env = append(cmd.Env, resolve)
	if out := runOut(t, cmd); strings.Contains(out, "hello ") || !strings.Contains(out, "blocked 3 destination(s)") {
		t.Errorf("ESCAPED: without the learned profile the names were reached:\n%s", out)
	}

	// The file exists now: kept, unless told.
	before, _ := os.ReadFile(learned)
	cmd = hutchCmd(t, "run", "--learn", learned, "--", "true")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "the file exists") || !strings.Contains(string(out), "--learn-overwrite") {
		t.Errorf("learn over an existing file: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(learned); string(after) != string(before) {
		t.Errorf("the existing file was changed")
	}
	cmd = hutchCmd(t, "run", "--learn", learned, "--learn-overwrite", "--", "true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("--learn-overwrite: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(learned); strings.Contains(string(after), "one.test") {
		t.Errorf("--learn-overwrite kept the old content:\n%s", after)
	}

	// The command plants a symlink at the name during the run, to have
	// hutch write through it: the file is not written, the link's target
	// untouched (ESCAPED: written).
	target := filepath.Join(t.TempDir(), "target")
	os.WriteFile(target, []byte("untouched\n"), 0o644)
	cmd = hutchCmd(t, "run", "--learn", "planted.toml", "--", "ln", "-s", target, "planted.toml")
	out = runOut(t, cmd)
	if data, _ := os.ReadFile(target); string(data) != "untouched\n" {
		t.Errorf("ESCAPED: the learn file was written through a planted symlink:\n%s\n%s", data, out)
	}
	if !strings.Contains(out, "appeared during the run") {
		t.Errorf("a file planted at the learn file's name: want it refused, got:\n%s", out)
	}

	// A project's profile asking for learn mode is refused without trust,
	// and nothing is written.
	cmd = hutchCmd(t, "run", "--", "sh", "-c", script)
	cmd.Env = append(cmd.Env, resolve)
	if err := os.WriteFile(filepath.Join(cmd.Dir, "hutch.toml"), []byte("[network]\nlearn = \"learned.toml\"\nhost_loopback = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = runOut(t, cmd)
	if strings.Contains(out, "hello ") || !strings.Contains(out, "network.learn \"learned.toml\": learn mode: every host is reachable") {
		t.Errorf("ESCAPED: an untrusted hutch.toml turned learn mode on:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "learned.toml")); err == nil {
		t.Errorf("an untrusted hutch.toml had hutch write its learn file")
	}
}
