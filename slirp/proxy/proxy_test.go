package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestParseAllowAndMatch(t *testing.T) {
	rules, err := ParseAllow([]string{"registry.npmjs.org", "*.pythonhosted.org", "Proxy.Golang.org:8443"})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Rules: rules}
	tests := []struct {
		host string
		port int
		ok   bool
	}{
		{"registry.npmjs.org", 443, true},
		{"registry.npmjs.org", 80, true},
		{"registry.npmjs.org", 22, false},
		{"evil-registry.npmjs.org", 443, false},
		{"npmjs.org", 443, false},
		{"files.pythonhosted.org", 443, true},
		{"a.b.pythonhosted.org", 443, true},
		{"pythonhosted.org", 443, false},
		{"xpythonhosted.org", 443, false},
		{"proxy.golang.org", 8443, true},
		{"proxy.golang.org", 443, false},
	}
	for _, tt := range tests {
		if got := s.check(tt.host, tt.port) == ""; got != tt.ok {
			t.Errorf("%s:%d allowed=%v, want %v", tt.host, tt.port, got, tt.ok)
		}
	}
	for _, bad := range []string{"", "http://x.org", "x.org:0", "x.org:99999", "a b", "*.", "x.org:port"} {
		if _, err := ParseAllow([]string{bad}); err == nil {
			t.Errorf("ParseAllow(%q): want an error", bad)
		}
	}
}

// TestProxyEndToEnd: a plain request and a CONNECT tunnel to an allowed
// name reach a local server; a denied name gets 403 and is reported; an
// allowed name that resolves to loopback through DNS is refused.
func TestProxyEndToEnd(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s %s", r.Host, r.URL.Path)
	}))
	defer upstream.Close()
	_, port, _ := net.SplitHostPort(upstream.Listener.Addr().String())

	rules, _ := ParseAllow([]string{"allowed.test:" + port, "localhost:" + port})
	// allowed.test resolves to a documentation address (not loopback, so
	// the proxy's refusals pass it as they would a real one); the dialer
	// takes that address to the local server. Nothing leaves the machine.
	s := &Server{Rules: rules, Resolve: map[string]string{"allowed.test": "192.0.2.1"},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if h, p, _ := net.SplitHostPort(addr); h == "192.0.2.1" {
				addr = net.JoinHostPort("127.0.0.1", p)
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go s.Serve(l)
	proxyURL, _ := url.Parse("http://" + l.Addr().String())
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}

	resp, err := client.Get("http://allowed.test:" + port + "/pkg")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "hello from allowed.test:"+port+" /pkg") {
		t.Errorf("plain request: %d %q", resp.StatusCode, body)
	}

	// CONNECT, then speak HTTP through the tunnel.
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "CONNECT allowed.test:%s HTTP/1.1\r\nHost: allowed.test:%s\r\n\r\nGET /tunnel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", port, port)
	out, _ := io.ReadAll(bufio.NewReader(c))
	c.Close()
	if !strings.HasPrefix(string(out), "HTTP/1.1 200 Connection established") || !strings.Contains(string(out), "hello from x /tunnel") {
		t.Errorf("CONNECT: %q", out)
	}

	resp, err = client.Get("http://denied.test/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), `add "denied.test" to network.allow`) {
		t.Errorf("denied: %d %q", resp.StatusCode, body)
	}
	// localhost is allowed by name but resolves to loopback: refused.
	resp, err = client.Get("http://localhost:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("loopback through DNS: got %d, want 403", resp.StatusCode)
	}
	d := s.Denials()
	if len(d) != 2 || d[0].Host != "denied.test" && d[1].Host != "denied.test" {
		t.Errorf("denials: %+v", d)
	}
}

