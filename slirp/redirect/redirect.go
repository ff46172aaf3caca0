// Package redirect makes a network namespace's outbound traffic go
// through hutch's proxy without the command's help: routes, so that a
// connect to any address gets as far as netfilter, and nftables rules
// (through netlink, google/nftables; no nft binary) that send every TCP
// connection not addressed to the namespace itself to the proxy's port on
// 127.0.0.1, DNS over UDP to hutch's resolver there, and record and refuse
// every other UDP datagram.
//
// Install runs inside the namespace with CAP_NET_ADMIN there (hutch-init).
// The proxy recovers each connection's original destination with
// SO_ORIGINAL_DST (OriginalDst). Denied UDP destinations are kept in
// bounded nftables sets that ReadUDP reads back, over a netfilter netlink
// socket that init opened inside and handed out.
//
// It knows nothing of sandboxes, profiles or the proxy's rules.
package redirect

import (
	"fmt"
	"net"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/hutch-sandbox/hutch/internal/mutate"
	"golang.org/x/sys/unix"
)

// TableName is the nftables table Install creates (family inet).
const TableName = "hutch"

// MaxUDP bounds each of the two sets of denied UDP destinations (IPv4,
// IPv6): the datagrams come from the command, and what it sprays must not
// grow anything without end. Once a set is full, further destinations are
// still refused, only no longer recorded.
const MaxUDP = 64

// Set names: IPv4 and IPv6 "daddr . dport" of refused UDP datagrams.
const (
	setUDP4 = "udp4"
	setUDP6 = "udp6"
)

// Install sets up the calling thread's network namespace (which must have
// lo up and nothing else): the table, then default routes over lo for IPv4
// and IPv6. Its loopback traffic is left alone: a service the command
// starts on 127.0.0.1 is reached directly. proxyPort receives all other
// TCP; dnsPort all other UDP to port 53.
func Install(proxyPort, dnsPort uint16) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: TableName})
	sets := map[string]nftables.SetDatatype{setUDP4: nftables.TypeIPAddr, setUDP6: nftables.TypeIP6Addr}
	for _, name := range []string{setUDP4, setUDP6} {
		key, err := nftables.ConcatSetType(sets[name], nftables.TypeInetService)
		if err != nil {
			return err
		}
		s := &nftables.Set{Table: t, Name: name, KeyType: key, Concatenation: true, Dynamic: true, Size: MaxUDP}
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("adding nftables set %s: %w", name, err)
		}
	}
	nat := c.AddChain(&nftables.Chain{Name: "nat", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest})
	c.AddRule(&nftables.Rule{Table: t, Chain: nat, Exprs: append(isLocal(), accept())})
	c.AddRule(&nftables.Rule{Table: t, Chain: nat, Exprs: append(l4proto(unix.IPPROTO_TCP), redirectTo(proxyPort)...)})
	c.AddRule(&nftables.Rule{Table: t, Chain: nat, Exprs: append(append(l4proto(unix.IPPROTO_UDP), dport(53)...), redirectTo(dnsPort)...)})

	// The filter chain runs after nat: what nat redirected is local by
	// now. Everything else not addressed to the namespace is refused, so a
	// rule that failed to redirect fails closed.
	filter := c.AddChain(&nftables.Chain{Name: "out", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter})
	c.AddRule(&nftables.Rule{Table: t, Chain: filter, Exprs: append(isLocal(), accept())})
	if !mutate.Off("udp-deny") {
		c.AddRule(&nftables.Rule{Table: t, Chain: filter, Exprs: recordUDP(unix.NFPROTO_IPV4, setUDP4, 16, 4)})
		c.AddRule(&nftables.Rule{Table: t, Chain: filter, Exprs: recordUDP(unix.NFPROTO_IPV6, setUDP6, 24, 16)})
		c.AddRule(&nftables.Rule{Table: t, Chain: filter, Exprs: []expr.Any{reject()}})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("installing nftables rules: %w", err)
	}
	// Routes last: without the rules they would send connections out
	// over lo to nowhere (a timeout) instead of failing at once.
	return addDefaultRoutes()
}

// isLocal loads "fib daddr type" and compares it with local.
func isLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

func accept() expr.Any { return &expr.Verdict{Kind: expr.VerdictAccept} }

// reject answers with ICMP port unreachable (a TCP reset for TCP): the
// command fails at once instead of waiting out a timeout.
func reject() expr.Any {
	return &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}
}

func l4proto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

func dport(p uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)},
	}
}

func redirectTo(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.Redir{RegisterProtoMin: 1},
	}
}

// recordUDP: for UDP of family fam, add "daddr . dport" to set, then
// reject. The address (addrLen bytes at addrOff in the network header) goes
// in register 1, the port in the 32-bit register after it, as nft lays
// out a concatenation. A full set makes the add fail, which ends this rule
// without its reject; the last rule rejects it then.
func recordUDP(fam byte, set string, addrOff, addrLen uint32) []expr.Any {
	portReg := uint32(unix.NFT_REG32_00) + addrLen/4
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: addrOff, Len: addrLen},
		&expr.Payload{DestRegister: portReg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Dynset{SrcRegKey: 1, SetName: set, Operation: uint32(unix.NFT_DYNSET_OP_ADD)},
		reject(),
	}
}

// SelfTest does in small, in the calling process's fresh user and network
// namespaces, what a proxy-mode sandbox does: lo up, Install, a listener on
// the proxy's port, a connect to a documentation address (which never
// leaves the namespace) that must arrive there with its original
// destination. step names what failed.
func SelfTest() (step string, err error) {
	if err := LoopbackUp(); err != nil {
		return "bringing lo up", err
	}
	if err := Install(3128, 53); err != nil {
		return "installing the rules", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:3128")
	if err != nil {
		return "listening", err
	}
	defer l.Close()
	c, err := net.DialTimeout("tcp", "192.0.2.1:80", 2*time.Second)
	if err != nil {
		return "connecting through the redirect", err
	}
	defer c.Close()
	a, err := l.Accept()
	if err != nil {
		return "accepting", err
	}
	defer a.Close()
	dst, err := OriginalDst(a)
	if err != nil {
		return "reading SO_ORIGINAL_DST", err
	}
	if dst.String() != "192.0.2.1:80" {
		return "reading SO_ORIGINAL_DST", fmt.Errorf("original destination %s, want 192.0.2.1:80", dst)
	}
	return "", nil
}

// LoopbackUp sets IFF_UP on lo in the calling thread's network
// namespace: hutch-init does it first in a new one, and the probe of
// the redirect in its throwaway namespace.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
