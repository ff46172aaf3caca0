package supervise

import (
	"fmt"
	"net"
	"os"

	"github.com/hutch-sandbox/hutch/slirp/dns"
)

// serveDNS answers, in network mode none, the lookups sent to the socket
// init opened on the sandbox's 127.0.0.1:53: "no such host" at once, the
// names kept for the hint at exit. Nothing is resolved.
func (ns *netSupervisor) serveDNS(fd int) error {
	f := os.NewFile(uintptr(fd), "dns-socket")
	defer f.Close()
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return fmt.Errorf("serving the sandbox's DNS: %w", err)
	}
	ns.dns = pc
	go dns.Serve(pc, &ns.dnsRec) // ends when close closes pc
	return nil
}

// lookups returns the names the command looked up with the network off.
func (ns *netSupervisor) lookups() []string {
	if ns == nil || ns.dns == nil {
		return nil
	}
	return ns.dnsRec.Names()
}
