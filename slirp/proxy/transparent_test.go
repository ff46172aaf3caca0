package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/hutch-sandbox/hutch/slirp/dns"
)

func TestParseAllowIP(t *testing.T) {
	for _, c := range []struct {
		in, prefix, err string
		port            int
	}{
		{in: "192.0.2.1", prefix: "192.0.2.1/32"},
		{in: "192.0.2.1:22", prefix: "192.0.2.1/32", port: 22},
		{in: "10.0.0.0/8", prefix: "10.0.0.0/8"},
		{in: "10.0.0.0/8:5432", prefix: "10.0.0.0/8", port: 5432},
		{in: "2001:db8::1", prefix: "2001:db8::1/128"},
		{in: "[2001:db8::/32]:443", prefix: "2001:db8::/32", port: 443},
		{in: "::ffff:192.0.2.1", prefix: "192.0.2.1/32"},
		{in: "10.1.0.0/8", err: "did you mean 10.0.0.0/8?"},
		{in: "10.0.0.0/33", err: "is not a network in ADDR/BITS form"},
		{in: "fe80::1%eth0", err: "zone"},
		{in: "::ffff:0.0.0.0/80", err: "wider than the IPv4 addresses"},
		{in: "example.com/8", err: "is not a network"},
	} {
		rules, err := ParseAllow([]string{c.in})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseAllow(%q) = %v, want an error with %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseAllow(%q): %v", c.in, err)
			continue
		}
		if r := rules[0]; r.Prefix.String() != c.prefix || r.Port != c.port || r.Wildcard {
			t.Errorf("ParseAllow(%q) = %+v, want prefix %s port %d", c.in, r, c.prefix, c.port)
		}
	}
}

// clientHello is what crypto/tls sends first for serverName.
func clientHello(t *testing.T, serverName string) []byte {
	t.Helper()
	a, b := net.Pipe()
	go func() {
		tls.Client(a, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}).Handshake()
		a.Close()
	}()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, rec); err != nil {
		t.Fatal(err)
	}
	b.Close()
	return append(hdr, rec...)
}

func TestClientHelloSNI(t *testing.T) {
	hello := clientHello(t, "Registry.Example.ORG")
	if got := clientHelloSNI(hello[5:]); got != "registry.example.org" {
		t.Errorf("SNI = %q, want registry.example.org", got)
	}
	// With an IP address, a client sends no server_name.
	if got := clientHelloSNI(clientHello(t, "192.0.2.1")[5:]); got != "" {
		t.Errorf("SNI of a hello to an IP = %q, want none", got)
	}
	// Every truncation is malformed, never a name or a panic.
	for n := 0; n < len(hello)-5; n++ {
		if got := clientHelloSNI(hello[5 : 5+n]); got != "" && n < len(hello)-5-100 {
			// The name sits early; a cut after it may still carry it,
			// but only whole.
			if got != "registry.example.org" {
				t.Errorf("truncated to %d: SNI %q", n, got)
			}
		}
	}
}

func FuzzClientHelloSNI(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if got := clientHelloSNI(b); got != "" && !validHost(got) {
			t.Errorf("SNI %q is not a host name", got)
		}
	})
}

// sniffed runs sniff on the server side of a loopback connection to which
// send writes.
func sniffed(t *testing.T, send func(c net.Conn)) (proto, name string, rest string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go send(c)
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	br := bufio.NewReaderSize(s, 5+maxRecord)
	proto, name = sniff(s, br)
	b, _ := br.Peek(br.Buffered())
	return proto, name, string(b)
}

