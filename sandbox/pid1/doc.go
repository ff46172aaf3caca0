// Package pid1 is everything that runs inside a sandbox's namespaces: the
// hidden entries hutch-init (PID 1 of the new user, mount, pid, ipc, uts,
// net and cgroup namespaces), hutch-stage2 (the command's own PID 1 under
// the fuse overlay driver) and hutch exec's stage. It reads a resolved
// plan from the supervisor (wire.Config on fd 3), builds the new root
// (tmpfs, binds, overlays, generated /etc files, /proc, /dev), sets up the
// network inside, applies rlimits and inotify limits, drops capabilities,
// installs the seccomp filter, starts the command, reaps orphans and
// reports back (wire.Status on fd 4).
//
// It must never import the supervisor side (sandbox/supervise) nor the
// session store: what it needs from the caller's side arrives in the
// plan and on its file descriptors. It never re-reads flags, TOML or the
// host's configuration; it trusts nothing the command can write.
package pid1
