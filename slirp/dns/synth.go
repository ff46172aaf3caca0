package dns

import (
	"net/netip"
	"strings"
	"sync"
)

// SynthPrefix holds the addresses hutch's DNS makes up (RFC 2544's
// benchmarking range, which no real service uses). With host_loopback, an
// allowed name may resolve on the host to its loopback or link-local
// addresses, which inside the sandbox would mean the sandbox's own: the
// sandbox gets a made-up address instead, and the proxy dials the name.
var SynthPrefix = netip.MustParsePrefix("198.18.0.0/15")

// Synth gives each name one made-up address of SynthPrefix, the same for
// the whole run, at most MaxTableAddrs of them. It is safe for concurrent
// use.
type Synth struct {
	mu     sync.Mutex
	byName map[string]netip.Addr
	next   netip.Addr
}

// Addr is name's made-up address; false once MaxTableAddrs names have one.
func (s *Synth) Addr(name string) (netip.Addr, bool) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.byName[name]; ok {
		return a, true
	}
	if len(s.byName) >= MaxTableAddrs {
		return netip.Addr{}, false
	}
	if s.byName == nil {
		s.byName = map[string]netip.Addr{}
		s.next = SynthPrefix.Addr().Next() // 198.18.0.1
	}
	a := s.next
	s.next = s.next.Next()
	s.byName[name] = a
	return a, true
}

// IsSynthetic reports whether a is one of the made-up addresses.
func IsSynthetic(a netip.Addr) bool { return SynthPrefix.Contains(a.Unmap()) }
