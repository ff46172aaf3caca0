package pid1

import (
	"fmt"
	"unsafe"

	"github.com/hutch-sandbox/hutch/internal/sysctl"
	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/psx"
)

var capNames = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// capMask turns capability names into a 64-bit set.
func capMask(names []string) (uint64, error) {
	var m uint64
	for _, n := range names {
		c, ok := capNames[n]
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		m |= 1 << c
	}
	return m, nil
}

// restrictThread reduces the calling OS thread (which the caller has
// locked) to keep: the bounding set, the permitted, effective and
// inheritable sets, no ambient set, and no_new_privs. A child forked from
// this thread inherits exactly that, and exec can give it nothing more.
// extra caps stay effective on the thread but are neither inherited nor
// in the bounding set: the forked child uses them to switch to the
// command's user, which drops them.
func restrictThread(keep, extra uint64, nnp bool) error {
	last := sysctl.LastCap()
	for c := uint(0); c <= last; c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			// A thread that holds no capability at all (hutch exec's stage
			// as your own uid) cannot drop any, and has none to lose; with
			// no_new_privs below, exec cannot give it any either.
			if err == unix.EPERM && keep|extra == 0 && noCapabilities() {
				break
			}
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(keep | extra), Permitted: uint32(keep | extra), Inheritable: uint32(keep)},
		{Effective: uint32((keep | extra) >> 32), Permitted: uint32((keep | extra) >> 32), Inheritable: uint32(keep >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("setting capabilities: %w", err)
	}
	if !nnp {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	return nil
}

// dropAllCaps empties init's capability sets on every thread once the
// command runs: init then only waits and forwards signals.
func dropAllCaps() error { return limitAllThreads(0, 0) }

// limitAllThreads cuts every thread of this process down to keep|extra
// (effective and permitted; keep inheritable) with no ambient set.
// Capabilities are per thread, so the call must reach them all. Without
// cgo that is syscall.AllThreadsSyscall; with cgo (a plain `go build` on a
// machine with a C compiler) Go refuses that call, and psx does the same
// through libc's threads (it signals each one, as glibc does for setuid).
// Either way a failure is an error: init must never keep its capabilities
// silently.
//
// Each call stops every thread and waits for each to run it (psx and
// AllThreadsSyscall alike), the larger part of init's own CPU in a
// loaded machine: so only the calls that change something are made.
// capset itself takes out of the ambient set whatever is no longer both
// permitted and inheritable (capabilities(7), "ambient"), which with
// keep == 0 (the default, and always when init drops its own) is
// everything: the explicit clear is then the same change made twice.
func limitAllThreads(keep, extra uint64) error {
	// prctl checks that its unused arguments are 0: Syscall6, whose extra
	// arguments are zeros in both implementations.
	if keep != 0 {
		if _, _, e := psx.Syscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); e != 0 {
			return fmt.Errorf("clearing init's ambient capabilities: %w", e)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	have := keep | extra
	data := [2]unix.CapUserData{
		{Effective: uint32(have), Permitted: uint32(have), Inheritable: uint32(keep)},
		{Effective: uint32(have >> 32), Permitted: uint32(have >> 32), Inheritable: uint32(keep >> 32)},
	}
	if _, _, e := psx.Syscall3(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("dropping init's capabilities: %w", e)
	}
	return nil
}

// noCapabilities reports whether the calling thread's permitted and
// ambient sets are empty.
func noCapabilities() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil {
		return false
	}
	for c := uint(0); c <= sysctl.LastCap(); c++ {
		if v, _ := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(c), 0, 0); v == 1 {
			return false
		}
	}
	return data[0].Permitted == 0 && data[1].Permitted == 0
}
