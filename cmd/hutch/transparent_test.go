package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hutch-sandbox/hutch/internal/testenv"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
)

// noProxyEnv clears the proxy variables, so that what follows is a client
// that knows nothing of hutch's proxy.
const noProxyEnv = "env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy -u NO_PROXY -u no_proxy "

// testServers starts a greeter (speaks first), a plain HTTP and a TLS
// server on the host's 127.0.0.1 and returns their ports.
func testServers(t *testing.T) (greet, plain, tls string) {
	t.Helper()
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "plain hello %s host=%s", r.URL.Path, r.Host)
	}))
	t.Cleanup(p.Close)
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls hello %s", r.URL.Path)
	}))
	t.Cleanup(s.Close)
	_, plain, _ = net.SplitHostPort(p.Listener.Addr().String())
	_, tls, _ = net.SplitHostPort(s.Listener.Addr().String())
	return hostServer(t), plain, tls
}

// TestNetTransparent: in mode proxy, clients that ignore the proxy
// variables reach allowed servers through the redirect rules, and
// everything else is refused on the wire and reported with its protocol:
// a port not allowed for the name, an HTTP Host or a TLS SNI naming
// another host than the address was resolved for, a bare IP, UDP. Loopback
// inside is not redirected; the command cannot remove the rules; DNS sent
// to any server lands at hutch's.
func TestNetTransparent(t *testing.T) {
	testenv.RequireUserNS(t)
	testenv.RequireProgram(t, "curl")
	testenv.RequireProgram(t, "python3")
	testenv.RequireProgram(t, "busybox")
	gp, pp, tp := testServers(t)
	other := hostServer(t) // a server on a port allow does not name
	report := filepath.Join(t.TempDir(), "report.json")
	script := strings.Join([]string{
		"./probe -want ok greet allowed.test:" + gp,
		noProxyEnv + "curl -sS -m 10 http://allowed.test:" + pp + "/pkg; echo",
		noProxyEnv + "curl -sS -k -m 10 https://allowed.test:" + tp + "/secure; echo",
		"./probe -want ok tls-sni allowed.test:" + tp + " allowed.test",
		// Refused on the wire:
		"./probe -want ECONNRESET greet allowed.test:" + other,
		noProxyEnv + "curl -sS -m 10 -o /dev/null -w 'hostheader=%{http_code}\\n' -H 'Host: denied.test' http://allowed.test:" + pp + "/",
		"./probe -want ECONNRESET tls-sni allowed.test:" + tp + " denied.test",
		// Fronting with an allowed name: other.test's address (allowed
		// on another port only) claiming allowed.test.
		"./probe -want ECONNRESET tls-sni other.test:" + tp + " allowed.test",
		noProxyEnv + "curl -sS -m 10 -o /dev/null -w 'fronted=%{http_code}\\n' -H 'Host: allowed.test:" + pp + "' http://other.test:" + pp + "/",
		"./probe -want ECONNRESET greet 192.0.2.1:80",
		"./probe -want EPERM udp-send 192.0.2.1:9999",
		"./probe -want EPERM udp-send allowed.test:5353",
		// DNS to any server is answered by hutch's.
		"busybox nslookup allowed.test 192.0.2.1 | grep -o 'Address: 198.18.0.1'",
		// A service inside on loopback is reached directly.
		"mkfifo ready; python3 -c 'import socket;s=socket.socket();s.bind((\"127.0.0.1\",7000));s.listen();print(\"up\",flush=True);c,_=s.accept();c.send(b\"inside\\n\")' >ready & read r <ready",
		"./probe -want ok greet 127.0.0.1:7000",
	}, "; ")
	cmd := probeCmd(t, "run", "--network", "proxy", "--host-loopback",
		"--allow", "allowed.test:"+gp, "--allow", "allowed.test:"+pp, "--allow", "allowed.test:"+tp, "--allow", "other.test:"+gp,
		"--report", report, "--", "sh", "-c", script)
	cmd.Env = append(cmd.Env, "HUTCH_PROXY_RESOLVE=allowed.test=127.0.0.1,denied.test=127.0.0.1,other.test=127.0.0.1")
	out := runOut(t, cmd)
	t.Logf("%s", out)
	for _, want := range []string{
		"ok: greet", "got: hello from the host", "plain hello /pkg host=allowed.test:" + pp, "tls hello /secure", "ok: tls-sni",
		"blocked: greet: ECONNRESET", "hostheader=403", "blocked: tls-sni: ECONNRESET", "blocked: udp-send: EPERM",
		"Address: 198.18.0.1", "got: inside",
		"hutch:   tcp  allowed.test:" + other + "  (", "hutch:   http  denied.test:" + pp + "  (", "hutch:   tls  denied.test:" + tp + "  (",
		"hutch:   tcp  192.0.2.1:80  (", "hutch:   udp  192.0.2.1:9999  (", "hutch:   udp  198.18.0.1:5353 (allowed.test)  (",
		"the HTTP Host header names denied.test, but 198.18.0.1 is the address of allowed.test",
		"the TLS server name (SNI) names denied.test",
		"fronted=403", "the TLS server name (SNI) names allowed.test, but 198.18.0.2 is the address of other.test",
		"the HTTP Host header names allowed.test, but 198.18.0.2 is the address of other.test",
		"192.0.2.1 is a bare IP address",
		"--allow allowed.test:" + other + " ", // the hint; UDP has no allow entry to suggest (below)
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"ESCAPED", "NOT-TRIED", "UNEXPECTED", ":9999\"", ":5353\""} {
		if strings.Contains(out, bad) {
			t.Errorf("%s:\n%s", bad, out)
		}
	}
	// Not even root inside may take the rules away: init dropped
	// CAP_NET_ADMIN before the command ran.
	out = runOut(t, probeCmd(t, "run", "--network", "proxy", "--user", "root", "--", "./probe", "-want", "EPERM", "nft-delete"))
	if !strings.HasPrefix(out, "blocked: nft-delete: EPERM") {
		t.Errorf("root inside deleting the redirect rules: want EPERM:\n%s", out)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct{ Blocked []proxy.Denial }
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	protos := map[string]bool{}
	for _, d := range rep.Blocked {
		protos[d.Proto] = true
	}
	for _, p := range []string{"tcp", "http", "tls", "udp"} {
		if !protos[p] {
			t.Errorf("report lacks a %s denial:\n%s", p, data)
		}
	}
}

// TestNetTransparentFallback: with the redirect rules disabled (the test
// hook stands for a kernel without nftables NAT in a user namespace), mode
// proxy is the explicit proxy alone, as before: a client that honours the
// proxy variables gets through, one that ignores them cannot leave, and
// hutch says so once.
func TestNetTransparentFallback(t *testing.T) {
	testenv.RequireUserNS(t)
	testenv.RequireProgram(t, "curl")
	gp, pp, _ := testServers(t)
	rt := t.TempDir() // a state root of its own: the note is once per boot and root
	run := func() string {
		cmd := probeCmd(t, "run", "--network", "proxy", "--host-loopback", "--allow", "allowed.test:"+gp, "--allow", "allowed.test:"+pp, "--", "sh", "-c",
			"curl -sS -m 10 http://allowed.test:"+pp+"/pkg; echo; ./probe -want ENETUNREACH greet 192.0.2.1:"+gp)
		cmd.Env = append(cmd.Env, "HUTCH_PROXY_RESOLVE=allowed.test=127.0.0.1", "HUTCH_TEST_NO_REDIRECT=1", "XDG_RUNTIME_DIR="+rt)
		return runOut(t, cmd)
	}
	out := run()
	for _, want := range []string{"plain hello /pkg", "blocked: greet: ENETUNREACH", `hutch: warning: network = "proxy" is not transparent here: disabled by the test binary's hook`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if out := run(); strings.Contains(out, "not transparent") {
		t.Errorf("the fallback is said more than once:\n%s", out)
	}
}
