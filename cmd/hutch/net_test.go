package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hutch-sandbox/hutch/internal/testenv"
)

// hostServer listens on the host's 127.0.0.1 and greets each connection.
func hostServer(t *testing.T) (port string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from the host\n")
			c.Close()
		}
	}()
	_, port, _ = net.SplitHostPort(l.Addr().String())
	return port
}

func runOut(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if !errorsAs(err, &ee) {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
		}
	}
	return string(out)
}

func TestNetNone(t *testing.T) {
	testenv.RequireUserNS(t)
	port := hostServer(t)
	out := runOut(t, probeCmd(t, "run", "--", "./probe", "-want", "ECONNREFUSED", "get", "127.0.0.1:"+port))
	if !strings.HasPrefix(out, "blocked: get: ECONNREFUSED") {
		t.Errorf("host loopback reachable with network none:\n%s", out)
	}
	out = runOut(t, hutchCmd(t, "run", "--", "ls", "/sys/class/net"))
	if strings.TrimSpace(out) != "lo" {
		t.Errorf("want only lo, got %q", out)
	}
}

func TestNetProxy(t *testing.T) {
	testenv.RequireUserNS(t)
	curl := testenv.RequireProgram(t, "curl")
	_ = curl
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "plain hello %s", r.URL.Path)
	}))
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls hello %s", r.URL.Path)
	}))
	defer tlsSrv.Close()
	_, pport, _ := net.SplitHostPort(plain.Listener.Addr().String())
	_, tport, _ := net.SplitHostPort(tlsSrv.Listener.Addr().String())
	report := filepath.Join(t.TempDir(), "report.json")

	script := strings.Join([]string{
		"curl -sS -m 10 http://allowed.test:" + pport + "/pkg; echo",
		"curl -sS -k -m 10 https://allowed.test:" + tport + "/secure; echo",
		"curl -sS -m 10 -o /dev/null -w 'denied=%{http_code}\\n' http://denied.test/",
		// The same host on 443: one entry in the suggested allow line.
		"curl -sS -k -m 10 -o /dev/null https://denied.test/ 2>/dev/null",
		"curl -sS -m 10 -o /dev/null -w 'wrongport=%{http_code}\\n' http://allowed.test:1/",
		"./probe -want ECONNREFUSED get 127.0.0.1:" + pport,
	}, "; ")
	// The test's name points at this machine's loopback, which the proxy
	// refuses unless network.host_loopback says otherwise, as for a real
	// DNS answer: here it does, and below it does not.
	cmd := probeCmd(t, "run", "--network", "proxy", "--host-loopback", "--allow", "allowed.test:"+pport, "--allow", "allowed.test:"+tport,
		"--report", report, "--", "sh", "-c", script)
	cmd.Env = append(cmd.Env, "HUTCH_PROXY_RESOLVE=allowed.test=127.0.0.1")
	out := runOut(t, cmd)
	for _, want := range []string{"plain hello /pkg", "tls hello /secure", "denied=403", "wrongport=403", "blocked: get: ECONNREFUSED", "hutch: the network proxy blocked 3 destination(s)", `allow = ["denied.test", "allowed.test:1"]`,
		"hutch: hint: to allow them for this run: hutch run --allow"} {
		if !strings.Contains(out, want) && !strings.Contains(out, strings.Replace(want, `"denied.test", "allowed.test:1"`, `"allowed.test:1", "denied.test"`, 1)) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	data, err := os.ReadFile(report)
	if err != nil || !strings.Contains(string(data), `"host": "denied.test"`) {
		t.Errorf("report %s: %v\n%s", report, err, data)
	}

	// Without host_loopback the same allowed name is refused: the test's
	// resolver goes through the loopback refusal production runs.
	cmd = probeCmd(t, "run", "--network", "proxy", "--allow", "allowed.test:"+pport, "--", "sh", "-c",
		"curl -sS -m 10 -o /dev/null -w 'loopback=%{http_code}\\n' http://allowed.test:"+pport+"/pkg")
	cmd.Env = append(cmd.Env, "HUTCH_PROXY_RESOLVE=allowed.test=127.0.0.1")
	if out := runOut(t, cmd); !strings.Contains(out, "loopback=403") {
		t.Errorf("an allowed name resolving to the host's loopback: want 403, got:\n%s", out)
	}
}