func TestSniff(t *testing.T) {
	hello := clientHello(t, "a.test")
	for _, c := range []struct {
		what        string
		send        []string // written one after another
		proto, name string
	}{
		{"tls", []string{string(hello)}, "tls", "a.test"},
		{"tls in pieces", []string{string(hello[:3]), string(hello[3:40]), string(hello[40:])}, "tls", "a.test"},
		{"http", []string{"GET / HTTP/1.1\r\nHost: A.test:8080\r\n\r\n"}, "http", "a.test"},
		{"http a byte at a time", strings.Split("POST /x HTTP/1.1\r\nHost: b.test\r\n\r\n", ""), "http", "b.test"},
		{"http/1.0 without Host", []string{"GET / HTTP/1.0\r\n\r\n"}, "http", ""},
		{"ssh", []string{"SSH-2.0-OpenSSH_9.2\r\n"}, "tcp", ""},
		{"postgres", []string{"\x00\x00\x00\x08\x04\xd2\x16\x2f"}, "tcp", ""},
		{"server speaks first", nil, "tcp", ""},
	} {
		proto, name, rest := sniffed(t, func(conn net.Conn) {
			for _, p := range c.send {
				conn.Write([]byte(p))
			}
		})
		if proto != c.proto || name != c.name {
			t.Errorf("%s: sniff = %s %q, want %s %q", c.what, proto, name, c.proto, c.name)
		}
		if want := strings.Join(c.send, ""); !strings.HasPrefix(want, rest) {
			t.Errorf("%s: sniff consumed the stream: left %q", c.what, rest)
		}
	}
}

func judgeServer(t *testing.T, allow ...string) *Server {
	t.Helper()
	rules, err := ParseAllow(allow)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Rules: rules, Names: &dns.Table{}}
	s.Names.Record("a.test", []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("203.0.113.5")})
	s.Names.Record("cdn.test", []netip.Addr{netip.MustParseAddr("203.0.113.5")})
	s.Names.Record("b.test", []netip.Addr{netip.MustParseAddr("198.18.0.2")})
	return s
}

func TestJudge(t *testing.T) {
	s := judgeServer(t, "a.test", "a.test:22", "b.test:22", "10.0.0.0/8:5432", "2001:db8::/32")
	for _, c := range []struct {
		addr        string
		port        int
		proto, sni  string
		host, whyIn string // whyIn "" means allowed
	}{
		{"198.18.0.1", 22, "tcp", "", "a.test", ""},
		{"198.18.0.1", 23, "tcp", "", "a.test", "no network.allow rule matches a.test:23"},
		{"198.18.0.1", 443, "tls", "a.test", "a.test", ""},
		{"198.18.0.1", 443, "tls", "b.test", "b.test", "names b.test, but 198.18.0.1 is the address of a.test"},
		{"198.18.0.1", 443, "tls", "", "a.test", "is missing"},
		{"198.18.0.1", 80, "http", "a.test", "a.test", ""},
		{"198.18.0.1", 80, "http", "b.test", "b.test", "names b.test"},
		// Fronting: b.test's address, on a port allowed for a.test only,
		// claiming a.test. Allowed for a.test is not enough: the address
		// must be one a.test resolved to.
		{"198.18.0.2", 443, "tls", "a.test", "a.test", "names a.test, but 198.18.0.2 is the address of b.test"},
		{"198.18.0.2", 80, "http", "a.test", "a.test", "names a.test, but 198.18.0.2 is the address of b.test"},
		{"198.18.0.2", 443, "tcp", "", "b.test", "no network.allow rule matches b.test:443"},
		{"198.18.0.2", 22, "tcp", "", "b.test", ""},
		// A shared address: the SNI picks which name, and must be allowed.
		{"203.0.113.5", 443, "tls", "a.test", "a.test", ""},
		{"203.0.113.5", 443, "tls", "cdn.test", "cdn.test", "no network.allow rule matches cdn.test:443"},
		// The SNI names an allowed host, but no allowed name gave this
		// address: a bare IP.
		{"192.0.2.9", 443, "tls", "a.test", "192.0.2.9", "192.0.2.9 is a bare IP address"},
		{"192.0.2.9", 22, "tcp", "", "192.0.2.9", "bare IP"},
		{"10.1.2.3", 5432, "tcp", "", "10.1.2.3", ""},
		{"10.1.2.3", 5433, "tcp", "", "10.1.2.3", "bare IP"},
		{"2001:db8::7", 443, "tls", "", "2001:db8::7", ""},
		{"2001:db9::7", 443, "tls", "", "2001:db9::7", "bare IP"},
	} {
		host, why := s.judge(netip.MustParseAddr(c.addr), c.port, c.proto, c.sni)
		if host != c.host || c.whyIn == "" && why != "" || c.whyIn != "" && !strings.Contains(why, c.whyIn) {
			t.Errorf("judge(%s:%d %s %q) = %q, %q; want %q, %q", c.addr, c.port, c.proto, c.sni, host, why, c.host, c.whyIn)
		}
	}
}

