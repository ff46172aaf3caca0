package sandbox

import "github.com/hutch-sandbox/hutch/sandbox/model"

// InotifyLimits bound inotify in the sandbox's user namespace (sandbox/model).
type InotifyLimits = model.InotifyLimits

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
