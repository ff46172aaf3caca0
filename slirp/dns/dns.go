// Package dns answers the DNS queries of a sandbox.
//
// The sandbox's resolv.conf names 127.0.0.1, where hutch-init opened a UDP
// and a TCP socket that the supervisor serves with this package (Server).
// In network mode "none" every query gets NXDOMAIN at once, so a resolver
// reports "no such host" (EAI_NONAME) instead of retrying an absent server
// for minutes (npm took 5 min 52 s to fail that way), and the names asked
// for are kept, so hutch can say at exit what the command tried to reach.
// In mode "proxy" a Resolver (the allowlist proxy's) answers the names
// network.allow lets through with their addresses, and every other name
// gets NXDOMAIN just as fast; the answers go into a Table.
//
// The packets come from inside the sandbox, so they are hostile: Parse
// reads a bounded question, refuses compression pointers and reserved
// label types, checks every length before it reads, and never loops on
// the packet's own say-so. Work and memory per query and per sandbox are
// bounded (server.go).
package dns

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
)

const (
	headerLen = 12
	// MaxName is the longest name in dotted text (RFC 1035: 255 bytes on
	// the wire, 253 as text).
	MaxName = 253
	// MaxNames is how many distinct names a Recorder keeps.
	MaxNames = 32
	// BufSize bounds the read of one query. A question is at most 255+4
	// bytes after the header; EDNS records after it are not read.
	BufSize = 1500

	rcodeNXDomain = 3
)

// Query is the one question of a DNS query.
type Query struct {
	ID       uint16
	Name     string // dotted, without the final dot; "" for the root
	Type     uint16
	Class    uint16
	flags    uint16
	question []byte // the question's bytes as sent, echoed in the answer
}

var errMalformed = errors.New("malformed DNS query")

// Parse reads a standard query with exactly one question. Anything else
// (an answer, another opcode, a compression pointer, a label running past
// the packet or the name past 255 bytes) is an error, and the packet is
// to be dropped.
func Parse(pkt []byte) (*Query, error) {
	if len(pkt) < headerLen {
		return nil, errMalformed
	}
	flags := binary.BigEndian.Uint16(pkt[2:])
	if flags&0x8000 != 0 || (flags>>11)&0xf != 0 { // QR set, or not QUERY
		return nil, errMalformed
	}
	if binary.BigEndian.Uint16(pkt[4:]) != 1 || binary.BigEndian.Uint16(pkt[6:]) != 0 || binary.BigEndian.Uint16(pkt[8:]) != 0 {
		return nil, errMalformed
	}
	var name strings.Builder
	off, wire := headerLen, 0
	// Each pass consumes at least one byte of a packet of bounded length,
	// and wire stops it at 255 bytes of name: no loop can run on.
	for {
		if off >= len(pkt) {
			return nil, errMalformed
		}
		l := int(pkt[off])
		wire += 1 + l
		if wire > 255 {
			return nil, errMalformed
		}
		if l == 0 {
			off++
			break
		}
		if l&0xc0 != 0 { // a compression pointer (0xc0) or a reserved type
			return nil, errMalformed
		}
		if off+1+l > len(pkt) {
			return nil, errMalformed
		}
		if name.Len() > 0 {
			name.WriteByte('.')
		}
		name.Write(pkt[off+1 : off+1+l])
		off += 1 + l
	}
	if off+4 > len(pkt) {
		return nil, errMalformed
	}
	return &Query{
		ID:       binary.BigEndian.Uint16(pkt[0:]),
		Name:     name.String(),
		Type:     binary.BigEndian.Uint16(pkt[off:]),
		Class:    binary.BigEndian.Uint16(pkt[off+2:]),
		flags:    flags,
		question: pkt[headerLen : off+4],
	}, nil
}

// NXDomain is the answer "no such name" to q: its id, its question echoed,
// its RD bit kept, RA set (so that a resolver takes it as final), no
// records.
func (q *Query) NXDomain() []byte {
	out := make([]byte, headerLen, headerLen+len(q.question))
	binary.BigEndian.PutUint16(out[0:], q.ID)
	binary.BigEndian.PutUint16(out[2:], 0x8000|q.flags&0x0100|0x0080|rcodeNXDomain)
	binary.BigEndian.PutUint16(out[4:], 1)
	return append(out, q.question...)
}

// Recorder keeps the distinct names looked up, at most MaxNames of them,
// in the order first asked. It is safe for concurrent use.
type Recorder struct {
	mu    sync.Mutex
	names []string
}

// Add records name unless it is empty, already kept (case-insensitively,
// as DNS compares names) or the Recorder is full.
func (r *Recorder) Add(name string) {
	if name == "" || len(name) > MaxName {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.names {
		if strings.EqualFold(n, name) {
			return
		}
	}
	if len(r.names) >= MaxNames {
		return
	}
	r.names = append(r.names, name)
}

// Names returns the names kept.
func (r *Recorder) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.names...)
}

// Serve answers every query read from pc with NXDOMAIN and records its
// name in rec, until pc is closed (network mode none).
func Serve(pc net.PacketConn, rec *Recorder) {
	(&Server{Rec: rec}).ServeUDP(pc)
}
