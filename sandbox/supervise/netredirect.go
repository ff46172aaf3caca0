package supervise

import (
	"net/netip"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/sandbox/wire"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
	"github.com/hutch-sandbox/hutch/slirp/redirect"
)

// NoRedirect keeps network mode proxy to its fallback, the explicit proxy
// alone, as on a kernel without nftables NAT in a user namespace. Only the
// test binary sets it (cmd/hutch/hooks_test.go, from
// HUTCH_TEST_NO_REDIRECT); a release binary reads no such variable.
var NoRedirect bool

// redirected takes init's word on the redirect rules: on success, the
// netfilter socket to read refused UDP from at exit; otherwise the
// fallback, said once per boot.
func (s *supervisor) redirected(r *wire.Redirect, fd int) {
	ns := s.net
	if r.Err != "" || fd < 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		if s.warn != nil && firstWarning(ns.plan.StateRoot, "proxy-fallback") {
			s.warn("network = \"proxy\" is not transparent here: " + r.Err + "; only programs that honour HTTP_PROXY/HTTPS_PROXY reach the allowed hosts (hutch doctor checks this)")
		}
		return
	}
	ns.nftFD = fd
}

// udpDenials reads back what the redirect rules refused: UDP to anywhere
// but the sandbox itself and hutch's DNS. Each destination is reported
// once (the set holds no count), named when the sandbox resolved a name
// to it.
func (ns *netSupervisor) udpDenials() []proxy.Denial {
	if ns.nftFD < 0 {
		return nil
	}
	dests, _ := redirect.ReadUDP(ns.nftFD)
	out := make([]proxy.Denial, 0, len(dests))
	now := time.Now()
	for _, d := range dests {
		name := ""
		if names := ns.proxy.Names.Names(d.Addr); len(names) > 0 {
			name = names[0]
		}
		out = append(out, proxy.Denial{Host: d.Addr.String(), Name: name, Port: d.Port, Proto: "udp", Count: 1, First: now,
			Reason: "UDP to " + netip.AddrPortFrom(d.Addr, uint16(d.Port)).String() + " is not allowed: only TCP and DNS leave the sandbox"})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Host < out[j].Host || out[i].Host == out[j].Host && out[i].Port < out[j].Port
	})
	return out
}
