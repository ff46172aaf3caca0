package redirect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// addDefaultRoutes routes 0.0.0.0/0 and ::/0 over lo. Without a route a
// connect to another address fails with ENETUNREACH before netfilter sees
// a packet. lo is the only interface there is: this kernel may lack the
// dummy driver, and a packet that no rule redirects loops back to a
// namespace that does not forward it (and the filter chain refuses it
// first).
func addDefaultRoutes() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("opening rtnetlink: %w", err)
	}
	defer unix.Close(fd)
	lo, err := loIndex()
	if err != nil {
		return err
	}
	for _, fam := range []byte{unix.AF_INET, unix.AF_INET6} {
		rt := unix.RtMsg{Family: fam, Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_BOOT,
			Scope: unix.RT_SCOPE_LINK, Type: unix.RTN_UNICAST}
		body := (*[unix.SizeofRtMsg]byte)(unsafe.Pointer(&rt))[:]
		body = appendAttr(body, unix.RTA_OIF, binary.NativeEndian.AppendUint32(nil, lo))
		// The source is lo's own address: without one, a link-scope route
		// over lo picks none (127.0.0.1 has host scope) and the SYN goes
		// out from 0.0.0.0, which nothing answers.
		src := netip.IPv6Loopback().AsSlice()
		if fam == unix.AF_INET {
			src = netip.AddrFrom4([4]byte{127, 0, 0, 1}).AsSlice()
		}
		body = appendAttr(body, unix.RTA_PREFSRC, src)
		if err := request(fd, unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK, body, nil); err != nil {
			name := map[byte]string{unix.AF_INET: "IPv4", unix.AF_INET6: "IPv6"}[fam]
			return fmt.Errorf("adding the %s default route over lo: %w", name, err)
		}
	}
	return nil
}

func loIndex() (uint32, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("finding lo: %w", err)
	}
	return ifr.Uint32(), nil
}

func appendAttr(b []byte, typ uint16, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// request sends one netlink message on fd and reads the answer up to its
// ACK or NLMSG_DONE, passing each other message to each (if not nil).
func request(fd int, typ uint16, flags uint16, body []byte, each func(syscall.NetlinkMessage) error) error {
	const seq = 1
	hdr := unix.NlMsghdr{Len: uint32(unix.SizeofNlMsghdr + len(body)), Type: typ, Flags: unix.NLM_F_REQUEST | flags, Seq: seq}
	msg := append((*[unix.SizeofNlMsghdr]byte)(unsafe.Pointer(&hdr))[:unix.SizeofNlMsghdr:unix.SizeofNlMsghdr], body...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return errors.New("short netlink error")
				}
				if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
					return unix.Errno(-e)
				}
				return nil
			}
			if each != nil {
				if err := each(m); err != nil {
					return err
				}
			}
		}
	}
}

// UDPDest is one refused UDP destination.
type UDPDest struct {
	Addr netip.Addr
	Port int
}

// OpenReader opens a netfilter netlink socket in the calling thread's
// namespace, for ReadUDP. A process that holds CAP_NET_ADMIN over the
// namespace (the user namespace's owner: hutch's supervisor) may use it
// from outside, once init has dropped its own capabilities.
func OpenReader() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return -1, fmt.Errorf("opening a netfilter netlink socket: %w", err)
	}
	return fd, nil
}

// ReadUDP returns the UDP destinations the namespace's rules refused (at
// most MaxUDP of each family), read over fd from OpenReader.
func ReadUDP(fd int) ([]UDPDest, error) {
	var out []UDPDest
	for _, set := range []string{setUDP4, setUDP6} {
		body := []byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}
		body = appendAttr(body, unix.NFTA_SET_ELEM_LIST_TABLE, append([]byte(TableName), 0))
		body = appendAttr(body, unix.NFTA_SET_ELEM_LIST_SET, append([]byte(set), 0))
		typ := uint16(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETSETELEM)
		err := request(fd, typ, unix.NLM_F_DUMP|unix.NLM_F_ACK, body, func(m syscall.NetlinkMessage) error {
			if len(m.Data) < 4 {
				return nil
			}
			for _, key := range setKeys(m.Data[4:]) {
				if d, ok := parseKey(key); ok {
					out = append(out, d)
				}
			}
			return nil
		})
		if err != nil {
			return out, fmt.Errorf("reading nftables set %s: %w", set, err)
		}
	}
	return out, nil
}

// setKeys digs NFTA_SET_ELEM_LIST_ELEMENTS / NFTA_LIST_ELEM /
// NFTA_SET_ELEM_KEY / NFTA_DATA_VALUE out of a GETSETELEM answer.
func setKeys(b []byte) [][]byte {
	var keys [][]byte
	for _, list := range attrs(b, unix.NFTA_SET_ELEM_LIST_ELEMENTS) {
		for _, el := range attrs(list, unix.NFTA_LIST_ELEM) {
			for _, k := range attrs(el, unix.NFTA_SET_ELEM_KEY) {
				keys = append(keys, attrs(k, unix.NFTA_DATA_VALUE)...)
			}
		}
	}
	return keys
}

// attrs returns the payloads of the attributes of type typ in b.
func attrs(b []byte, typ uint16) [][]byte {
	var out [][]byte
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		t := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(b) {
			break
		}
		if t == typ {
			out = append(out, b[4:l])
		}
		l = (l + 3) &^ 3
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return out
}

// parseKey reads "daddr . dport": the address, then the port in network
// order, padded to 4 bytes.
func parseKey(k []byte) (UDPDest, bool) {
	switch len(k) {
	case 8, 20:
		a, _ := netip.AddrFromSlice(k[:len(k)-4])
		return UDPDest{Addr: a, Port: int(binary.BigEndian.Uint16(k[len(k)-4:]))}, true
	}
	return UDPDest{}, false
}
