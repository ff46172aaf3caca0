package proxy

import (
	"fmt"
	"net/netip"
	"strings"
)

// parseIPRule fills r when host (lower case, without its port) is an IP
// address or an ADDR/BITS network: ok says it was one.
func parseIPRule(r *Rule, host string) (ok bool, err error) {
	if strings.Contains(host, "/") {
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return true, fmt.Errorf("allow entry %q: %q is not a network in ADDR/BITS form", r.Text, host)
		}
		if p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())); !p.IsValid() {
			return true, fmt.Errorf("allow entry %q: %q is wider than the IPv4 addresses it maps", r.Text, host)
		}
		if m := p.Masked(); m != p {
			return true, fmt.Errorf("allow entry %q: %s has bits set beyond /%d: did you mean %s?", r.Text, host, p.Bits(), m)
		}
		r.Prefix, r.Host = p, p.String()
		return true, nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false, nil
	}
	if a.Zone() != "" {
		return true, fmt.Errorf("allow entry %q: an address with a zone cannot be reached from a sandbox", r.Text)
	}
	a = a.Unmap()
	r.Prefix, r.Host = netip.PrefixFrom(a, a.BitLen()), a.String()
	return true, nil
}

// unmapBits is what a prefix loses when its ::ffff:a.b.c.d address is
// read as a.b.c.d.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// ipAllowed reports whether an allow entry names addr, or a network
// holding it, on port.
func (s *Server) ipAllowed(addr netip.Addr, port int) bool {
	for _, r := range s.Rules {
		if r.Prefix.IsValid() && r.Matches(addr.Unmap().String(), port) {
			return true
		}
	}
	return false
}
