// Package proxy is hutch's egress allowlist: an HTTP proxy (plain requests
// and CONNECT tunnels) that lets through only hosts named in
// network.allow, and remembers what it refused so the user can learn which
// line to add.
//
// It serves listeners that hutch-init opened inside the sandbox's network
// namespace (which has nothing but lo) and dials upstream from the host, so
// the sandbox itself has no route anywhere: a tool that ignores the proxy
// variables fails closed. It knows nothing of sandboxes or profiles.
package proxy

import (
	"github.com/hutch-sandbox/hutch/slirp/allow"
	"github.com/hutch-sandbox/hutch/slirp/dns"

	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rule is one network.allow entry (slirp/allow, a leaf that the plan
// holds without this proxy).
type Rule = allow.Rule

// ParseAllow parses network.allow entries: "host", "*.domain", an IP
// address or an "ADDR/BITS" network, each with an optional ":port" (an
// IPv6 address or network in brackets then, as in "[2001:db8::/32]:443").
func ParseAllow(entries []string) ([]Rule, error) {
	var rules []Rule
	for _, e := range entries {
		r := Rule{Text: e}
		host := strings.ToLower(strings.TrimSpace(e))
		if i := strings.Index(host, "://"); i >= 0 {
			return nil, fmt.Errorf("allow entry %q is a URL: give the host name alone, as in %q", e, strings.SplitN(host[i+3:], "/", 2)[0])
		}
		if h, p, err := net.SplitHostPort(host); err == nil {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("allow entry %q: port %q is not a number from 1 to 65535", e, p)
			}
			host, r.Port = h, n
		}
		if ok, err := parseIPRule(&r, host); ok || err != nil {
			if err != nil {
				return nil, err
			}
			rules = append(rules, r)
			continue
		}
		if strings.HasPrefix(host, "*.") {
			r.Wildcard, host = true, host[2:]
		}
		if !validHost(host) {
			return nil, fmt.Errorf("allow entry %q is not a host name, *.domain or host:port", e)
		}
		r.Host = host
		rules = append(rules, r)
	}
	return rules, nil
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 || strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// Denial is a refused destination, counted.
type Denial struct {
	Host   string `json:"host"`
	Port   int    `json:"port"`
	Method string `json:"method"`
	// Proto is what the connection spoke, as far as hutch saw: "http"
	// (a plain request), "tls" (a CONNECT to 443, or a ClientHello),
	// "tcp", "udp" or "dns".
	Proto string `json:"protocol"`
	// Name is the host name a connection to an address was for, when
	// hutch knows it (Host is then the address); "" when Host is the name.
	Name   string    `json:"name,omitempty"`
	Reason string    `json:"reason"`
	Count  int       `json:"count"`
	First  time.Time `json:"first"`
}

// maxDenials bounds the distinct destinations a Server keeps refusals of.
const maxDenials = 1024

// Server is the allowlist proxy.
type Server struct {
	Rules []Rule
	// AllowLoopback lets an allowed name resolve to the host's loopback
	// (network.host_loopback). Otherwise such answers are refused: a DNS
	// name pointing at 127.0.0.1 must not open the host's own services.
	AllowLoopback bool
	// Resolve overrides DNS for some names (a test hook); its addresses
	// go through the same refusals as DNS answers.
	Resolve map[string]string
	// Dial connects upstream; nil uses a net.Dialer with a 30 s timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Names records which names the sandbox resolved to which addresses
	// (hutch's DNS inside fills it); a redirected connection is traced back
	// through it. Nil in the explicit-proxy-only path.
	Names *dns.Table
	// LookupIP resolves a name; nil uses the host's resolver. (Tests.)
	LookupIP func(ctx context.Context, host string) ([]net.IP, error)
	// Learn, when set, allows every destination and records it (learn.go).
	Learn *Learner

	// The host's own addresses and the networks on its links, read once
	// (net.InterfaceAddrs) when the first name is resolved.
	localOnce sync.Once
	localNets []*net.IPNet

	mu      sync.Mutex
	denials map[string]*Denial
	conns   sync.WaitGroup
}

// Serve accepts connections on l until it is closed.
func (s *Server) Serve(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			if dst, ok := redirected(c); ok {
				s.handleRedirected(c, dst)
				return
			}
			s.handle(c)
		}()
	}
}

