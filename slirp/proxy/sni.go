package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"net/http"
	"strings"
	"time"
)

const (
	// firstBytesWait is how long a redirected connection may stay silent
	// before it is taken for a protocol whose server speaks first (SMTP,
	// MySQL, FTP) and judged on its address and port alone.
	firstBytesWait = 300 * time.Millisecond
	// helloWait bounds the wait for the rest of a ClientHello or request
	// head once it has begun.
	helloWait = 10 * time.Second
	// maxRecord is a TLS record's largest plaintext, and so the most of a
	// ClientHello hutch reads; maxHead bounds an HTTP request head.
	maxRecord = 16384
	maxHead   = 16384
)

// sniff reads the start of a redirected connection, without consuming
// it, and says what it speaks: "tls" with the ClientHello's server name,
// "http" with the request's Host, or "tcp". A name of "" means the
// protocol carries none where one was expected (TLS without SNI, a
// ClientHello split over records, HTTP/1.0 without Host).
func sniff(c net.Conn, br *bufio.Reader) (proto, name string) {
	defer c.SetReadDeadline(time.Time{})
	c.SetReadDeadline(time.Now().Add(firstBytesWait))
	b, err := br.Peek(1)
	if err != nil {
		return "tcp", ""
	}
	c.SetReadDeadline(time.Now().Add(helloWait))
	switch {
	case b[0] == 0x16: // a TLS handshake record
		hdr, err := br.Peek(5)
		if err != nil {
			return "tls", ""
		}
		n := int(binary.BigEndian.Uint16(hdr[3:5]))
		if n > maxRecord {
			return "tls", ""
		}
		rec, err := br.Peek(5 + n)
		if err != nil {
			return "tls", ""
		}
		return "tls", clientHelloSNI(rec[5:])
	case b[0] >= 'A' && b[0] <= 'Z':
		// A method is upper-case letters and a space: read on to the
		// space, so that a request sent a byte at a time is still seen
		// as one.
		for i := 1; i <= len("OPTIONS "); i++ {
			p, err := br.Peek(i)
			if err != nil {
				return "tcp", ""
			}
			if p[i-1] == ' ' {
				if !isMethod(string(p[:i-1])) {
					return "tcp", ""
				}
				return "http", requestHost(br)
			}
			if p[i-1] < 'A' || p[i-1] > 'Z' {
				return "tcp", ""
			}
		}
	}
	return "tcp", ""
}

func isMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
		return true
	}
	return false
}

// requestHost reads on to the end of the request head (at most maxHead)
// and returns its Host, lower case, without port or trailing dot.
func requestHost(br *bufio.Reader) string {
	for {
		buf, _ := br.Peek(br.Buffered())
		if bytes.Contains(buf, []byte("\r\n\r\n")) {
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(buf)))
			if err != nil {
				return ""
			}
			return hostName(req.Host)
		}
		if len(buf) >= maxHead {
			return ""
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return ""
		}
	}
}

// hostName is a Host header or server name as the rules compare it; ""
// when it is not a plausible host name.
func hostName(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if !validHost(h) {
		return ""
	}
	return h
}

// clientHelloSNI returns the host_name in a ClientHello's server_name
// extension (RFC 6066), "" when there is none or the message is
// malformed or does not fit in b (one record).
func clientHelloSNI(b []byte) string {
	r := reader(b)
	typ, ok := r.u8()
	if !ok || typ != 1 { // client_hello
		return ""
	}
	n, ok := r.u24()
	if !ok || n > len(r) {
		return ""
	}
	r = r[:n]
	if !r.skip(2+32) || !r.skipVec(1) || !r.skipVec(2) || !r.skipVec(1) { // version, random, session id, suites, compression
		return ""
	}
	exts, ok := r.vec(2)
	if !ok {
		return ""
	}
	for len(exts) > 0 {
		et, ok1 := exts.u16()
		data, ok2 := exts.vec(2)
		if !ok1 || !ok2 {
			return ""
		}
		if et != 0 { // server_name
			continue
		}
		list, ok := data.vec(2)
		if !ok {
			return ""
		}
		for len(list) > 0 {
			nt, ok1 := list.u8()
			name, ok2 := list.vec(2)
			if !ok1 || !ok2 {
				return ""
			}
			if nt == 0 { // host_name
				return hostName(string(name))
			}
		}
		return ""
	}
	return ""
}

// reader walks a byte string; each method reports whether it had room.
type reader []byte

func (r *reader) u8() (int, bool) {
	if len(*r) < 1 {
		return 0, false
	}
	v := (*r)[0]
	*r = (*r)[1:]
	return int(v), true
}

func (r *reader) u16() (int, bool) {
	if len(*r) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(*r)
	*r = (*r)[2:]
	return int(v), true
}

func (r *reader) u24() (int, bool) {
	if len(*r) < 3 {
		return 0, false
	}
	v := int((*r)[0])<<16 | int((*r)[1])<<8 | int((*r)[2])
	*r = (*r)[3:]
	return v, true
}

func (r *reader) skip(n int) bool {
	if len(*r) < n {
		return false
	}
	*r = (*r)[n:]
	return true
}

// vec reads a vector with a lenBytes-long length prefix.
func (r *reader) vec(lenBytes int) (reader, bool) {
	var n int
	var ok bool
	if lenBytes == 1 {
		n, ok = r.u8()
	} else {
		n, ok = r.u16()
	}
	if !ok || len(*r) < n {
		return nil, false
	}
	v := (*r)[:n]
	*r = (*r)[n:]
	return v, true
}

func (r *reader) skipVec(lenBytes int) bool {
	_, ok := r.vec(lenBytes)
	return ok
}
