package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/slirp/dns"
	"github.com/hutch-sandbox/hutch/slirp/redirect"
)

// redirected reports whether c reached the listener through the
// namespace's redirect rules, and where it was going. A connection whose
// original destination is the listener itself is an explicit proxy
// client; without the rules (the fallback) there is no record at all.
func redirected(c net.Conn) (netip.AddrPort, bool) {
	dst, err := redirect.OriginalDst(c)
	if err != nil {
		return netip.AddrPort{}, false
	}
	local, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil || local == dst {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()), true
}

// handleRedirected serves a connection the rules redirected: judge its
// destination by the names the sandbox resolved to it and by what its
// first bytes claim, then dial from the host and relay.
func (s *Server) handleRedirected(c net.Conn, dst netip.AddrPort) {
	defer c.Close()
	addr, port := dst.Addr(), int(dst.Port())
	br := bufio.NewReaderSize(c, 5+maxRecord)
	proto, claimed := sniff(c, br)
	host, why := s.judge(addr, port, proto, claimed)
	if why != "" {
		s.deny(host, port, proto, "", why)
		if proto == "http" {
			respond(c, http.StatusForbidden, fmt.Sprintf("hutch: blocked %s: %s.\nTo allow it, add %q to network.allow in hutch.toml.\n",
				net.JoinHostPort(host, strconv.Itoa(port)), why, suggest(host, port)))
			return
		}
		reset(c)
		return
	}
	up, err := s.dialRedirected(context.Background(), host, addr, port)
	if err != nil {
		var ref *refusedAddr
		if errors.As(err, &ref) {
			s.deny(host, port, proto, "", err.Error())
		}
		reset(c)
		return
	}
	defer up.Close()
	if proto == "http" && !mutate.Off("wire-one-request") {
		relayOneRequest(c, br, up)
		return
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		if _, err := up.Write(b); err != nil {
			return
		}
	}
	Pipe(c, up)
}

// judge says whether a redirected connection to addr:port, which speaks
// proto and claims the name claimed (SNI or Host), may go on: why is ""
// when it may. host is the name it is for (the destination's address
// when it has none), for the dial and the report.
//
// An allow entry naming the address (or its network) lets anything
// through. Otherwise the address must be one that an allowed name resolved
// to inside the sandbox, on a port allowed for that name; TLS and HTTP
// must then claim such a name: a name the rules allow but that did not
// resolve to this address is refused, as is no name at all. Learn mode
// (decide) lets everything through and records it.
func (s *Server) judge(addr netip.Addr, port int, proto, claimed string) (host, why string) {
	var names []string
	if s.Names != nil {
		names = s.Names.Names(addr)
	}
	if s.ipAllowed(addr, port) {
		switch {
		case claimed != "" && slices.Contains(names, claimed):
			return claimed, ""
		case dns.IsSynthetic(addr) && len(names) > 0:
			return names[0], "" // a made-up address is dialled by name
		}
		return addr.String(), ""
	}
	if len(names) == 0 {
		host = addr.String()
		if s.Learn != nil || mutate.Off("wire-bare-ip") {
			return host, s.decide(host, port, proto)
		}
		return host, fmt.Sprintf("%s is a bare IP address: no name the sandbox looked up resolved to it (allow %q to allow it)", addr, addr.String())
	}
	if proto == "tcp" {
		if mutate.Off("wire-port") {
			return names[0], ""
		}
		for _, n := range names {
			if s.check(n, port) == "" {
				return n, s.decide(n, port, proto)
			}
		}
		return names[0], s.decide(names[0], port, proto)
	}
	what := map[string]string{"tls": "the TLS server name (SNI)", "http": "the HTTP Host header"}[proto]
	switch {
	case claimed == "" && s.Learn != nil:
		return names[0], s.decide(names[0], port, proto)
	case claimed == "":
		return names[0], fmt.Sprintf("%s is missing, so hutch cannot tell which of %s it is for", what, strings.Join(names, ", "))
	case !slices.Contains(names, claimed) && s.Learn == nil && !mutate.Off("wire-claimed-name"):
		return claimed, fmt.Sprintf("%s names %s, but %s is the address of %s", what, claimed, addr, strings.Join(names, ", "))
	}
	return claimed, s.decide(claimed, port, proto)
}

// dialRedirected connects to the destination from the host. A synthetic
// address is dialled by its name, resolved again on the host; any other
// address as it is, after the refusals every dial meets (the host's
// loopback, link-local and private neighbours).
func (s *Server) dialRedirected(ctx context.Context, host string, addr netip.Addr, port int) (net.Conn, error) {
	if dns.IsSynthetic(addr) && net.ParseIP(host) == nil {
		return s.dial(ctx, host, port)
	}
	if err := s.refused(host, addr.AsSlice()); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dial := s.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return dial(ctx, "tcp", netip.AddrPortFrom(addr, uint16(port)).String())
}

// reset makes c's close a reset: the client, whose connect already
// succeeded (to the proxy), sees "connection reset" at once instead of a
// clean end that could pass for an empty answer.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
}

// relayOneRequest passes on the one HTTP request whose Host was judged,
// asking the server to close after it, and relays the answer. A second
// request on the same connection could name another Host (a shared
// server routes each request by its own): the client must open a new
// connection for it, which is judged again.
func relayOneRequest(c net.Conn, br *bufio.Reader, up net.Conn) {
	req, err := http.ReadRequest(br)
	if err != nil {
		reset(c)
		return
	}
	for _, h := range []string{"Connection", "Keep-Alive", "Upgrade", "Proxy-Connection"} {
		req.Header.Del(h)
	}
	req.Close = true
	if err := req.Write(up); err != nil {
		return
	}
	io.Copy(c, up)
}
