package pid1

import (
	"fmt"
	"os"
	"syscall"

	"github.com/hutch-sandbox/hutch/sandbox/model"
	"golang.org/x/sys/unix"
)

var rlimitResources = map[string]int{
	"CORE": unix.RLIMIT_CORE, "NOFILE": unix.RLIMIT_NOFILE, "NPROC": unix.RLIMIT_NPROC,
	"FSIZE": unix.RLIMIT_FSIZE, "CPU": unix.RLIMIT_CPU, "AS": unix.RLIMIT_AS, "DATA": unix.RLIMIT_DATA,
	"STACK": unix.RLIMIT_STACK, "MEMLOCK": unix.RLIMIT_MEMLOCK, "LOCKS": unix.RLIMIT_LOCKS,
	"SIGPENDING": unix.RLIMIT_SIGPENDING, "MSGQUEUE": unix.RLIMIT_MSGQUEUE, "NICE": unix.RLIMIT_NICE,
	"RTPRIO": unix.RLIMIT_RTPRIO, "RTTIME": unix.RLIMIT_RTTIME, "RSS": unix.RLIMIT_RSS,
}

// applyRlimits sets plan's rlimits on init itself, just before the command
// is forked: rlimits are per process and inherited. init needs none of what
// they bound (it opens no files and writes nothing once the command runs).
// A limit above the current hard limit is lowered to it: an unprivileged
// process cannot raise its hard limits, and the tighter bound stands.
func applyRlimits(rs []model.Rlimit) error {
	for _, r := range rs {
		res, ok := rlimitResources[r.Resource]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", r.Resource)
		}
		var cur syscall.Rlimit
		if err := syscall.Getrlimit(res, &cur); err != nil {
			return err
		}
		want := syscall.Rlimit{Cur: r.Soft, Max: r.Hard}
		if want.Max > cur.Max {
			want.Max = cur.Max
		}
		if want.Cur > want.Max {
			want.Cur = want.Max
		}
		// syscall.Setrlimit, not unix: it also drops Go's saved NOFILE
		// limit, which exec would otherwise restore in the child.
		if err := syscall.Setrlimit(res, &want); err != nil {
			return fmt.Errorf("setting rlimit %s to %d: %w", r.Resource, r.Soft, err)
		}
	}
	return nil
}

// setInotifyLimits writes them into the sandbox's user namespace. init
// runs it while it holds every capability there, through the host's /proc
// (the user sysctls a process sees and writes are its own namespace's),
// before the sandbox's /proc/sys is mounted read-only.
func setInotifyLimits(l model.InotifyLimits) error {
	for _, s := range []struct {
		name string
		v    int64
	}{{"max_inotify_instances", l.Instances}, {"max_inotify_watches", l.Watches}} {
		if s.v <= 0 {
			continue
		}
		if err := os.WriteFile("/proc/sys/user/"+s.name, []byte(fmt.Sprint(s.v)), 0); err != nil {
			return fmt.Errorf("setting user.%s to %d in the sandbox's user namespace: %w", s.name, s.v, err)
		}
	}
	return nil
}
