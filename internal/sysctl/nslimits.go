// Package sysctl reads the kernel's tunables that decide whether a sandbox
// can start (namespace limits, inotify, threads) and words the command that
// changes one. It is a leaf: the doctor, the planner (ProbeHost) and the
// supervisor's error hints use it; it imports nothing of hutch, and never
// writes a sysctl itself.
package sysctl

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Each kind of namespace has its own limit, user.max_<kind>_namespaces,
// and creating any of them past its limit (or with the limit at 0) fails
// with ENOSPC: a hint must name the kind whose limit stopped the clone,
// not blame user namespaces for a network namespace switched off.

// nsKinds maps a plan's namespace names to their sysctl names and to
// what users call them.
var nsKinds = []struct{ ns, sysctl, what string }{
	{"user", "user", "user"},
	{"mount", "mnt", "mount"},
	{"pid", "pid", "pid"},
	{"ipc", "ipc", "IPC"},
	{"uts", "uts", "UTS"},
	{"net", "net", "network"},
	{"cgroup", "cgroup", "cgroup"},
}

// NSLimits reads user.max_<kind>_namespaces for each kind (-1 when the
// file is missing).
func NSLimits() map[string]int {
	m := map[string]int{}
	for _, k := range nsKinds {
		m[k.ns] = Read("/proc/sys/user/max_" + k.sysctl + "_namespaces")
	}
	return m
}

// NSLimitProblem explains an ENOSPC from creating the namespaces in
// wanted, given the limits: the kinds switched off (limit 0) by name,
// else the limits that may have been reached. fix is the sysctl command.
func NSLimitProblem(wanted []string, limits map[string]int) (detail, fix string) {
	want := map[string]bool{}
	for _, w := range wanted {
		want[w] = true
	}
	var off, all []string
	for _, k := range nsKinds {
		if !want[k.ns] {
			continue
		}
		v, ok := limits[k.ns]
		if !ok || v < 0 {
			continue
		}
		key := "user.max_" + k.sysctl + "_namespaces"
		if v == 0 {
			off = append(off, k.what)
			if fix == "" {
				fix = Fix(key, "15000")
			}
			if k.ns == "net" {
				fix += "\nor run with --network host, which needs no network namespace"
			}
			if detail == "" {
				detail = fmt.Sprintf("%s is 0: %s namespaces are switched off", key, k.what)
			}
			continue
		}
		all = append(all, fmt.Sprintf("%s = %d", key, v))
	}
	if len(off) > 1 {
		detail += fmt.Sprintf(" (and %s namespaces too)", strings.Join(off[1:], ", "))
	}
	if detail != "" {
		return detail, fix
	}
	return "a limit on namespaces is reached (" + strings.Join(all, ", ") + ")",
		"raise the one that is reached, e.g.: " + Fix("user.max_user_namespaces", "15000")
}

// Read returns the integer in a /proc/sys file, or -1 when the file is
// missing or holds something else.
func Read(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return -1
	}
	return n
}

// Fix is the command that sets a sysctl now and after reboots.
func Fix(key, value string) string {
	return fmt.Sprintf("sudo sysctl -w %s=%s\necho %s=%s | sudo tee /etc/sysctl.d/90-hutch.conf", key, value, key, value)
}

// LastCap is the highest capability the running kernel knows (40 when
// /proc does not say). It is read once per process: callers loop up to it,
// and the kernel's value cannot change while it runs.
func LastCap() uint { return lastCap() }

var lastCap = sync.OnceValue(func() uint {
	if n := Read("/proc/sys/kernel/cap_last_cap"); n > 0 {
		return uint(n)
	}
	return 40
})