func TestNetSlirp4netnsHostLoopback(t *testing.T) {
	testenv.RequireUserNS(t)
	testenv.RequireProgram(t, "slirp4netns")
	port := hostServer(t)
	// slirp4netns --disable-host-loopback answers with ICMP net unreachable.
	out := runOut(t, probeCmd(t, "run", "--network", "slirp4netns", "--", "./probe", "-want", "ENETUNREACH", "get", "10.0.2.2:"+port))
	if !strings.HasPrefix(out, "blocked: get: ENETUNREACH") {
		t.Errorf("host loopback reachable through 10.0.2.2 without host_loopback:\n%s", out)
	}
	out = runOut(t, probeCmd(t, "run", "--network", "slirp4netns", "--host-loopback", "--", "./probe", "-want", "ok", "get", "10.0.2.2:"+port))
	if !strings.Contains(out, "got: hello from the host") {
		t.Errorf("host loopback not reachable with host_loopback:\n%s", out)
	}
	out = runOut(t, hutchCmd(t, "run", "--network", "slirp4netns", "--", "sh", "-c", "cat /etc/resolv.conf; ls /sys/class/net"))
	if !strings.Contains(out, "nameserver 10.0.2.3") || !strings.Contains(out, "tap0") {
		t.Errorf("slirp4netns sandbox: %s", out)
	}
}

// TestNetPastaHostLoopback: with host_loopback, pasta maps the gateway
// address to the host's loopback. Without it hutch passes --no-map-gw, and
// then the gateway address leads off this machine, which tests may not
// send traffic to: that half is covered by the flags pasta gets
// (TestPlanGolden) and by the default loopback isolation below.
func TestNetPastaHostLoopback(t *testing.T) {
	testenv.RequireUserNS(t)
	testenv.RequireProgram(t, "pasta")
	testenv.RequireProgram(t, "ip")
	port := hostServer(t)
	out := runOut(t, probeCmd(t, "run", "--network", "pasta", "--host-loopback", "--", "sh", "-c",
		`./probe -want ok get "$(ip route | awk '/^default/ {print $3; exit}'):`+port+`"`))
	if !strings.Contains(out, "got: hello from the host") {
		t.Errorf("host loopback not reachable through pasta's gateway with host_loopback:\n%s", out)
	}
	out = runOut(t, probeCmd(t, "run", "--network", "pasta", "--", "./probe", "-want", "ECONNREFUSED", "get", "127.0.0.1:"+port))
	if !strings.HasPrefix(out, "blocked: get: ECONNREFUSED") {
		t.Errorf("host loopback reachable through pasta:\n%s", out)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// TestNetPublish: a server inside, published with -p, is reachable from
// the host in every mode but host.
func TestNetPublish(t *testing.T) {
	testenv.RequireUserNS(t)
	modes := []string{"none", "proxy", "slirp4netns", "pasta"}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			if mode == "slirp4netns" || mode == "pasta" {
				testenv.RequireProgram(t, mode)
			}
			hp := freePort(t)
			serveInside(t, "run", "--network", mode, "-p", hp+":8000", "--", "./probe", "serve", "127.0.0.1:8000")
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+hp, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, _ := io.ReadAll(c)
			c.Close()
			if string(got) != "hello from the sandbox\n" {
				t.Errorf("published port %s said %q", hp, got)
			}
		})
	}
}

