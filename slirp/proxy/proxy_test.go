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
