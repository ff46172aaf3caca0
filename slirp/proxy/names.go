package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"

	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/slirp/dns"
)

// SandboxDNS answers the sandbox's DNS in mode proxy (it is the
// dns.Resolver the supervisor serves 127.0.0.1:53 with): a name that some
// network.allow rule could match, on any port, gets the addresses the
// proxy itself would dial, through the same resolver and the same
// refusals; every other name is "no such name" at once, and a denial with
// protocol "dns".
type SandboxDNS struct {
	Proxy *Server
	synth dns.Synth
}

// Resolve is a dns.Resolver. With host_loopback, an allowed name whose
// answer is the host's loopback or link-local (which inside would be the
// sandbox's own) gets a made-up address of dns.SynthPrefix instead: the
// proxy dials such an address by its name.
func (d *SandboxDNS) Resolve(ctx context.Context, name string) ([]netip.Addr, error) {
	s := d.Proxy
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if why := s.decideName(name); why != "" {
		s.deny(name, 0, "dns", "", why)
		return nil, dns.ErrNoName
	}
	ips, err := s.lookup(ctx, name)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, dns.ErrNoName
		}
		return nil, err
	}
	var out []netip.Addr
	var refusal error
	synth := false
	for _, ip := range ips {
		if ip == nil {
			continue
		}
		if err := s.refused(name, ip); err != nil && !mutate.Off("dns-refused") {
			refusal = err
			continue
		}
		a, _ := netip.AddrFromSlice(ip)
		a = a.Unmap()
		if a.IsLoopback() || a.IsLinkLocalUnicast() {
			synth = true
			continue
		}
		out = append(out, a)
	}
	if synth {
		if a, ok := d.synth.Addr(name); ok {
			out = append([]netip.Addr{a}, out...)
		}
	}
	if len(out) == 0 {
		if refusal != nil {
			s.deny(name, 0, "dns", "", refusal.Error())
		}
		return nil, dns.ErrNoName
	}
	return out, nil
}

// nameAllowed reports whether some rule could match name, on any port.
func (s *Server) nameAllowed(name string) bool {
	for _, r := range s.Rules {
		if r.Wildcard && strings.HasSuffix(name, "."+r.Host) || !r.Wildcard && name == r.Host {
			return true
		}
	}
	return false
}

// lookup resolves host as dial does: the test hook, an IP literal, the
// injected resolver, else the host's.
func (s *Server) lookup(ctx context.Context, host string) ([]net.IP, error) {
	if a, ok := s.Resolve[host]; ok {
		return []net.IP{net.ParseIP(a)}, nil
	}
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}, nil
	}
	if s.LookupIP != nil {
		return s.LookupIP(ctx, host)
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		ips = append(ips, a.IP)
	}
	return ips, nil
}