// Denials returns what was refused, most frequent first.
func (s *Server) Denials() []Denial {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Denial, 0, len(s.denials))
	for _, d := range s.denials {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Host < out[j].Host
	})
	return out
}

func (s *Server) deny(host string, port int, proto, method, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.denials == nil {
		s.denials = map[string]*Denial{}
	}
	key := proto + " " + host + ":" + strconv.Itoa(port)
	if d, ok := s.denials[key]; ok {
		d.Count++
		return
	}
	if len(s.denials) >= maxDenials {
		return // the names come from inside: a flood must not grow hutch
	}
	s.denials[key] = &Denial{Host: host, Port: port, Proto: proto, Method: method, Reason: reason, Count: 1, First: time.Now()}
}

// check returns "" when host:port is allowed, else why not.
func (s *Server) check(host string, port int) string {
	for _, r := range s.Rules {
		if r.Matches(host, port) {
			return ""
		}
	}
	if len(s.Rules) == 0 {
		return "network.allow is empty"
	}
	return "no network.allow rule matches " + net.JoinHostPort(host, strconv.Itoa(port))
}

func (s *Server) handle(c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	host, port, err := target(req)
	if err != nil {
		respond(c, http.StatusBadRequest, "hutch proxy: "+err.Error()+"\n")
		return
	}
	if why := s.decide(host, port, requestProto(req.Method, port)); why != "" {
		s.deny(host, port, requestProto(req.Method, port), req.Method, why)
		respond(c, http.StatusForbidden, fmt.Sprintf("hutch: blocked %s %s: %s.\nTo allow it, add %q to network.allow in hutch.toml.\n",
			req.Method, net.JoinHostPort(host, strconv.Itoa(port)), why, suggest(host, port)))
		return
	}
	up, err := s.dial(req.Context(), host, port)
	if err != nil {
		var ref *refusedAddr
		if errors.As(err, &ref) {
			s.deny(host, port, requestProto(req.Method, port), req.Method, err.Error())
			respond(c, http.StatusForbidden, "hutch: blocked: "+err.Error()+"\n")
			return
		}
		respond(c, http.StatusBadGateway, "hutch proxy: "+err.Error()+"\n")
		return
	}
	defer up.Close()
	if req.Method == http.MethodConnect {
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		// Bytes the client sent after the CONNECT head belong upstream.
		if n := br.Buffered(); n > 0 {
			b, _ := br.Peek(n)
			up.Write(b)
		}
		Pipe(c, up)
		return
	}
	// A plain HTTP request: one request per connection, in origin form.
	for _, h := range []string{"Proxy-Connection", "Proxy-Authorization", "Connection", "Keep-Alive", "Upgrade"} {
		req.Header.Del(h)
	}
	req.Close = true
	req.RequestURI = ""
	if err := req.Write(up); err != nil {
		return
	}
	io.Copy(c, up)
}

// requestProto names what an explicit proxy request carries: a plain
// request is http; a CONNECT tunnel is most likely TLS on 443, and is
// only known to be tcp elsewhere.
func requestProto(method string, port int) string {
	switch {
	case method != http.MethodConnect:
		return "http"
	case port == 443:
		return "tls"
	}
	return "tcp"
}

