package redirect

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// soOriginalDst is SO_ORIGINAL_DST (linux/netfilter_ipv4.h) and, at
// SOL_IPV6, IP6T_SO_ORIGINAL_DST: the same number.
const soOriginalDst = 80

// OriginalDst returns where a redirected connection was addressed before
// the rules sent it to the proxy: conntrack's record, asked through the
// accepted socket. A connection made to the listener itself (an explicit
// proxy client) gets the listener's own address back.
func OriginalDst(c net.Conn) (netip.AddrPort, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return netip.AddrPort{}, errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	local, _ := c.LocalAddr().(*net.TCPAddr)
	v6 := local != nil && local.IP.To4() == nil
	var ap netip.AddrPort
	var serr error
	err = rc.Control(func(fd uintptr) {
		var buf [unix.SizeofSockaddrInet6]byte
		level, size := unix.SOL_IP, uint32(unix.SizeofSockaddrInet4)
		if v6 {
			level, size = unix.SOL_IPV6, unix.SizeofSockaddrInet6
		}
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, uintptr(level), soOriginalDst,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		if e != 0 {
			serr = e
			return
		}
		port := binary.BigEndian.Uint16(buf[2:4])
		if v6 {
			a := netip.AddrFrom16([16]byte(buf[8:24]))
			ap = netip.AddrPortFrom(a, port)
		} else {
			ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(buf[4:8])), port)
		}
	})
	if err != nil {
		return netip.AddrPort{}, err
	}
	return ap, serr
}
