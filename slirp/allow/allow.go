// Package allow is one parsed network.allow entry and the test of a
// destination against it. It is a leaf of its own, apart from the proxy
// that enforces it (slirp/proxy, which parses the entries), so that the
// plan can hold the parsed allowlist without linking an HTTP proxy into
// every binary that reads a plan: hutch-init reads one and serves nothing.
package allow

import (
	"net/netip"
	"strings"
)

// Rule is one network.allow entry: a host name, a *.domain wildcard, an
// IP address or a CIDR network, with an optional port (without one, 80
// and 443).
type Rule struct {
	Text     string // as written
	Host     string // lower case; for a wildcard, the domain without "*."
	Wildcard bool
	Port     int // 0: 80 and 443
	// Prefix is set for an address (a /32 or /128) or a network: the
	// addresses a connection may go to without a name.
	Prefix netip.Prefix
}

// Matches reports whether a connection to host (a lower-case name or an
// address) and port is one r lets through.
func (r Rule) Matches(host string, port int) bool {
	if r.Port != 0 && r.Port != port || r.Port == 0 && port != 80 && port != 443 {
		return false
	}
	if r.Wildcard {
		return strings.HasSuffix(host, "."+r.Host)
	}
	if r.Prefix.IsValid() {
		a, err := netip.ParseAddr(host)
		return err == nil && r.Prefix.Contains(a.Unmap())
	}
	return host == r.Host
}