// TestProxyRefusesLocalAddresses: an allowed name that resolves to one of
// this host's own addresses (read from its interfaces), to a link-local or
// unique-local address, or to a private address on the host's own links
// is refused before anything is dialled, unless network.allow names that
// address. A name resolving to an outside address is dialled (the dialler
// records it and fails: no traffic leaves the test).
func TestProxyRefusesLocalAddresses(t *testing.T) {
	own, onLink := hostAddresses(t)
	answers := map[string]string{
		"own.test":          own.String(),
		"own-mapped.test":   "::ffff:" + own.String(),
		"link-local.test":   "169.254.169.254",
		"link-local6.test":  "fe80::1",
		"unique-local.test": "fd12:3456::1",
		"loopback.test":     "127.0.0.53",
		"zero.test":         "0.0.0.0",
		"outside.test":      "203.0.113.7",
	}
	if own.To4() == nil {
		answers["own-mapped.test"] = own.String()
	}
	if onLink != nil {
		answers["neighbour.test"] = onLink.String()
	}
	var rules []string
	for name := range answers {
		rules = append(rules, name)
	}
	parsed, err := ParseAllow(rules)
	if err != nil {
		t.Fatal(err)
	}
	dialled := map[string]bool{}
	s := &Server{
		Rules: parsed,
		LookupIP: func(_ context.Context, host string) ([]net.IP, error) {
			return []net.IP{net.ParseIP(answers[host])}, nil
		},
		Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
			h, _, _ := net.SplitHostPort(addr)
			dialled[h] = true
			return nil, fmt.Errorf("test: not dialling %s", addr)
		},
	}
	for name, ip := range answers {
		resp := connect(t, s, name)
		want := name == "outside.test"
		switch {
		case want && resp.StatusCode != http.StatusBadGateway:
			t.Errorf("%s (%s): status %d, want 502 from the test dialler", name, ip, resp.StatusCode)
		case !want && resp.StatusCode != http.StatusForbidden:
			t.Errorf("ESCAPED: %s (%s): status %d, want 403", name, ip, resp.StatusCode)
		case !want && dialled[net.ParseIP(ip).String()]:
			t.Errorf("ESCAPED: %s (%s) was dialled", name, ip)
		}
	}
	if !dialled["203.0.113.7"] {
		t.Errorf("the outside answer was not dialled: %v", dialled)
	}
	// The report says why.
	found := false
	for _, d := range s.Denials() {
		if d.Host == "own.test" && strings.Contains(d.Reason, "this host's own addresses") {
			found = true
		}
	}
	if !found {
		t.Errorf("no denial says own.test is the host's own address: %+v", s.Denials())
	}
	// network.allow naming the address itself lets a name reach it.
	if s.Rules, err = ParseAllow([]string{"own.test", own.String()}); err != nil {
		t.Fatal(err)
	}
	if resp := connect(t, s, "own.test"); resp.StatusCode != http.StatusBadGateway || !dialled[own.String()] {
		t.Errorf("own.test with %s allowed: status %d, dialled %v; want it dialled", own, resp.StatusCode, dialled)
	}
}

// hostAddresses returns one of this host's non-loopback interface
// addresses, and a private address on one of its links other than its
// own (nil when it has no private network).
func hostAddresses(t *testing.T) (own, onLink net.IP) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() {
			continue
		}
		if own == nil || own.To4() == nil && n.IP.To4() != nil {
			own = n.IP
		}
		if v4 := n.IP.To4(); v4 != nil && v4.IsPrivate() && onLink == nil {
			other := append(net.IP(nil), v4...)
			other[3] ^= 1 // a neighbour on the same network
			if n.Contains(other) {
				onLink = other
			}
		}
	}
	if own == nil {
		t.Fatal("this host has no non-loopback address to test with")
	}
	return own, onLink
}

// connect sends CONNECT name:443 through s and returns its response.
func connect(t *testing.T, s *Server, name string) *http.Response {
	client, server := net.Pipe()
	go s.handle(server)
	defer client.Close()
	fmt.Fprintf(client, "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n", name, name)
	resp, err := http.ReadResponse(bufio.NewReader(client), nil)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	io.Copy(io.Discard, resp.Body)
	return resp
}