func target(req *http.Request) (string, int, error) {
	hostport := req.Host
	if req.Method != http.MethodConnect {
		if req.URL == nil || !req.URL.IsAbs() {
			return "", 0, errors.New("this is a proxy: requests must name an absolute http:// URL or use CONNECT")
		}
		if req.URL.Scheme != "http" {
			return "", 0, fmt.Errorf("scheme %q is not proxied: use CONNECT for https", req.URL.Scheme)
		}
		hostport = req.URL.Host
	}
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		if req.Method == http.MethodConnect {
			return "", 0, fmt.Errorf("CONNECT %q names no port", hostport)
		}
		host, p = hostport, "80"
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", hostport)
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	return host, port, nil
}

func suggest(host string, port int) string {
	if port == 80 || port == 443 {
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

type refusedAddr struct{ host, ip, what, fix string }

func (e *refusedAddr) Error() string {
	return fmt.Sprintf("%s resolves to %s, %s (%s)", e.host, e.ip, e.what, e.fix)
}

// refused decides whether ip, an answer for host, may be dialled: nil when
// it may. An allowed name must not open the host's own services, nor its
// neighbours': loopback only with host_loopback; the host's own addresses
// (its interfaces, docker bridges), link-local and unique-local ones, and
// private addresses on the host's own links only when network.allow names
// that very address. Nothing is dialled before this says yes.
func (s *Server) refused(host string, ip net.IP) error {
	if v4 := ip.To4(); v4 != nil {
		ip = v4 // ::ffff:127.0.0.1 is 127.0.0.1
	}
	refuse := func(what string) error {
		return &refusedAddr{host, ip.String(), what, fmt.Sprintf("add %q to network.allow to allow it", ip.String())}
	}
	switch {
	case ip.IsLoopback():
		if s.AllowLoopback {
			return nil
		}
		return &refusedAddr{host, ip.String(), "the host's own loopback", "set network.host_loopback = true to allow"}
	case ip.IsUnspecified() || ip[0] == 0 && len(ip) == net.IPv4len || ip.IsMulticast() || ip.Equal(net.IPv4bcast):
		return &refusedAddr{host, ip.String(), "not an address to connect to", "never allowed"}
	case s.named(ip):
		return nil
	case ip.IsLinkLocalUnicast():
		return refuse("a link-local address")
	case ip.IsPrivate() && len(ip) == net.IPv6len:
		return refuse("a unique-local address")
	}
	s.localOnce.Do(s.readLocal)
	for _, n := range s.localNets {
		if n.IP.Equal(ip) {
			return refuse("one of this host's own addresses")
		}
	}
	for _, n := range s.localNets {
		if ip.IsPrivate() && n.Contains(ip) {
			return refuse("a private address on one of this host's own networks")
		}
	}
	return nil
}

// named reports whether a network.allow entry names ip itself, or a
// network holding it.
func (s *Server) named(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	for _, r := range s.Rules {
		if r.Prefix.IsValid() && r.Prefix.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

func (s *Server) readLocal() {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if v4 := n.IP.To4(); v4 != nil {
				n = &net.IPNet{IP: v4, Mask: n.Mask[len(n.Mask)-net.IPv4len:]}
			}
			s.localNets = append(s.localNets, n)
		}
	}
}

// dial resolves host on the host side and connects, refusing the answers
// refused names.
func (s *Server) dial(ctx context.Context, host string, port int) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dial := s.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	var ips []net.IP
	if a, ok := s.Resolve[host]; ok {
		ips = []net.IP{net.ParseIP(a)}
	} else if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else if s.LookupIP != nil {
		var err error
		if ips, err = s.LookupIP(ctx, host); err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, err)
		}
	} else {
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, err)
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	var lastErr error
	for _, ip := range ips {
		if ip == nil {
			continue
		}
		if err := s.refused(host, ip); err != nil {
			lastErr = err
			continue
		}
		c, err := dial(ctx, "tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no address for %s", host)
	}
	return nil, lastErr
}

func respond(c net.Conn, code int, body string) {
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, http.StatusText(code), len(body), body)
}

// Pipe copies both ways between a and b, passing on each half-close, until
// both directions are done.
func Pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
}
