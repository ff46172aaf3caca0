package supervise

import (
	"fmt"
	"net"
	"os"

	"github.com/hutch-sandbox/hutch/slirp/dns"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
)

// dnsServer is the sandbox's resolver, served on the sockets init opened
// on its 127.0.0.1:53 (UDP and TCP). In network mode none it answers every
// lookup "no such host" and keeps the names for the hint at exit; in mode
// proxy it answers the names network.allow lets through with what the
// proxy would dial, records every answer in the run's name table (which
// the proxy reads), and answers every other name "no such host", a denial
// in the proxy's report.
func (ns *netSupervisor) dnsServer() *dns.Server {
	if ns.dnsSrv == nil {
		ns.dnsSrv = &dns.Server{Rec: &ns.dnsRec}
		if ns.proxy != nil {
			ns.dnsSrv = &dns.Server{Resolve: (&proxy.SandboxDNS{Proxy: ns.proxy}).Resolve, Table: &ns.names}
		}
	}
	return ns.dnsSrv
}

// serveDNS serves the UDP socket.
func (ns *netSupervisor) serveDNS(fd int) error {
	f := os.NewFile(uintptr(fd), "dns-socket")
	defer f.Close()
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return fmt.Errorf("serving the sandbox's DNS: %w", err)
	}
	ns.dns = pc
	go ns.dnsServer().ServeUDP(pc) // ends when close closes pc
	return nil
}

// serveDNSTCP serves the TCP listener.
func (ns *netSupervisor) serveDNSTCP(fd int) error {
	f := os.NewFile(uintptr(fd), "dns-listener")
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return fmt.Errorf("serving the sandbox's DNS over TCP: %w", err)
	}
	ns.dnsTCP = l
	go ns.dnsServer().ServeTCP(l) // ends when close closes l
	return nil
}

// lookups returns the names the command looked up with the network off.
func (ns *netSupervisor) lookups() []string {
	if ns == nil || ns.dns == nil || ns.proxy != nil {
		return nil
	}
	return ns.dnsRec.Names()
}

// learned returns what a learn run contacted; nil for any other run.
func (ns *netSupervisor) learned() *Learned {
	if ns == nil || ns.proxy == nil || ns.proxy.Learn == nil {
		return nil
	}
	uses, dropped := ns.proxy.Learn.Uses()
	return &Learned{Uses: uses, Dropped: dropped}
}

// Learned is what a learn run (network.learn) contacted.
type Learned struct {
	Uses []proxy.Use
	// Dropped counts destinations beyond the learner's bound.
	Dropped int
}
