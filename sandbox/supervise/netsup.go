package supervise

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
	"github.com/hutch-sandbox/hutch/slirp"
	"github.com/hutch-sandbox/hutch/slirp/dns"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
)

// netSupervisor is the host side of a sandbox's network: the user-mode
// NAT helper, the allowlist proxy, and the published ports' listeners.
type netSupervisor struct {
	plan   *sandbox.Plan
	slirp  *slirp.Slirp4netnsFeatures
	pasta  *slirp.PastaFeatures
	helper *slirp.Handle

	proxy   *proxy.Server
	proxyL  []net.Listener // 127.0.0.1:3128 inside; [::1]:3128 with the redirect rules
	proxyWG sync.WaitGroup
	nftFD   int // netfilter netlink socket inside (netredirect.go); -1 without

	dns    net.PacketConn // modes none and proxy: the sandbox's resolver (netdns.go)
	dnsTCP net.Listener
	dnsSrv *dns.Server
	dnsRec dns.Recorder
	names  dns.Table // which names the sandbox resolved to which addresses

	published []published
	status    *os.File
	nextID    atomic.Uint64
	mu        sync.Mutex
	waiting   map[uint64]chan connResult
	conns     sync.WaitGroup
}

// published is one published host port: a TCP listener or a UDP socket,
// and the port inside it reaches.
type published struct {
	l    net.Listener
	pc   net.PacketConn
	port int
}

type connResult struct {
	conn net.Conn
	err  error
}

// prepareNet does everything that can fail before a namespace exists:
// probe the helper, parse the allowlist, take the published host ports.
func prepareNet(plan *sandbox.Plan) (*netSupervisor, error) {
	ns := &netSupervisor{plan: plan, waiting: map[uint64]chan connResult{}, nftFD: -1}
	var err error
	switch plan.Network {
	case sandbox.NetworkSlirp:
		if ns.slirp, err = slirp.ProbeSlirp4netns(); err != nil {
			return nil, err
		}
	case sandbox.NetworkPasta:
		if ns.pasta, err = slirp.ProbePasta(); err != nil {
			return nil, err
		}
	case sandbox.NetworkProxy:
		ns.proxy = &proxy.Server{Rules: plan.Resolved.Allow, AllowLoopback: plan.HostLoopback, Resolve: ProxyResolve, Names: &ns.names}
		if plan.Learn {
			ns.proxy.Learn = &proxy.Learner{}
		}
	}
	if (ns.slirp != nil || ns.pasta != nil) && !tunUsable() {
		return nil, hint.With(errors.New("/dev/net/tun cannot be opened, which "+plan.Network+" needs"),
			"make it usable as desktop distributions ship it: sudo chmod 0666 /dev/net/tun (hutch doctor checks this)")
	}
	for _, p := range plan.Ports {
		addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
		pub := published{port: p.Port}
		var err error
		if p.Proto == "udp" {
			pub.pc, err = net.ListenPacket("udp", addr)
		} else {
			pub.l, err = net.Listen("tcp", addr)
		}
		if err != nil {
			ns.close()
			tip := fmt.Sprintf("another program holds %s; pick another host port in network.ports (or -p)", addr)
			if errors.Is(err, syscall.EACCES) {
				tip = "ports below 1024 need privileges on this machine; publish a higher host port, as in -p 8080:80"
			}
			return nil, hint.With(fmt.Errorf("publishing port %s/%s: %w", addr, p.Proto, err), "%s", tip)
		}
		ns.published = append(ns.published, pub)
	}
	return ns, nil
}

func tunUsable() bool {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// ProxyResolve overrides DNS answers for the proxy: tests, which have no
// DNS and no internet, point an allowed name at a server on 127.0.0.1.
// Only the test binary sets it (cmd/hutch/hooks_test.go, from
// HUTCH_PROXY_RESOLVE); a release binary reads no such variable. Its
// answers are checked as DNS answers are: loopback only with
// network.host_loopback.
var ProxyResolve map[string]string

// needsHelper says whether init must wait for a network helper.
func (ns *netSupervisor) needsHelper() bool { return ns.slirp != nil || ns.pasta != nil }

// startHelper connects init's namespace; runDir is the run's private dir.
func (ns *netSupervisor) startHelper(pid int, runDir string) error {
	cfg := slirp.Config{PID: pid, HostLoopback: ns.plan.HostLoopback}
	var err error
	switch {
	case ns.slirp != nil:
		ns.helper, err = slirp.StartSlirp4netns(ns.slirp, cfg)
	case ns.pasta != nil:
		ns.helper, err = slirp.StartPasta(ns.pasta, cfg, runDir)
	}
	return err
}

// helperDone is closed when the NAT helper exits; nil without one.
func (ns *netSupervisor) helperDone() (name string, done <-chan struct{}) {
	if ns == nil || ns.helper == nil {
		return "", nil
	}
	name = "slirp4netns"
	if ns.pasta != nil {
		name = "pasta"
	}
	return name, ns.helper.Done()
}

// serveProxy serves the listening socket init opened inside.
func (ns *netSupervisor) serveProxy(fd int) error {
	f := os.NewFile(uintptr(fd), "proxy-listener")
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return fmt.Errorf("serving the proxy: %w", err)
	}
	ns.proxyL = append(ns.proxyL, l)
	ns.proxyWG.Add(1)
	go func() {
		defer ns.proxyWG.Done()
		ns.proxy.Serve(l)
	}()
	return nil
}

