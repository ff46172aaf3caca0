package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/hutch-sandbox/hutch/internal/mutate"
)

// ErrNoName is a Resolver's "no such name": the name is not allowed, or
// the host's resolver knows no such name. The sandbox gets NXDOMAIN.
var ErrNoName = errors.New("no such name")

// Resolver answers an allowed name with its addresses, or ErrNoName. Any
// other error is a failure of the host's resolver: SERVFAIL, which a
// resolver may retry.
type Resolver func(ctx context.Context, name string) ([]netip.Addr, error)

const (
	typeA    = 1
	typeAAAA = 28
	classIN  = 1

	rcodeServFail = 2
	rcodeNotImp   = 4

	// answerTTL is short: the names are the sandbox's, for one run.
	answerTTL = 60
	// maxAnswers bounds the records of one type in an answer, so that it
	// fits the 512 bytes of plain DNS over UDP (12 + 259 + 8 × 28 bytes).
	maxAnswers = 8
	// maxInflight bounds the queries waiting on the host's resolver at
	// once; a query beyond it is dropped (UDP) or waits (TCP, whose
	// connections are bounded too), so a flood costs the supervisor a
	// bounded number of goroutines.
	maxInflight = 32
	// lookupTimeout bounds one host-side resolution.
	lookupTimeout = 5 * time.Second
	// maxTCPConns bounds the DNS-over-TCP connections served at once; a
	// connection beyond it is closed at once.
	maxTCPConns = 16
	// tcpIdle closes a DNS-over-TCP connection silent this long.
	tcpIdle = 10 * time.Second
	// maxTCPQueries bounds the queries of one TCP connection.
	maxTCPQueries = 64
)

// Server answers a sandbox's DNS queries on the sockets hutch-init opened
// on its 127.0.0.1:53.
//
// Without a Resolver (network mode none) every name is NXDOMAIN. With one
// (mode proxy), A and AAAA queries get the addresses it gives; other types
// for a name it answers get NODATA (no error, no records: the name exists,
// without that kind of record); a name it refuses is NXDOMAIN for every
// type. A class other than IN gets NOTIMP.
type Server struct {
	Resolve Resolver
	// Rec keeps the names asked (the hint of mode none); may be nil.
	Rec *Recorder
	// Table records every address answered, for the proxy to trace a
	// connection back to the names it may be for; may be nil.
	Table *Table

	inflight chan struct{}
	tcpConns chan struct{}
}

func (s *Server) init() {
	if s.inflight == nil {
		s.inflight = make(chan struct{}, maxInflight)
		s.tcpConns = make(chan struct{}, maxTCPConns)
	}
}

// answer is the reply to pkt, or nil when pkt is to be dropped.
func (s *Server) answer(ctx context.Context, pkt []byte) []byte {
	q, err := Parse(pkt)
	if err != nil {
		return nil
	}
	if s.Rec != nil {
		s.Rec.Add(q.Name) // before the answer: a command that saw it was recorded
	}
	if s.Resolve == nil {
		return q.NXDomain()
	}
	if q.Class != classIN {
		return q.reply(rcodeNotImp, nil)
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	name := strings.ToLower(q.Name)
	addrs, err := s.Resolve(ctx, name)
	switch {
	case errors.Is(err, ErrNoName):
		return q.NXDomain()
	case err != nil:
		return q.reply(rcodeServFail, nil)
	}
	if s.Table != nil {
		s.Table.Record(name, addrs)
	}
	var recs []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if q.Type == typeA && a.Is4() || q.Type == typeAAAA && a.Is6() {
			if len(recs) < maxAnswers {
				recs = append(recs, a)
			}
		}
	}
	return q.reply(0, recs)
}

// reply is the answer to q with rcode and one record for each address
// (all of q's type), each naming q's question by a compression pointer.
func (q *Query) reply(rcode int, addrs []netip.Addr) []byte {
	out := make([]byte, headerLen, headerLen+len(q.question)+len(addrs)*28)
	binary.BigEndian.PutUint16(out[0:], q.ID)
	binary.BigEndian.PutUint16(out[2:], 0x8000|q.flags&0x0100|0x0080|uint16(rcode))
	binary.BigEndian.PutUint16(out[4:], 1)
	binary.BigEndian.PutUint16(out[6:], uint16(len(addrs)))
	out = append(out, q.question...)
	for _, a := range addrs {
		typ, data := uint16(typeA), a.AsSlice()
		if a.Is6() {
			typ = typeAAAA
		}
		out = append(out, 0xc0, headerLen) // the name: the question's
		out = binary.BigEndian.AppendUint16(out, typ)
		out = binary.BigEndian.AppendUint16(out, classIN)
		out = binary.BigEndian.AppendUint32(out, answerTTL)
		out = binary.BigEndian.AppendUint16(out, uint16(len(data)))
		out = append(out, data...)
	}
	return out
}

// ServeUDP answers the queries read from pc until pc is closed. Without a
// Resolver each is answered at once, in order; with one, each waits on the
// host in a goroutine of its own, at most maxInflight at a time: a query
// beyond that is dropped, as a busy server's would be.
func (s *Server) ServeUDP(pc net.PacketConn) {
	s.init()
	buf := make([]byte, BufSize)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ECONNREFUSED from an earlier answer's ICMP
		}
		if s.Resolve == nil {
			if a := s.answer(context.Background(), buf[:n]); a != nil {
				pc.WriteTo(a, from)
			}
			continue
		}
		select {
		case s.inflight <- struct{}{}:
		default:
			continue
		}
		pkt := append([]byte(nil), buf[:n]...)
		go func() {
			defer func() { <-s.inflight }()
			if a := s.answer(context.Background(), pkt); a != nil {
				pc.WriteTo(a, from)
			}
		}()
	}
}

// ServeTCP answers DNS over TCP (RFC 7766: each message led by its length
// in two bytes) on l until it is closed. At most maxTCPConns connections
// are served at once, each for at most maxTCPQueries queries and until
// silent for tcpIdle; a message longer than BufSize ends its connection.
func (s *Server) ServeTCP(l net.Listener) {
	s.init()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		if mutate.Off("dns-tcp-bound") {
			go s.serveConn(c)
			continue
		}
		select {
		case s.tcpConns <- struct{}{}:
		default:
			c.Close() // a flood of connections: the rest wait for none
			continue
		}
		go func() {
			// The slot frees before the close: a client that saw its
			// connection end finds the slot free.
			defer c.Close()
			defer func() { <-s.tcpConns }()
			s.serveConn(c)
		}()
	}
}

func (s *Server) serveConn(c net.Conn) {
	buf := make([]byte, BufSize)
	for i := 0; i < maxTCPQueries; i++ {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		var hdr [2]byte
		if _, err := readFull(c, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n > len(buf) {
			return // longer than any question needs: not read
		}
		if _, err := readFull(c, buf[:n]); err != nil {
			return
		}
		var a []byte
		if s.Resolve == nil {
			a = s.answer(context.Background(), buf[:n])
		} else {
			s.inflight <- struct{}{}
			a = s.answer(context.Background(), buf[:n])
			<-s.inflight
		}
		if a == nil {
			return // a message that is not a query: the peer is not a resolver
		}
		c.SetWriteDeadline(time.Now().Add(tcpIdle))
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(a))), a...)); err != nil {
			return
		}
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
