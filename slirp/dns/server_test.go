package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// queryType is query() for another type and class.
func queryType(id, typ, class uint16, labels ...string) []byte {
	p := query(id, labels...)
	binary.BigEndian.PutUint16(p[len(p)-4:], typ)
	binary.BigEndian.PutUint16(p[len(p)-2:], class)
	return p
}

// parseAnswer reads an answer's rcode and the addresses of its records
// (whose names must point at the question), failing on anything else.
func parseAnswer(t *testing.T, a []byte) (int, []netip.Addr) {
	t.Helper()
	if len(a) < headerLen || a[2]&0x80 == 0 {
		t.Fatalf("not an answer: % x", a)
	}
	q := append([]byte(nil), a...)
	q[2] &^= 0x80
	binary.BigEndian.PutUint16(q[6:], 0)
	parsed, err := Parse(q[:headerLen+len(questionOf(t, a))])
	if err != nil {
		t.Fatalf("question does not parse back: %v", err)
	}
	off := headerLen + len(parsed.question)
	var addrs []netip.Addr
	for i := 0; i < int(binary.BigEndian.Uint16(a[6:])); i++ {
		if off+12 > len(a) || a[off] != 0xc0 || a[off+1] != headerLen {
			t.Fatalf("record %d malformed: % x", i, a[off:])
		}
		n := int(binary.BigEndian.Uint16(a[off+10:]))
		ip, ok := netip.AddrFromSlice(a[off+12 : off+12+n])
		if !ok {
			t.Fatalf("record %d: rdata of %d bytes", i, n)
		}
		addrs = append(addrs, ip)
		off += 12 + n
	}
	if off != len(a) {
		t.Fatalf("%d bytes after the records", len(a)-off)
	}
	return int(a[3] & 0xf), addrs
}

func questionOf(t *testing.T, a []byte) []byte {
	off := headerLen
	for a[off] != 0 {
		off += 1 + int(a[off])
	}
	return a[headerLen : off+5]
}

var (
	v4 = netip.MustParseAddr("198.18.0.1")
	v6 = netip.MustParseAddr("2001:db8::1")
)

func testResolver(_ context.Context, name string) ([]netip.Addr, error) {
	switch name {
	case "ok.test":
		return []netip.Addr{v4, v6}, nil
	case "broken.test":
		return nil, errors.New("host resolver down")
	}
	return nil, ErrNoName
}

func TestServerAnswers(t *testing.T) {
	tests := []struct {
		name  string
		pkt   []byte
		rcode int
		addrs []netip.Addr
	}{
		{"A", query(1, "ok", "test"), 0, []netip.Addr{v4}},
		{"A, any case", query(1, "OK", "Test"), 0, []netip.Addr{v4}},
		{"AAAA", queryType(1, typeAAAA, classIN, "ok", "test"), 0, []netip.Addr{v6}},
		{"MX: NODATA", queryType(1, 15, classIN, "ok", "test"), 0, nil},
		{"HTTPS: NODATA", queryType(1, 65, classIN, "ok", "test"), 0, nil},
		{"denied", query(1, "denied", "test"), rcodeNXDomain, nil},
		{"denied AAAA", queryType(1, typeAAAA, classIN, "denied", "test"), rcodeNXDomain, nil},
		{"class CH", queryType(1, typeA, 3, "ok", "test"), rcodeNotImp, nil},
		{"host resolver fails", query(1, "broken", "test"), rcodeServFail, nil},
	}
	var tb Table
	s := &Server{Resolve: testResolver, Table: &tb}
	for _, tt := range tests {
		a := s.answer(context.Background(), tt.pkt)
		rcode, addrs := parseAnswer(t, a)
		if rcode != tt.rcode || len(addrs) != len(tt.addrs) || len(addrs) > 0 && addrs[0] != tt.addrs[0] {
			t.Errorf("%s: rcode %d, %v; want %d, %v", tt.name, rcode, addrs, tt.rcode, tt.addrs)
		}
	}
	if got := tb.Names(v4); len(got) != 1 || got[0] != "ok.test" {
		t.Errorf("table for %v: %q, want ok.test", v4, got)
	}
	if got := tb.Names(netip.MustParseAddr("198.18.0.2")); got != nil {
		t.Errorf("table holds an address never answered: %q", got)
	}
}

// TestServerManyAddrs: an answer holds at most maxAnswers records, and so
// fits in 512 bytes with the longest name.
func TestServerManyAddrs(t *testing.T) {
	var many []netip.Addr
	for a, i := netip.MustParseAddr("2001:db8::1"), 0; i < 50; a, i = a.Next(), i+1 {
		many = append(many, a)
	}
	s := &Server{Resolve: func(context.Context, string) ([]netip.Addr, error) { return many, nil }}
	long := "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	a := s.answer(context.Background(), queryType(1, typeAAAA, classIN, long, long, long, long[:61]))
	_, addrs := parseAnswer(t, a)
	if len(addrs) != maxAnswers || len(a) > 512 {
		t.Errorf("%d records in %d bytes: want %d in at most 512", len(addrs), len(a), maxAnswers)
	}
}

// TestServeTCP: length-prefixed queries on one connection are answered in
// turn; a message longer than BufSize ends the connection unread; and
// connections beyond maxTCPConns are closed at once while the first ones
// are held open (ESCAPED: the flood is served).
func TestServeTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := &Server{Resolve: testResolver}
	go s.ServeTCP(l)
	ask := func(c net.Conn, pkt []byte) []byte {
		t.Helper()
		c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))), pkt...))
		var hdr [2]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			t.Fatalf("no answer: %v", err)
		}
		a := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(c, a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pkt   []byte
		rcode int
	}{{query(1, "ok", "test"), 0}, {query(2, "denied", "test"), rcodeNXDomain}} {
		if rcode, _ := parseAnswer(t, ask(c, tc.pkt)); rcode != tc.rcode {
			t.Errorf("rcode %d, want %d", rcode, tc.rcode)
		}
	}
	c.Write([]byte{0xff, 0xff}) // 65535 bytes announced
	// A deadline, so that a server that waits for the bytes fails the
	// test instead of hanging it: closed at once is the only pass.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Errorf("ESCAPED: an oversized message got %d bytes back or held the connection (%v), want it closed", n, err)
	}
	c.Close()

	// Hold maxTCPConns connections, each proven served by one answer.
	var held []net.Conn
	for i := 0; i < maxTCPConns; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ask(c, query(uint16(i), "ok", "test"))
		held = append(held, c)
	}
	extra, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	pkt := query(99, "ok", "test")
	extra.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))), pkt...))
	extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := extra.Read(make([]byte, 2)); err == nil || os.IsTimeout(err) {
		t.Errorf("ESCAPED: connection %d of a flood was served (%d bytes) or held open (%v)", maxTCPConns+1, n, err)
	}
	held[0].Close() // a slot frees: served again
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))), pkt...))
		n, _ := io.ReadFull(c, make([]byte, 2))
		c.Close()
		if n == 2 {
			break
		}
		if i > 1000 {
			t.Fatal("no connection served after a slot was freed")
		}
	}
}

// FuzzAnswer: no packet makes the server panic, and every answer parses
// back: its question, then records whose names point at it.
func FuzzAnswer(f *testing.F) {
	f.Add(query(1, "ok", "test"))
	f.Add(queryType(1, typeAAAA, classIN, "ok", "test"))
	f.Add(queryType(1, 15, 3, "x"))
	f.Add([]byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	s := &Server{Resolve: testResolver, Table: &Table{}}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		a := s.answer(context.Background(), pkt)
		if a == nil {
			return
		}
		parseAnswer(t, a)
	})
}