// forward starts accepting on the published ports; each connection is
// joined to one that init opens inside.
func (ns *netSupervisor) forward(status *os.File) {
	ns.status = status
	for _, pub := range ns.published {
		if pub.pc != nil {
			go ns.relayUDP(pub.pc, pub.port)
			continue
		}
		go func(l net.Listener, port int) {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				ns.conns.Add(1)
				go func() {
					defer ns.conns.Done()
					ns.join(c, port)
				}()
			}
		}(pub.l, pub.port)
	}
}

func (ns *netSupervisor) join(c net.Conn, port int) {
	defer c.Close()
	inside, err := ns.connectInside(port, "tcp")
	if err != nil {
		return // nothing listens inside: the client sees the connection close
	}
	defer inside.Close()
	proxy.Pipe(c, inside)
}

// udpIdle is how long a UDP flow lives without a datagram either way, as
// docker's userland proxy keeps them.
const udpIdle = 90 * time.Second

// relayUDP relays datagrams between host clients and the port inside: one
// connected socket inside per client address, so that replies find their
// way back, dropped after udpIdle of silence.
func (ns *netSupervisor) relayUDP(pc net.PacketConn, port int) {
	var mu sync.Mutex
	flows := map[string]net.Conn{}
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			mu.Lock()
			for _, c := range flows {
				c.Close()
			}
			mu.Unlock()
			return
		}
		key := from.String()
		mu.Lock()
		inside := flows[key]
		mu.Unlock()
		if inside == nil {
			if inside, err = ns.connectInside(port, "udp"); err != nil {
				continue // nothing inside: the datagram is lost, as UDP's are
			}
			mu.Lock()
			flows[key] = inside
			mu.Unlock()
			go func(inside net.Conn, to net.Addr) {
				b := make([]byte, 65536)
				for {
					inside.SetReadDeadline(time.Now().Add(udpIdle))
					m, err := inside.Read(b)
					if err != nil {
						var ne net.Error
						if errors.As(err, &ne) && ne.Timeout() {
							break
						}
						if errors.Is(err, net.ErrClosed) {
							return
						}
						// ECONNREFUSED: nothing listens (yet); keep the flow.
						continue
					}
					pc.WriteTo(b[:m], to)
				}
				mu.Lock()
				delete(flows, to.String())
				mu.Unlock()
				inside.Close()
			}(inside, from)
		}
		inside.Write(buf[:n])
	}
}

// connectInside asks init for a socket connected to port on the sandbox's
// loopback.
func (ns *netSupervisor) connectInside(port int, proto string) (net.Conn, error) {
	id := ns.nextID.Add(1)
	ch := make(chan connResult, 1)
	ns.mu.Lock()
	ns.waiting[id] = ch
	ns.mu.Unlock()
	defer func() {
		ns.mu.Lock()
		delete(ns.waiting, id)
		ns.mu.Unlock()
	}()
	data, _ := json.Marshal(wire.Request{Connect: &wire.ConnRequest{ID: id, Port: port, Proto: proto}})
	if err := unix.Sendmsg(int(ns.status.Fd()), data, nil, nil, 0); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.conn, r.err
	case <-time.After(15 * time.Second):
		return nil, errors.New("the sandbox did not answer")
	}
}

// connected delivers init's answer to a connect request.
func (ns *netSupervisor) connected(rep *wire.ConnReply, fd int) {
	var res connResult
	if rep.Err != "" || fd < 0 {
		res.err = errors.New(rep.Err)
		if fd >= 0 {
			unix.Close(fd)
		}
	} else {
		f := os.NewFile(uintptr(fd), "published")
		res.conn, res.err = net.FileConn(f)
		f.Close()
	}
	ns.mu.Lock()
	ch := ns.waiting[rep.ID]
	ns.mu.Unlock()
	if ch == nil {
		if res.conn != nil {
			res.conn.Close()
		}
		return
	}
	ch <- res
}

// denials returns what the proxy refused.
func (ns *netSupervisor) denials() []proxy.Denial {
	if ns == nil || ns.proxy == nil {
		return nil
	}
	return append(ns.proxy.Denials(), ns.udpDenials()...)
}

// close stops everything; it does not wait for the NAT helper's teardown.
func (ns *netSupervisor) close() {
	if ns == nil {
		return
	}
	for _, p := range ns.published {
		if p.l != nil {
			p.l.Close()
		}
		if p.pc != nil {
			p.pc.Close()
		}
	}
	for _, l := range ns.proxyL {
		l.Close()
	}
	if ns.nftFD >= 0 {
		unix.Close(ns.nftFD)
		ns.nftFD = -1
	}
	if ns.dns != nil {
		ns.dns.Close()
	}
	if ns.dnsTCP != nil {
		ns.dnsTCP.Close()
	}
	if ns.helper != nil {
		ns.helper.Close()
	}
}