// TestHandleRedirected: what is dialled for an allowed connection (a
// synthetic address by its name, resolved on the host; an allowed address
// as it is) and that the client's first bytes reach the server; a refused
// one is reset, counted and dials nothing.
func TestHandleRedirected(t *testing.T) {
	s := judgeServer(t, "a.test:22", "10.0.0.0/8:5432")
	s.Resolve = map[string]string{"a.test": "127.0.0.1"}
	s.AllowLoopback = true
	var dialled []string
	s.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialled = append(dialled, addr)
		a, b := net.Pipe()
		go func() {
			line, _ := bufio.NewReader(b).ReadString('\n')
			io.WriteString(b, "echo "+line)
			b.Close()
		}()
		return a, nil
	}
	for _, c := range []struct {
		dst, dial string
	}{
		{"198.18.0.1:22", "127.0.0.1:22"},
		{"10.9.8.7:5432", "10.9.8.7:5432"},
		{"192.0.2.1:22", ""},
	} {
		dialled = nil
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		cl, _ := net.Dial("tcp", l.Addr().String())
		sc, _ := l.Accept()
		l.Close()
		done := make(chan struct{})
		go func() { s.handleRedirected(sc, netip.MustParseAddrPort(c.dst)); close(done) }()
		io.WriteString(cl, "SSH-2.0-test\n")
		got, err := io.ReadAll(cl)
		cl.Close()
		<-done
		want := ""
		if c.dial != "" {
			want = "echo SSH-2.0-test\n"
		}
		if string(got) != want || strings.Join(dialled, ",") != c.dial {
			t.Errorf("%s: read %q (%v), dialled %q; want %q, dialled %q", c.dst, got, err, dialled, want, c.dial)
		}
		if c.dial == "" && (err == nil || !strings.Contains(err.Error(), "reset")) {
			t.Errorf("%s: a refused connection ends with %v, want a reset", c.dst, err)
		}
	}
	if ds := s.Denials(); len(ds) != 1 || ds[0].Host != "192.0.2.1" || ds[0].Proto != "tcp" {
		t.Errorf("denials = %+v, want one tcp for 192.0.2.1", ds)
	}
}

// TestHandleRedirectedOneRequest: an HTTP connection carries the one
// request whose Host was judged. A second request pipelined behind it
// (naming another host, which a shared server would route by) never
// reaches the server: the client must open a new connection.
func TestHandleRedirectedOneRequest(t *testing.T) {
	s := judgeServer(t, "a.test")
	s.Resolve = map[string]string{"a.test": "127.0.0.1"}
	s.AllowLoopback = true
	s.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		a, b := net.Pipe()
		go func() { // a keep-alive server that echoes each request's Host, two at most
			defer b.Close()
			br := bufio.NewReader(b)
			for range 2 {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				body := "host=" + req.Host + "\n"
				fmt.Fprintf(b, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				if req.Close {
					return
				}
			}
		}()
		return a, nil
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	cl, _ := net.Dial("tcp", l.Addr().String())
	sc, _ := l.Accept()
	l.Close()
	go s.handleRedirected(sc, netip.MustParseAddrPort("198.18.0.1:80"))
	io.WriteString(cl, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\nGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n")
	got, _ := io.ReadAll(cl)
	cl.Close()
	if !strings.Contains(string(got), "host=a.test") || strings.Contains(string(got), "evil.test") {
		t.Errorf("ESCAPED or broken: the client read:\n%s", got)
	}
}
