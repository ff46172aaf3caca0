package dns

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"
)

// query builds a standard query for the labels given, with RD set.
func query(id uint16, labels ...string) []byte {
	pkt := []byte{byte(id >> 8), byte(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, l := range labels {
		pkt = append(pkt, byte(len(l)))
		pkt = append(pkt, l...)
	}
	return append(pkt, 0, 0, 1, 0, 1) // root, type A, class IN
}

func TestParse(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		name string
		pkt  []byte
		want string // "" with ok=false: refused
		ok   bool
	}{
		{"plain", query(7, "registry", "npmjs", "org"), "registry.npmjs.org", true},
		{"root", query(7), "", true},
		{"control bytes kept", query(7, "a\x1b[2Jb", "example"), "a\x1b[2Jb.example", true},
		{"longest name", query(7, long, long, long, strings.Repeat("b", 61)), strings.Join([]string{long, long, long, strings.Repeat("b", 61)}, "."), true},
		{"name past 255 bytes", query(7, long, long, long, strings.Repeat("b", 62)), "", false},
		{"short header", []byte{0, 1, 1, 0, 0, 1}, "", false},
		{"empty", nil, "", false},
		{"a response", func() []byte { p := query(7, "x"); p[2] |= 0x80; return p }(), "", false},
		{"opcode status", func() []byte { p := query(7, "x"); p[2] |= 2 << 3; return p }(), "", false},
		{"two questions", func() []byte { p := query(7, "x"); p[5] = 2; return p }(), "", false},
		{"no question", func() []byte { p := query(7, "x"); p[5] = 0; return p }(), "", false},
		{"answers in a query", func() []byte { p := query(7, "x"); p[7] = 1; return p }(), "", false},
		{"compression pointer to itself", []byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, "", false},
		{"compression pointer after a label", []byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0xc0, 12, 0, 1, 0, 1}, "", false},
		// With 192 (0x40) bytes behind it a pointer (reserved type) would
		// pass the length checks as a label: refused for its type alone.
		{"compression pointer with room behind it", append(append([]byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0}, make([]byte, 0xc0)...), 0, 0, 1, 0, 1), "", false},
		{"reserved label type with room behind it", append(append([]byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40}, make([]byte, 0x40)...), 0, 0, 1, 0, 1), "", false},
		{"reserved label type 0x40", []byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 'a', 0, 0, 1, 0, 1}, "", false},
		{"label past the end", []byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, 'a', 'b'}, "", false},
		{"no end of name", []byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a'}, "", false},
		{"no type and class", []byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 1}, "", false},
		{"EDNS record after the question", func() []byte {
			p := query(7, "example", "com")
			p[11] = 1
			return append(p, 0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0)
		}(), "example.com", true},
	}
	for _, tt := range tests {
		q, err := Parse(tt.pkt)
		if (err == nil) != tt.ok {
			t.Errorf("%s: Parse error %v, want ok=%v", tt.name, err, tt.ok)
			continue
		}
		if err == nil && q.Name != tt.want {
			t.Errorf("%s: name %q, want %q", tt.name, q.Name, tt.want)
		}
	}
}

func TestNXDomain(t *testing.T) {
	pkt := query(0xbeef, "example", "com")
	pkt[11] = 1 // an EDNS OPT record follows: not echoed
	pkt = append(pkt, 0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0)
	q, err := Parse(pkt)
	if err != nil {
		t.Fatal(err)
	}
	a := q.NXDomain()
	if binary.BigEndian.Uint16(a[0:]) != 0xbeef {
		t.Errorf("id %#x", a[:2])
	}
	flags := binary.BigEndian.Uint16(a[2:])
	if flags&0x8000 == 0 || flags&0xf != 3 || flags&0x0100 == 0 || flags&0x0080 == 0 || flags&0x7800 != 0 {
		t.Errorf("flags %#04x: want QR, RD, RA, opcode 0, RCODE 3", flags)
	}
	if !bytes.Equal(a[4:12], []byte{0, 1, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("counts % x: want one question and nothing else", a[4:12])
	}
	if want := query(0, "example", "com")[12:]; !bytes.Equal(a[12:], want) {
		t.Errorf("question % x, want % x", a[12:], want)
	}
}

func TestRecorder(t *testing.T) {
	var r Recorder
	r.Add("a.example")
	r.Add("A.EXAMPLE")
	r.Add("")
	r.Add(strings.Repeat("x", MaxName+1))
	for i := 0; i < 2*MaxNames; i++ {
		r.Add(strings.Repeat("n", i+1))
	}
	got := r.Names()
	if len(got) != MaxNames || got[0] != "a.example" || got[1] != "n" {
		t.Errorf("names %q: want a.example first, then n.., %d in all", got, MaxNames)
	}
}

// TestServe asks the server over loopback: NXDOMAIN for a query, the name
// recorded; no answer to garbage, and the server still answers after it.
func TestServe(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var rec Recorder
	done := make(chan struct{})
	go func() { Serve(pc, &rec); close(done) }()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{0xc0, 0xc0, 0xc0}) // garbage first: dropped
	c.Write(query(42, "registry", "npmjs", "org"))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n < 12 || binary.BigEndian.Uint16(buf) != 42 || buf[3]&0xf != 3 {
		t.Errorf("answer % x: want id 42, NXDOMAIN", buf[:n])
	}
	if got := rec.Names(); len(got) != 1 || got[0] != "registry.npmjs.org" {
		t.Errorf("recorded %q", got)
	}
	pc.Close()
	<-done
}

// FuzzParse: no packet makes Parse panic, and what it accepts it answers
// with a packet that parses back to the same name as a response.
func FuzzParse(f *testing.F) {
	f.Add(query(1, "registry", "npmjs", "org"))
	f.Add([]byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	f.Add([]byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		q, err := Parse(pkt)
		if err != nil {
			return
		}
		if len(q.Name) > MaxName {
			t.Fatalf("name of %d bytes accepted", len(q.Name))
		}
		a := q.NXDomain()
		a[2] &^= 0x80 // read it back as a query
		back, err := Parse(a)
		if err != nil || back.Name != q.Name {
			t.Fatalf("answer does not parse back: %v %+v %q", err, back, q.Name)
		}
	})
}
