package supervise

import (
	"github.com/hutch-sandbox/hutch/internal/sysctl"
	"golang.org/x/sys/unix"
)

// reserveNproc lowers this process's RLIMIT_NPROC to three quarters of
// itself while the sandbox's user namespace is made, and returns the undo.
// The kernel keeps, per user namespace, its creator's RLIMIT_NPROC at
// creation, and checks every process of the namespace, whatever its uid
// inside, against it: counted over all of the host user's processes. The
// per-uid bound inside (nprocLimit) cannot stop a command that switches
// uids; this one can, and leaves the host user a quarter of its limit to
// start processes with. An unlimited RLIMIT_NPROC gets half of
// kernel.threads-max (the kernel's own default for it) as the ceiling.
func reserveNproc() (undo func()) {
	var old unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NPROC, &old) != nil {
		return func() {}
	}
	cur := old.Cur
	if cur == unix.RLIM_INFINITY {
		if tm := sysctl.Read("/proc/sys/kernel/threads-max"); tm > 0 {
			cur = uint64(tm / 2)
		}
	}
	if cur == unix.RLIM_INFINITY || cur < 64 {
		return func() {}
	}
	lowered := old
	lowered.Cur = cur - cur/4
	if unix.Setrlimit(unix.RLIMIT_NPROC, &lowered) != nil {
		return func() {}
	}
	return func() { unix.Setrlimit(unix.RLIMIT_NPROC, &old) }
}
