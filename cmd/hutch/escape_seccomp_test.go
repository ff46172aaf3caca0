package main

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hutch-sandbox/hutch/internal/testenv"
	"github.com/hutch-sandbox/hutch/sandbox/seccomp"
)

// seccompGroups are the default filter's rule groups (the names the
// mutations "seccomp-GROUP" switch off) and the syscalls each denies
// with EPERM. TestSeccompGroupsMatchPolicy keeps this list equal to
// seccomp.Default; the arg-conditioned rules (TIOCSTI, personality, user
// namespaces through clone and unshare: group "userns") have attacks of
// their own below.
var seccompGroups = map[string][]string{
	"keyring": {"keyctl", "add_key", "request_key"},
	"kernel": {"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
		"create_module", "bpf", "perf_event_open", "userfaultfd", "lookup_dcookie",
		"iopl", "ioperm", "swapon", "swapoff", "reboot", "acct", "syslog", "_sysctl",
		"uselib", "quotactl", "quotactl_fd", "nfsservctl", "vhangup", "get_kernel_syms", "query_module"},
	"handles":  {"open_by_handle_at"},
	"io_uring": {"io_uring_setup", "io_uring_enter", "io_uring_register"},
	"mount": {"mount", "umount", "umount2", "pivot_root", "setns", "chroot",
		"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr"},
}

// groupNames are a group's syscalls that this architecture has.
func groupNames(group string) []string {
	var out []string
	for _, n := range seccompGroups[group] {
		if seccomp.Known(n) {
			out = append(out, n)
		}
	}
	return out
}

// TestSeccompGroupsMatchPolicy: every syscall the default filter denies
// outright is in seccompGroups, and nothing else is.
func TestSeccompGroupsMatchPolicy(t *testing.T) {
	var want, got []string
	for _, r := range seccomp.Default(seccomp.Options{}).Rules {
		if len(r.Args) == 0 && r.Action == seccomp.Errno(1) {
			want = append(want, r.Names...)
		}
	}
	for _, names := range seccompGroups {
		got = append(got, names...)
	}
	want = slices.DeleteFunc(want, func(n string) bool { return n == "personality" })
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("seccompGroups names:\n%v\nseccomp.Default denies:\n%v", got, want)
	}
}

// TestEscapeSeccompGroups tries every syscall of every rule group of the
// default filter, with arguments the kernel would refuse, so that only
// seccomp answers EPERM: with the filter off the same calls get EBADF,
// EFAULT or EINVAL (the positive control, which proves each group's check
// can fail). Capabilities, namespaces and masks are tested without the
// filter elsewhere; this is the filter alone.
func TestEscapeSeccompGroups(t *testing.T) {
	testenv.RequireUserNS(t)
	groups := make([]string, 0, len(seccompGroups))
	for g := range seccompGroups {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		names := groupNames(g)
		args := append([]string{"run", "--user", "root", "--", "./probe", "-want", "EPERM", "sys"}, names...)
		out, err := probeCmd(t, args...).CombinedOutput()
		wantVerdict(t, "seccomp group "+g, out, err)

		// The control: without the filter, at least one of the group's
		// calls ends otherwise.
		args = append([]string{"run", "--user", "root", "--seccomp", "off", "--", "./probe", "-want", "EPERM", "sys"}, names...)
		out, _ = probeCmd(t, args...).CombinedOutput()
		if !strings.Contains(string(out), "NOT-TRIED") && !strings.Contains(string(out), "UNEXPECTED") {
			t.Errorf("seccomp group %s: with --seccomp off every call still gives EPERM, so the check above cannot fail:\n%s", g, out)
		}
	}
	// The arg-conditioned rules, each with an attack that succeeds (or
	// fails otherwise) without the filter.
	for _, c := range [][]string{
		{"-want", "EPERM", "tiocsti", "-1"},     // seccomp-tty; else EBADF
		{"-want", "EPERM", "personality"},       // seccomp-personality; else it succeeds
		{"-want", "EPERM", "userns"},            // seccomp-userns (clone); else it succeeds
		{"-want", "EPERM", "unshare-userns"},    // seccomp-userns (unshare); else EINVAL
		{"-want", "ENOSYS", "sys", "clone3"},    // seccomp-userns; else E2BIG
		{"-want", "EPERM", "sys", "chroot"},     // seccomp-mount, as yourself too
		{"-want", "EPERM", "keyctl"},            // seccomp-keyring, a real call
		{"-want", "EPERM", "io_uring"},          // seccomp-io_uring, a real call
		{"-want", "EPERM", "open_by_handle_at"}, // seccomp-handles
	} {
		out, err := probeCmd(t, append([]string{"run", "--", "./probe"}, c...)...).CombinedOutput()
		wantVerdict(t, strings.Join(c, " "), out, err)
	}
}