func TestNetPortTaken(t *testing.T) {
	testenv.RequireUserNS(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	out := runOut(t, hutchCmd(t, "run", "-p", port+":80", "--", "true"))
	for _, want := range []string{"hutch: error: publishing port 127.0.0.1:" + port, "address already in use", "hutch: hint: another program holds"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestNetKill9NoHelperLeft: kill -9 of hutch takes slirp4netns and pasta
// with it.
func TestNetKill9NoHelperLeft(t *testing.T) {
	testenv.RequireUserNS(t)
	for _, mode := range []string{"slirp4netns", "pasta"} {
		t.Run(mode, func(t *testing.T) {
			testenv.RequireProgram(t, mode)
			cmd := hutchCmd(t, "run", "--network", mode, "--", "sh", "-c", "echo ready; sleep 1000")
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("sandbox did not start: %q", line)
			}
			// pasta re-executes itself as passt or passt.avx2.
			helpers := childrenNamed(cmd.Process.Pid, map[string]string{"slirp4netns": "slirp4netns", "pasta": "pas"}[mode])
			if len(helpers) == 0 {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no %s child of hutch found", mode)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			deadline := time.Now().Add(10 * time.Second)
			for {
				alive := 0
				for _, pid := range helpers {
					if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(st), ") Z ") {
						alive++
					}
				}
				if alive == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s outlived kill -9 of hutch: %v", mode, helpers)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// childrenNamed returns the pids of ppid's children whose command starts
// with name.
func childrenNamed(ppid int, name string) []int {
	var out []int
	for _, pid := range allPids() {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(st)
		i := strings.LastIndex(s, ")")
		if i < 0 || !strings.Contains(s[:i], "("+name) {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

// TestNetBuiltinProfileProxy: the npm built-in lets the registry through the
// proxy and nothing else. The registry's name is pointed at this machine's
// loopback, where nothing listens on 443, so an allowed CONNECT ends in 502
// (the proxy tried) and a refused one in 403.
func TestNetBuiltinProfileProxy(t *testing.T) {
	testenv.RequireUserNS(t)
	testenv.RequireProgram(t, "curl")
	cmd := hutchCmd(t, "run", "--profile", "npm", "--host-loopback", "--", "sh", "-c",
		"echo proxy=$HTTPS_PROXY; curl -sS -m 10 https://registry.npmjs.org/ 2>&1; curl -sS -m 10 https://evil.example.com/ 2>&1; true")
	cmd.Env = append(cmd.Env, "HUTCH_PROXY_RESOLVE=registry.npmjs.org=127.0.0.1")
	out := runOut(t, cmd)
	for _, want := range []string{"proxy=http://127.0.0.1:3128", "CONNECT tunnel failed, response 502", "CONNECT tunnel failed, response 403", "evil.example.com:443"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestNetPublishUDP: a published UDP port reaches a server inside, and
// its replies come back to each client, in every network mode.
func TestNetPublishUDP(t *testing.T) {
	testenv.RequireUserNS(t)
	for _, mode := range []string{"none", "proxy", "slirp4netns", "pasta"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "slirp4netns" || mode == "pasta" {
				testenv.RequireProgram(t, mode)
			}
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			_, hp, _ := net.SplitHostPort(pc.LocalAddr().String())
			pc.Close()
			serveInside(t, "run", "--network", mode, "-p", hp+":5353/udp", "--", "./probe", "serve-udp", "127.0.0.1:5353")
			// Two clients, each answered on its own address.
			for _, msg := range []string{"ping one", "ping two"} {
				c, err := net.Dial("udp", "127.0.0.1:"+hp)
				if err != nil {
					t.Fatal(err)
				}
				c.Write([]byte(msg))
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				b := make([]byte, 100)
				n, err := c.Read(b)
				c.Close()
				if err != nil || string(b[:n]) != "echo: "+msg {
					t.Errorf("published UDP port %s answered %q, %v", hp, b[:n], err)
				}
			}
		})
	}
}

// serveInside starts hutch ARGS running the probe as a server, waits until
// it says it listens, and stops it when the test ends.
func serveInside(t *testing.T, args ...string) {
	t.Helper()
	cmd := probeCmd(t, args...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "listening\n" {
		t.Fatalf("server inside did not start: %q", line)
	}
}

// TestNetProxyHintNamesProject: with a hutch.toml in the project, the
// suggested allow line is for that file, by its name.
func TestNetProxyHintNamesProject(t *testing.T) {
	testenv.RequireUserNS(t)
	cmd := probeCmd(t, "run", "--trust", "--", "curl", "-sS", "-m", "10", "-o", "/dev/null", "http://denied.test/")
	if err := os.WriteFile(filepath.Join(cmd.Dir, "hutch.toml"), []byte("[network]\nmode = \"proxy\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := cmd.CombinedOutput()
	for _, want := range []string{"hutch: hint: to allow them, add to hutch.toml:", `allow = ["denied.test"]`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "--allow") {
		t.Errorf("with a hutch.toml, the hint names the file, not --allow:\n%s", out)
	}
}
