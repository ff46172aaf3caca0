package pid1

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/hutch-sandbox/hutch/sandbox/model"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
	"github.com/hutch-sandbox/hutch/slirp/redirect"
	"golang.org/x/sys/unix"
)

// sendRedirect makes network mode proxy transparent: nftables rules in the
// sandbox's namespace send every outbound TCP connection to the proxy's
// port and refuse other UDP (slirp/redirect). Init holds CAP_NET_ADMIN
// here, and does this before the command exists. IPv6 connections arrive
// at [::1], so a second listener is opened there and handed over. Where
// the rules cannot be installed, the run goes on with the explicit proxy
// alone and the supervisor says so: the sandbox is no more open for it,
// since without routes nothing leaves.
func sendRedirect(status *os.File, disabled bool) error {
	why := "disabled by the test binary's hook"
	if !disabled {
		why = ""
		if err := redirect.Install(model.ProxyPort, model.DNSPort); err != nil {
			why = err.Error()
		}
	}
	if why != "" {
		return sendStatus(status, wire.Status{Redirect: &wire.Redirect{Err: why}}, -1)
	}
	if l, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(model.ProxyPort))); err == nil {
		// Without IPv6 on lo there is no ::1 and nothing to listen for.
		f, err := l.(*net.TCPListener).File()
		l.Close()
		if err != nil {
			return err
		}
		err = sendStatus(status, wire.Status{ProxyListener: true}, int(f.Fd()))
		f.Close()
		if err != nil {
			return err
		}
	}
	fd, err := redirect.OpenReader()
	if err != nil {
		return fmt.Errorf("after installing the redirect rules: %w", err)
	}
	defer unix.Close(fd)
	return sendStatus(status, wire.Status{Redirect: &wire.Redirect{}}, fd)
}
