package pid1

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/hutch-sandbox/hutch/sandbox/model"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
	"golang.org/x/sys/unix"
)

// sendProxyListener opens the allowlist proxy's port on the sandbox's
// loopback and hands the listening socket to the supervisor, which serves
// it from the host's namespaces. Done by init, before the command exists,
// so the command cannot take the port first.
func sendProxyListener(status *os.File) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(model.ProxyPort)))
	if err != nil {
		return fmt.Errorf("opening the proxy's port inside: %w", err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		return err
	}
	defer f.Close()
	return sendStatus(status, wire.Status{ProxyListener: true}, int(f.Fd()))
}

// sendDNSSockets opens the DNS port on the sandbox's loopback (network
// modes none and proxy), UDP and TCP, and hands both sockets to the
// supervisor, which answers the queries (slirp/dns): "no such host" for
// every name in mode none, the allowed names' addresses in mode proxy.
// Done by init, which holds CAP_NET_BIND_SERVICE in the namespace's user
// namespace, before the command exists, so the command cannot take the
// port first.
func sendDNSSockets(status *os.File) error {
	if err := sendDNSSocket(status); err != nil {
		return err
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(model.DNSPort)))
	if err != nil {
		return fmt.Errorf("opening the DNS port inside (TCP): %w", err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		return err
	}
	defer f.Close()
	return sendStatus(status, wire.Status{DNSListener: true}, int(f.Fd()))
}

func sendDNSSocket(status *os.File) error {
	pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(model.DNSPort)))
	if err != nil {
		return fmt.Errorf("opening the DNS port inside: %w", err)
	}
	defer pc.Close()
	f, err := pc.(*net.UDPConn).File()
	if err != nil {
		return err
	}
	defer f.Close()
	return sendStatus(status, wire.Status{DNSSocket: true}, int(f.Fd()))
}

// serveConnects answers the supervisor's connect requests for published
// ports: connect to the port on the sandbox's loopback, send the socket.
func serveConnects(status *os.File) {
	buf := make([]byte, 4096)
	for {
		n, _, _, _, err := unix.Recvmsg(int(status.Fd()), buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return
		}
		var req wire.Request
		if json.Unmarshal(buf[:n], &req) != nil || req.Connect == nil {
			continue
		}
		go func(r wire.ConnRequest) {
			proto := "tcp"
			if r.Proto == "udp" {
				proto = "udp"
			}
			c, err := net.DialTimeout(proto, net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)), 10*time.Second)
			if err != nil {
				sendStatus(status, wire.Status{Conn: &wire.ConnReply{ID: r.ID, Err: err.Error()}}, -1)
				return
			}
			defer c.Close()
			f, err := c.(interface{ File() (*os.File, error) }).File()
			if err != nil {
				sendStatus(status, wire.Status{Conn: &wire.ConnReply{ID: r.ID, Err: err.Error()}}, -1)
				return
			}
			defer f.Close()
			sendStatus(status, wire.Status{Conn: &wire.ConnReply{ID: r.ID}}, int(f.Fd()))
		}(*req.Connect)
	}
}
