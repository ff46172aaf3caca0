package sandbox

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/sysctl"
	"github.com/hutch-sandbox/hutch/sandbox/seccomp"
)

var rlimitResources = map[string]int{
	"CORE": unix.RLIMIT_CORE, "NOFILE": unix.RLIMIT_NOFILE, "NPROC": unix.RLIMIT_NPROC,
	"FSIZE": unix.RLIMIT_FSIZE, "CPU": unix.RLIMIT_CPU, "AS": unix.RLIMIT_AS, "DATA": unix.RLIMIT_DATA,
}

// applyRlimits sets plan's rlimits on init itself, just before the command
// is forked: rlimits are per process and inherited. init needs none of what
// they bound (it opens no files and writes nothing once the command runs).
// A limit above the current hard limit is lowered to it: an unprivileged
// process cannot raise its hard limits, and the tighter bound stands.
func applyRlimits(rs []Rlimit) error {
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

// compileSeccomp builds the command's filter on the host side, before any
// namespace exists, so a bad profile fails fast and plainly.
func compileSeccomp(p *Plan) ([]unix.SockFilter, error) {
	var pol *seccomp.Policy
	switch p.Seccomp.Mode {
	case "off":
		return nil, nil
	case "default", "":
		pol = seccomp.Default(seccomp.Options{Nested: p.Seccomp.Nested})
	case "profile":
		data, err := os.ReadFile(p.Seccomp.Profile)
		if err != nil {
			return nil, withHint(fmt.Errorf("reading the seccomp profile: %w", err),
				`security.seccomp takes "default", "off" or the path of an OCI/Docker seccomp JSON file`)
		}
		if pol, err = seccomp.ParseOCI(data, p.Caps); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Seccomp.Profile, err)
		}
	default:
		return nil, fmt.Errorf("unknown seccomp mode %q", p.Seccomp.Mode)
	}
	return pol.Compile()
}

// InotifyLimits are the user.max_inotify_* sysctls of the sandbox's own
// user namespace. The kernel charges inotify instances and watches to
// each user namespace up the chain, against each level's limit: capped
// inside at half of the host's, a command that opens all it can leaves the
// host user the other half (without them, 128 instances held inside made
// the host user's own inotify_init fail with EMFILE). 0 leaves one unset.
type InotifyLimits struct {
	Instances int64 `json:"instances,omitempty"`
	Watches   int64 `json:"watches,omitempty"`
}

// inotifyLimits resolves limits.inotify_* against the host's limits.
func inotifyLimits(l Limits, host *Host) InotifyLimits {
	pick := func(set, hostMax int64) int64 {
		if set > 0 {
			return set
		}
		return hostMax / 2
	}
	return InotifyLimits{Instances: pick(l.InotifyInstances, host.InotifyInstances), Watches: pick(l.InotifyWatches, host.InotifyWatches)}
}

// setInotifyLimits writes them into the sandbox's user namespace. init
// runs it while it holds every capability there, through the host's /proc
// (the user sysctls a process sees and writes are its own namespace's),
// before the sandbox's /proc/sys is mounted read-only.
func setInotifyLimits(l InotifyLimits) error {
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

// nprocLimit is the command's RLIMIT_NPROC: limits.nproc, else
// limits.pids. Since Linux 5.14 the kernel counts RLIMIT_NPROC per user
// namespace and uid ("ucounts"): set inside the sandbox's fresh user
// namespace, it counts the sandbox's own processes and threads of that
// uid, not every process of the host user, so a fork bomb stops there and
// the host user can still start processes. It bounds each uid inside
// separately: a command that can switch uids (user "root" with a
// subordinate id map) gets the bound once per uid it uses.
func nprocLimit(l Limits) int64 {
	if l.NProc > 0 {
		return l.NProc
	}
	return l.Pids
}

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

// scratchBudget is the size of the one tmpfs behind /tmp, /var/tmp, the
// tmpfs home and filesystem.tmpfs: limits.tmpfs, else a quarter of RAM,
// or limits.memory when that is smaller.
func scratchBudget(l Limits, host *Host) int64 {
	if l.Tmpfs > 0 {
		return l.Tmpfs
	}
	b := host.MemTotal / 4
	if l.Memory > 0 && (b == 0 || l.Memory < b) {
		b = l.Memory
	}
	return b
}
