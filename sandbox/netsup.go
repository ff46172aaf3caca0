package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/slirp"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
)

// netSupervisor is the host side of a sandbox's network: the user-mode
// NAT helper, the allowlist proxy, and the published ports' listeners.
type netSupervisor struct {
	plan   *Plan
	slirp  *slirp.Slirp4netnsFeatures
	pasta  *slirp.PastaFeatures
	helper *slirp.Handle

	proxy   *proxy.Server
	proxyL  net.Listener
	proxyWG sync.WaitGroup

	listeners []net.Listener
	status    *os.File
	nextID    atomic.Uint64
	mu        sync.Mutex
	waiting   map[uint64]chan connResult
	conns     sync.WaitGroup
}

type connResult struct {
	conn net.Conn
	err  error
}

// prepareNet does everything that can fail before a namespace exists:
// probe the helper, parse the allowlist, take the published host ports.
func prepareNet(plan *Plan) (*netSupervisor, error) {
	ns := &netSupervisor{plan: plan, waiting: map[uint64]chan connResult{}}
	var err error
	switch plan.Network {
	case NetworkSlirp:
		if ns.slirp, err = slirp.ProbeSlirp4netns(); err != nil {
			return nil, err
		}
	case NetworkPasta:
		if ns.pasta, err = slirp.ProbePasta(); err != nil {
			return nil, err
		}
	case NetworkProxy:
		rules, err := proxy.ParseAllow(plan.Allow)
		if err != nil {
			return nil, err
		}
		ns.proxy = &proxy.Server{Rules: rules, AllowLoopback: plan.HostLoopback, Resolve: testResolver()}
	}
	if (ns.slirp != nil || ns.pasta != nil) && !tunUsable() {
		return nil, withHint(errors.New("/dev/net/tun cannot be opened, which "+plan.Network+" needs"),
			"make it usable as desktop distributions ship it: sudo chmod 0666 /dev/net/tun (hutch doctor checks this)")
	}
	for _, p := range plan.Ports {
		addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			ns.close()
			hint := fmt.Sprintf("another program holds %s; pick another host port in network.ports (or -p)", addr)
			if errors.Is(err, syscall.EACCES) {
				hint = "ports below 1024 need privileges on this machine; publish a higher host port, as in -p 8080:80"
			}
			return nil, withHint(fmt.Errorf("publishing port %s: %w", addr, err), "%s", hint)
		}
		ns.listeners = append(ns.listeners, l)
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

// testResolver reads HUTCH_PROXY_RESOLVE ("name=ip,name=ip"): a hook for
// tests, which have no DNS and no internet, to point an allowed name at a
// server on 127.0.0.1. It only ever affects the caller's own sandbox.
func testResolver() map[string]string {
	v := os.Getenv("HUTCH_PROXY_RESOLVE")
	if v == "" {
		return nil
	}
	m := map[string]string{}
	for _, kv := range strings.Split(v, ",") {
		if k, ip, ok := strings.Cut(kv, "="); ok && net.ParseIP(ip) != nil {
			m[strings.ToLower(k)] = ip
		}
	}
	return m
}

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

// serveProxy serves the listening socket init opened inside.
func (ns *netSupervisor) serveProxy(fd int) error {
	f := os.NewFile(uintptr(fd), "proxy-listener")
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return fmt.Errorf("serving the proxy: %w", err)
	}
	ns.proxyL = l
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
	for i, l := range ns.listeners {
		port := ns.plan.Ports[i].Port
		go func(l net.Listener) {
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
		}(l)
	}
}

func (ns *netSupervisor) join(c net.Conn, port int) {
	defer c.Close()
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
	data, _ := json.Marshal(request{Connect: &connRequest{ID: id, Port: port}})
	if err := unix.Sendmsg(int(ns.status.Fd()), data, nil, nil, 0); err != nil {
		return
	}
	var r connResult
	select {
	case r = <-ch:
	case <-time.After(15 * time.Second):
		return
	}
	if r.err != nil {
		return // nothing listens inside: the client sees the connection close
	}
	defer r.conn.Close()
	proxy.Pipe(c, r.conn)
}

// connected delivers init's answer to a connect request.
func (ns *netSupervisor) connected(rep *connReply, fd int) {
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
	return ns.proxy.Denials()
}

// close stops everything; it does not wait for the NAT helper's teardown.
func (ns *netSupervisor) close() {
	if ns == nil {
		return
	}
	for _, l := range ns.listeners {
		l.Close()
	}
	if ns.proxyL != nil {
		ns.proxyL.Close()
	}
	if ns.helper != nil {
		ns.helper.Close()
	}
}
