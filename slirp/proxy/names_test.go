package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/hutch-sandbox/hutch/slirp/dns"
)

// TestSandboxDNS: allowed names get the proxy's answers (a made-up address
// for the host's loopback, with host_loopback), every other name no such
// name and a denial with protocol dns; an answer the proxy would refuse is
// no answer (ESCAPED: the sandbox learns the host's loopback or internal
// address through DNS).
func TestSandboxDNS(t *testing.T) {
	rules, err := ParseAllow([]string{"allowed.test:8080", "*.wild.test", "public.test"})
	if err != nil {
		t.Fatal(err)
	}
	noDNS := func(ctx context.Context, host string) ([]net.IP, error) {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	resolve := map[string]string{"allowed.test": "127.0.0.1", "a.wild.test": "169.254.1.1", "public.test": "192.0.2.7", "denied.test": "192.0.2.8"}
	var tb dns.Table
	s := &Server{Rules: rules, AllowLoopback: true, Resolve: resolve, LookupIP: noDNS, Names: &tb}
	d := &SandboxDNS{Proxy: s}
	for _, tc := range []struct {
		name string
		want string // "" for no such name
	}{
		{"allowed.test", "198.18.0.1"},
		{"ALLOWED.test.", "198.18.0.1"}, // the same name, the same address
		{"public.test", "192.0.2.7"},
		{"denied.test", ""},
		{"wild.test", ""}, // *.wild.test is subdomains only
		{"nowhere.wild.test", ""},
	} {
		addrs, err := d.Resolve(context.Background(), tc.name)
		if tc.want == "" {
			if !errors.Is(err, dns.ErrNoName) {
				t.Errorf("%s: %v %v, want no such name", tc.name, addrs, err)
			}
			continue
		}
		if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr(tc.want) {
			t.Errorf("%s: %v %v, want %s", tc.name, addrs, err, tc.want)
		}
	}
	// a.wild.test is link-local: refused unless network.allow names it.
	if _, err := d.Resolve(context.Background(), "a.wild.test"); !errors.Is(err, dns.ErrNoName) {
		t.Errorf("ESCAPED: a link-local answer reached the sandbox: %v", err)
	}
	protos := map[string]string{}
	for _, den := range s.Denials() {
		protos[den.Host] = den.Proto
		if den.Port != 0 {
			t.Errorf("a DNS denial with port %d", den.Port)
		}
	}
	for _, h := range []string{"denied.test", "wild.test", "a.wild.test"} {
		if protos[h] != "dns" {
			t.Errorf("denials %v: want %s with protocol dns", protos, h)
		}
	}

	// Without host_loopback the loopback answer is refused, and said so.
	s2 := &Server{Rules: rules, Resolve: resolve, LookupIP: noDNS}
	if addrs, err := (&SandboxDNS{Proxy: s2}).Resolve(context.Background(), "allowed.test"); !errors.Is(err, dns.ErrNoName) {
		t.Errorf("ESCAPED: without host_loopback allowed.test resolved to %v", addrs)
	}
	if ds := s2.Denials(); len(ds) != 1 || ds[0].Proto != "dns" {
		t.Errorf("denials %+v: want the loopback refusal, protocol dns", ds)
	}
}

// TestSandboxDNSTable: the answers served to the sandbox are in the name
// table the proxy reads, over UDP and TCP.
func TestSandboxDNSTable(t *testing.T) {
	rules, _ := ParseAllow([]string{"allowed.test"})
	var tb dns.Table
	s := &Server{Rules: rules, AllowLoopback: true, Resolve: map[string]string{"allowed.test": "127.0.0.1"}, Names: &tb}
	srv := &dns.Server{Resolve: (&SandboxDNS{Proxy: s}).Resolve, Table: s.Names}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go srv.ServeUDP(pc)
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := []byte{0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'a', 'l', 'l', 'o', 'w', 'e', 'd', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1}
	c.Write(q)
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(q)+16 || buf[3]&0xf != 0 || netip.AddrFrom4([4]byte(buf[n-4:n])) != netip.MustParseAddr("198.18.0.1") {
		t.Fatalf("answer % x: want one A record, 198.18.0.1", buf[:n])
	}
	if got := tb.Names(netip.MustParseAddr("198.18.0.1")); len(got) != 1 || got[0] != "allowed.test" {
		t.Errorf("table: %q, want allowed.test", got)
	}
}

// TestLearn: in learn mode every name and destination is allowed and
// recorded; the profile allows exactly those, commented, and leaves out
// what is not a host name (it comes from inside: it must not shape the
// file).
func TestLearn(t *testing.T) {
	s := &Server{Learn: &Learner{}}
	for _, d := range []struct {
		host  string
		port  int
		proto string
	}{{"a.test", 443, "tls"}, {"a.test", 443, "tls"}, {"a.test", 80, "http"}, {"b.test", 8080, "http"},
		{"evil\"\n[filesystem]\nrw=[\"/\"]#", 443, "tls"}, {"c.test", 5432, "tcp"}} {
		if why := s.decide(d.host, d.port, d.proto); why != "" {
			t.Errorf("learn mode refused %s: %s", d.host, why)
		}
	}
	for _, n := range []string{"a.test", "only-looked-up.test"} {
		if why := s.decideName(n); why != "" {
			t.Errorf("learn mode refused the name %s: %s", n, why)
		}
	}
	uses, dropped := s.Learn.Uses()
	got := LearnedProfile(uses, dropped, true)
	want := `[network]
mode = "proxy"
host_loopback = true  # as the learn run had it
allow = [
  "a.test",                        # http 80 ×1, tls 443 ×2, dns ×1
  "b.test:8080",                   # http ×1
  "c.test:5432",                   # tcp ×1
  # "only-looked-up.test",         # dns ×1: looked up, never connected to
]
# 1 destination(s) left out: not host names
`
	if got != want {
		t.Errorf("profile:\n%s\nwant:\n%s", got, want)
	}
	rules, err := ParseAllow([]string{"a.test", "b.test:8080", "c.test:5432"})
	if err != nil || len(rules) != 3 {
		t.Errorf("learned entries do not parse as network.allow: %v", err)
	}
}
