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
	fd, err := loopbackSocket(unix.SOCK_STREAM, model.ProxyPort)
	if err != nil {
		return fmt.Errorf("opening the proxy's port inside: %w", err)
	}
	defer unix.Close(fd)
	return sendStatus(status, wire.Status{ProxyListener: true}, fd)
}

// sendDNSSockets opens the DNS port on the sandbox's loopback (network
// modes none and proxy), UDP and TCP, and hands both sockets to the
// supervisor, which answers the queries (slirp/dns): "no such host" for
// every name in mode none, the allowed names' addresses in mode proxy.
// Done by init, which holds CAP_NET_BIND_SERVICE in the namespace's user
// namespace, before the command exists, so the command cannot take the
// port first.
func sendDNSSockets(status *os.File) error {
	fd, err := loopbackSocket(unix.SOCK_DGRAM, model.DNSPort)
	if err != nil {
		return fmt.Errorf("opening the DNS port inside: %w", err)
	}
	err = sendStatus(status, wire.Status{DNSSocket: true}, fd)
	unix.Close(fd)
	if err != nil {
		return err
	}
	if fd, err = loopbackSocket(unix.SOCK_STREAM, model.DNSPort); err != nil {
		return fmt.Errorf("opening the DNS port inside (TCP): %w", err)
	}
	defer unix.Close(fd)
	return sendStatus(status, wire.Status{DNSListener: true}, fd)
}

// loopbackSocket opens a socket of typ bound to 127.0.0.1:port, listening
// when it is a stream socket: what net.Listen("tcp") and
// net.ListenPacket("udp") make (non-blocking, SO_REUSEADDR on a listener),
// without the net package's detours (an MPTCP socket tried first, the
// somaxconn file read, a poller registration), since init only hands the
// socket on.
func loopbackSocket(typ, port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if typ == unix.SOCK_STREAM {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
	}
	if err == nil && typ == unix.SOCK_STREAM {
		// The kernel caps the backlog at the namespace's somaxconn.
		err = unix.Listen(fd, 4096)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
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
