package pid1

import (
	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/timing"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// commandUsage is what the command's tree used, read right after reap
// returned the command: the wall time since forked (timing.Now when the
// fork returned) and getrusage(RUSAGE_CHILDREN) of this PID 1. That
// covers the command and every descendant reaped by then, by its parent
// or by us as an orphan; one still running when the command ends is
// killed with the sandbox and not counted. hutch-init's own work is not
// in it (RUSAGE_CHILDREN), nor, with the fuse driver, fuse-overlayfs
// (stage2, not init, reaps the command).
func commandUsage(forked int64) *wire.Usage {
	u := &wire.Usage{WallNS: timing.Now() - forked}
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_CHILDREN, &ru) == nil {
		u.UserUS = ru.Utime.Sec*1e6 + int64(ru.Utime.Usec)
		u.SysUS = ru.Stime.Sec*1e6 + int64(ru.Stime.Usec)
		u.MaxRSSKiB = ru.Maxrss // kilobytes on Linux
	}
	return u
}
