package doctor

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/hutch-sandbox/hutch/internal/nsprobe"
	"github.com/hutch-sandbox/hutch/internal/sysctl"
	"github.com/hutch-sandbox/hutch/userns"
)

// hutch doctor: every check first gathers facts (gatherFacts, which
// touches the machine and tries the real thing where that is cheap), then
// judges them (diagnose, pure, so the verdicts and their fixes are table-
// tested). docs/doctor.md explains each check.

// CheckStatus is a check's verdict.
type CheckStatus string

const (
	// CheckOK: works.
	CheckOK CheckStatus = "ok"
	// CheckWarn: a sandbox runs, but a feature is missing or degraded.
	CheckWarn CheckStatus = "warn"
	// CheckFail: no sandbox can run until this is fixed.
	CheckFail CheckStatus = "fail"
)

// Check is one line of hutch doctor's report.
type Check struct {
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	Detail string      `json:"detail"`
	// Fix is what to do about a warn or fail, one command or sentence per
	// line; empty when there is nothing to do.
	Fix string `json:"fix"`
}

// Diagnosis is the whole report.
type Diagnosis struct {
	// OK is true when a basic sandbox can run here: no check failed.
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// Doctor checks whether this machine can run sandboxes and what each
// missing piece costs. It creates namespaces in child processes
// (hutch-probe, see nsprobe.Main), so main must dispatch nsprobe.Name.
func Doctor(ctx context.Context) *Diagnosis {
	return diagnose(gatherFacts(ctx))
}

// The check names, in report order.
const (
	checkUserNS    = "user namespaces"
	checkUser      = "user"
	checkSubIDs    = "subordinate ids"
	checkIDHelpers = "newuidmap/newgidmap"
	checkOverlay   = "kernel overlay"
	checkFuseOvl   = "fuse-overlayfs"
	checkDevFuse   = "/dev/fuse"
	checkSlirp     = "slirp4netns"
	checkPasta     = "pasta"
	checkTun       = "/dev/net/tun"
	checkCgroup    = "cgroup v2"
	checkRuntime   = "XDG_RUNTIME_DIR"
	checkSeccomp   = "seccomp"
	checkNetModes  = "network modes"
	checkOvlDriver = "overlay driver"
	checkImages    = "image store"
)

// CheckNames lists every check hutch doctor makes, in report order.
func CheckNames() []string {
	return []string{checkUserNS, checkUser, checkSubIDs, checkIDHelpers, checkOverlay,
		checkFuseOvl, checkDevFuse, checkOvlDriver, checkImages, checkSlirp, checkPasta, checkTun, checkNetModes, checkRedirect, checkSeccomp, checkCgroup, checkRuntime}
}

// diagnose judges the facts.
func diagnose(f *doctorFacts) *Diagnosis {
	d := &Diagnosis{Checks: []Check{
		checkUserNamespaces(f),
		checkRoot(f),
		checkSubordinateIDs(f),
		checkIDMapHelpers(f),
		checkKernelOverlay(f),
		checkProgram(checkFuseOvl, f.FuseOverlayfs, "fuse-overlayfs fuse3",
			"the overlay driver hutch falls back to when the kernel's cannot be used"),
		checkDevice(checkDevFuse, f.DevFuse, f.UID, "fuse-overlayfs cannot mount", "sudo modprobe fuse"),
		checkOverlayDriver(f),
		checkImageStore(f),
		checkProgram(checkSlirp, f.Slirp4netns, "slirp4netns", `network mode "slirp4netns" (user-mode NAT)`),
		checkProgram(checkPasta, f.Pasta, "passt", `network mode "pasta"`),
		checkDevice(checkTun, f.Tun, f.UID, "slirp4netns and pasta cannot create the sandbox's network device",
			"sudo modprobe tun\nif it is still missing: sudo mkdir -p /dev/net && sudo mknod -m 0666 /dev/net/tun c 10 200"),
		checkNetworkModes(f),
		checkRedirectPath(f),
		checkSeccompFilter(f),
		checkCgroupV2(f),
		checkRuntimeDir(f),
	}}
	d.OK = true
	for _, c := range d.Checks {
		if c.Status == CheckFail {
			d.OK = false
		}
	}
	return d
}

// who names the caller in messages and commands.
func (f *doctorFacts) who() string {
	if f.User != "" {
		return f.User
	}
	return "uid " + strconv.Itoa(f.UID)
}

func apparmorFix(exe string) string {
	if exe == "" {
		exe = "/usr/local/bin/hutch"
	}
	return "let hutch (only) create user namespaces with an AppArmor profile:\n" +
		"printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile hutch " + exe +
		" flags=(unconfined) {\\n  userns,\\n}\\n' | sudo tee /etc/apparmor.d/hutch\n" +
		"sudo apparmor_parser -r /etc/apparmor.d/hutch\n" +
		"or allow every program (less safe): " + strings.ReplaceAll(sysctl.Fix("kernel.apparmor_restrict_unprivileged_userns", "0"), "\n", "; ")
}

func checkUserNamespaces(f *doctorFacts) Check {
	c := Check{Name: checkUserNS}
	p := f.Sandbox
	if p.OK() {
		c.Status = CheckOK
		c.Detail = "created user, mount, pid, network, IPC and UTS namespaces and mounted a tmpfs and /proc in them"
		if f.UID == 0 {
			// Root gets through switches that stop everyone else.
			switch {
			case f.UnprivClone == 0:
				c.Status, c.Detail = CheckWarn, "root can create them, but kernel.unprivileged_userns_clone = 0 stops unprivileged users"
				c.Fix = sysctl.Fix("kernel.unprivileged_userns_clone", "1")
			case f.AppArmorRestrict == 1:
				c.Status, c.Detail = CheckWarn, "root can create them, but kernel.apparmor_restrict_unprivileged_userns = 1 stops unprivileged users unless an AppArmor profile allows hutch"
				c.Fix = apparmorFix(f.Exe)
			}
		}
		return c
	}
	c.Status = CheckFail
	if !p.Tried {
		c.Detail = "not tried"
		return c
	}
	switch {
	case p.Start && f.MaxUserNS == 0:
		c.Detail = "user.max_user_namespaces is 0: user namespaces are switched off"
		c.Fix = sysctl.Fix("user.max_user_namespaces", "15000")
	case p.Start && f.UnprivClone == 0:
		c.Detail = "kernel.unprivileged_userns_clone is 0: this kernel lets only root create user namespaces"
		c.Fix = sysctl.Fix("kernel.unprivileged_userns_clone", "1")
	case f.AppArmorRestrict == 1 && (p.Errno == syscall.EPERM || p.Errno == syscall.EACCES):
		// Ubuntu 23.10+: the namespace is created, but AppArmor takes every
		// capability in it from unconfined programs.
		c.Detail = fmt.Sprintf("AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1): %s: %s", p.Step, p.Err)
		c.Fix = apparmorFix(f.Exe)
	case p.Start && p.Errno == syscall.ENOSPC && f.MaxNS != nil:
		// Each kind of namespace has its own limit: name the one.
		c.Detail, c.Fix = sysctl.NSLimitProblem([]string{"user", "mount", "pid", "ipc", "uts", "net"}, f.MaxNS)
	case p.Start && p.Errno == syscall.ENOSPC:
		c.Detail = fmt.Sprintf("the limit on user namespaces (user.max_user_namespaces = %d) is reached", f.MaxUserNS)
		c.Fix = sysctl.Fix("user.max_user_namespaces", "15000")
	case p.Start && p.Errno == syscall.EINVAL:
		c.Detail = "the kernel lacks a namespace hutch needs (user, mount, pid, network, IPC or UTS): " + p.Err
		c.Fix = "use a kernel built with CONFIG_USER_NS, CONFIG_PID_NS, CONFIG_NET_NS, CONFIG_IPC_NS and CONFIG_UTS_NS (every distribution kernel has them)"
	case p.Start && (p.Errno == syscall.EPERM || p.Errno == syscall.EACCES):
		c.Detail = "the kernel refused to create a user namespace (" + p.Err + "); inside a container, its seccomp profile or security module may forbid it"
		c.Fix = "run hutch on the host, or in a container allowed to create user namespaces (docker: --security-opt seccomp=unconfined --security-opt apparmor=unconfined)"
	case p.Step == "mounting /proc":
		c.Detail = "user namespaces work, but the kernel refuses a new /proc (" + p.Err + "): the host's /proc is partly covered by other mounts, as inside some containers"
		c.Fix = "run hutch on the host, or in a container started with an unmasked /proc (docker: --security-opt systempaths=unconfined)"
	default:
		c.Detail = p.Step + ": " + p.Err
	}
	return c
}

func checkRoot(f *doctorFacts) Check {
	c := Check{Name: checkUser}
	if f.UID != 0 {
		c.Status = CheckOK
		c.Detail = fmt.Sprintf("running as %s (uid %d), not root", f.who(), f.UID)
		return c
	}
	c.Status = CheckWarn
	c.Detail = "running as root: hutch is meant for unprivileged users; a sandbox started by root runs as the host's root, so whatever escapes it is root"
	if f.SudoUser != "" {
		c.Fix = "run hutch as " + f.SudoUser + ", without sudo"
	} else {
		c.Fix = "run hutch as your own, unprivileged user"
	}
	return c
}

func checkSubordinateIDs(f *doctorFacts) Check {
	c := Check{Name: checkSubIDs}
	if f.SubIDErr != "" {
		c.Status, c.Detail = CheckWarn, f.SubIDErr
		return c
	}
	nu, ng := userns.Total(f.SubUIDs), userns.Total(f.SubGIDs)
	const want = 65536
	fix := func(uids, gids bool) string {
		if f.FreeSubID == 0 {
			return "add a range of 65536 ids for " + f.who() + " to /etc/subuid and /etc/subgid"
		}
		r := fmt.Sprintf("%d-%d", f.FreeSubID, f.FreeSubID+want-1)
		if f.User == "" {
			return fmt.Sprintf("add the line %d:%d:%d to /etc/subuid and /etc/subgid", f.UID, f.FreeSubID, want)
		}
		cmd := "sudo usermod"
		if uids {
			cmd += " --add-subuids " + r
		}
		if gids {
			cmd += " --add-subgids " + r
		}
		return cmd + " " + f.User
	}
	const cost = "hutch maps only your own id, so chown to other ids fails inside (apt, some package managers, images)"
	switch {
	case nu == 0 && ng == 0:
		c.Status = CheckWarn
		c.Detail = fmt.Sprintf("%s has no entries in /etc/subuid and /etc/subgid: %s", f.who(), cost)
		c.Fix = fix(true, true)
	case nu == 0 || ng == 0:
		missing, file := "uids", "/etc/subuid"
		if ng == 0 {
			missing, file = "gids", "/etc/subgid"
		}
		c.Status = CheckWarn
		c.Detail = fmt.Sprintf("%s has no subordinate %s in %s: %s", f.who(), missing, file, cost)
		c.Fix = fix(nu == 0, ng == 0)
	case nu < want || ng < want:
		c.Status = CheckWarn
		c.Detail = fmt.Sprintf("%s has only %d subordinate uids and %d gids: programs that use ids up to 65535 may fail", f.who(), nu, ng)
		c.Fix = fix(nu < want, ng < want)
	default:
		c.Status = CheckOK
		c.Detail = fmt.Sprintf("%s has %d uids from %s in /etc/subuid and %d gids from %s in /etc/subgid",
			f.who(), nu, ranges(f.SubUIDs), ng, ranges(f.SubGIDs))
	}
	return c
}

func ranges(rs []userns.Range) string {
	var s []string
	for _, r := range rs {
		s = append(s, strconv.FormatUint(uint64(r.Start), 10))
	}
	return strings.Join(s, ", ")
}

func checkIDMapHelpers(f *doctorFacts) Check {
	c := Check{Name: checkIDHelpers, Status: CheckWarn}
	const cost = "hutch maps only your own id"
	for _, h := range []struct {
		name string
		helperFact
	}{{"newuidmap", f.NewUIDMap}, {"newgidmap", f.NewGIDMap}} {
		if h.Path == "" {
			c.Detail = h.name + " is not installed: " + cost
			c.Fix = "sudo apt-get install uidmap"
			return c
		}
		if !h.Usable() {
			c.Detail = fmt.Sprintf("%s is neither setuid root nor has file capabilities, so it cannot write id maps: %s", h.Path, cost)
			c.Fix = "sudo apt-get install --reinstall uidmap    (Debian and Ubuntu ship it setuid root)\nor: sudo chmod u+s " + h.Path
			return c
		}
	}
	how := "setuid root"
	if !f.NewUIDMap.Setuid || !f.NewGIDMap.Setuid {
		how = "privileged (setuid root or file capabilities)"
	}
	paths := f.NewUIDMap.Path + " and " + f.NewGIDMap.Path + " are " + how
	switch {
	case !f.IDMap.Tried:
		c.Status = CheckOK
		c.Detail = paths + " (not tried: no subordinate ids)"
	case f.IDMap.OK():
		c.Status = CheckOK
		c.Detail = fmt.Sprintf("%s, and mapped your own id with %d subordinate uids and %d gids into a test namespace", paths,
			userns.Total(f.SubUIDs), userns.Total(f.SubGIDs))
	default:
		c.Detail = fmt.Sprintf("%s, but mapping your subordinate ids failed (%s: %s): %s", paths, f.IDMap.Step, f.IDMap.Err, cost)
		c.Fix = "check the lines for " + f.who() + " in /etc/subuid and /etc/subgid"
	}
	return c
}

func checkKernelOverlay(f *doctorFacts) Check {
	c := Check{Name: checkOverlay, Status: CheckWarn}
	p := f.Overlay
	const fallback = "hutch uses fuse-overlayfs for overlays instead (see below)"
	switch {
	case p.OK():
		c.Status = CheckOK
		c.Detail = "mounted an overlay (userxattr) in a user namespace and deleted a lower directory through it"
	case !p.Tried:
		c.Detail = "not tried: user namespaces do not work"
	case p.Step == "mounting" && p.Errno == syscall.ENODEV:
		c.Detail = "the kernel has no overlay filesystem: " + fallback
		c.Fix = "sudo modprobe overlay"
	case p.Step == "mounting" && (p.Errno == syscall.EINVAL || p.Errno == syscall.EPERM):
		c.Detail = fmt.Sprintf("the kernel (Linux %s) refused an overlay with userxattr in a user namespace (%s), which needs Linux 5.11 or later: %s",
			f.Kernel, p.Err, fallback)
		c.Fix = "none needed if fuse-overlayfs works; a Linux 5.11+ kernel mounts overlays in user namespaces"
	default:
		c.Detail = fmt.Sprintf("%s: %s: %s", p.Step, p.Err, fallback)
	}
	return c
}

func checkProgram(name string, p programFact, pkg, what string) Check {
	c := Check{Name: name, Status: CheckWarn}
	if p.Path == "" {
		c.Detail = fmt.Sprintf("%s is not installed: %s is unavailable", name, what)
		c.Fix = "sudo apt-get install " + pkg
		return c
	}
	version := "version " + p.Version
	if p.Version == "" {
		version = "version not reported"
	}
	if len(p.Lacks) > 0 {
		c.Detail = fmt.Sprintf("%s (%s) lacks %s, which hutch needs: %s is unavailable", p.Path, version, strings.Join(p.Lacks, ", "), what)
		c.Fix = "install a newer " + name
		return c
	}
	c.Status = CheckOK
	c.Detail = fmt.Sprintf("%s, %s", p.Path, version)
	return c
}

// checkDevice judges a device the caller must open read-write. Root opens
// anything, so for root the verdict is whether everyone else can.
func checkDevice(name string, d deviceFact, uid int, cost, missingFix string) Check {
	c := Check{Name: name, Status: CheckWarn}
	mode := fmt.Sprintf("mode %04o, owned by %s", d.Mode, d.Owner)
	chmod := fmt.Sprintf("sudo chmod 0666 %s\n(distributions ship it 0666; the chmod lasts until the next boot)", d.Path)
	othersRW := d.Mode&0o006 == 0o006
	switch {
	case !d.Exists:
		c.Detail = d.Path + " does not exist: " + cost
		c.Fix = missingFix
	case (d.Errno == syscall.EACCES || d.Errno == syscall.EPERM) && !othersRW && d.UID != uint32(uid):
		who, _, _ := strings.Cut(d.Owner, ":")
		c.Detail = fmt.Sprintf("%s is %s: only %s can open it, so %s", d.Path, mode, who, cost)
		c.Fix = chmod
	case d.Errno != 0:
		c.Detail = fmt.Sprintf("%s is %s, but opening it failed (%v): %s", d.Path, mode, d.Errno, cost)
		if d.Errno == syscall.EPERM {
			c.Detail += "; inside a container, its device rules may forbid it"
		}
	case uid == 0 && !othersRW:
		c.Detail = fmt.Sprintf("root can open %s, but it is %s, so unprivileged users cannot: for them, %s", d.Path, mode, cost)
		c.Fix = chmod
	default:
		c.Status = CheckOK
		c.Detail = fmt.Sprintf("%s opens for reading and writing (%s)", d.Path, mode)
	}
	return c
}

func checkCgroupV2(f *doctorFacts) Check {
	cg := f.Cgroup
	c := Check{Name: checkCgroup, Status: CheckWarn}
	const cost = "memory, pids and cpu limits will be unavailable"
	const scope = "run hutch in a delegated cgroup: systemd-run --user --scope -p Delegate=yes hutch run ..."
	const unify = "boot with systemd.unified_cgroup_hierarchy=1 on the kernel command line (cgroup v2 only)"
	var missing, passed []string
	for _, want := range limitControllers {
		if !slices.Contains(cg.Controllers, want) {
			missing = append(missing, want)
		}
		if slices.Contains(cg.Subtree, want) {
			passed = append(passed, want)
		}
	}
	hybrid := ""
	if cg.Mount != "" && !cg.Unified {
		hybrid = fmt.Sprintf("cgroup v2 is mounted at %s beside cgroup v1 (a hybrid setup); ", cg.Mount)
	}
	switch {
	case cg.Mount == "":
		c.Detail = "cgroup v2 is not mounted (cgroup v1 only): " + cost
		c.Fix = unify
	case cg.Own == "" || cg.Owner < 0:
		c.Detail = hybrid + "cannot find this process's cgroup v2: " + cost
	case cg.Owner != f.UID || !cg.Writable:
		c.Detail = fmt.Sprintf("%syour cgroup %s is not delegated to you (owned by uid %d): %s", hybrid, cg.Own, cg.Owner, cost)
		c.Fix = scope
		if hybrid != "" {
			c.Fix = unify + "\nthen " + scope
		}
	case len(missing) > 0:
		c.Detail = fmt.Sprintf("%syou own your cgroup %s, but the %s %s not delegated to it: %s",
			hybrid, cg.Own, andList(missing), plural(len(missing), "controller is", "controllers are"), cost)
		c.Fix = "delegate them to user sessions, as rootless podman and docker need too:\n" +
			"sudo mkdir -p /etc/systemd/system/user@.service.d\n" +
			"printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf\n" +
			"sudo systemctl daemon-reload, then log in again"
		if hybrid != "" {
			c.Fix = unify
		}
	case len(passed) < len(limitControllers) && cg.OtherProcs:
		c.Detail = fmt.Sprintf("your cgroup %s holds other processes (your shell, say), so hutch cannot pass %s on to a sandbox's cgroup: %s",
			cg.Own, andList(limitControllers), cost)
		c.Fix = scope
	default:
		c.Status = CheckOK
		c.Detail = fmt.Sprintf("your cgroup %s is delegated to you with the memory, pids and cpu controllers: limits work", cg.Own)
	}
	return c
}

// andList joins "a", "b", "c" as "a, b and c".
func andList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func checkRuntimeDir(f *doctorFacts) Check {
	r := f.Runtime
	c := Check{Name: checkRuntime, Status: CheckWarn}
	fallback := "hutch keeps its run state in " + r.Dir + " instead"
	dir := fmt.Sprintf("/run/user/%d", f.UID)
	create := fmt.Sprintf("log in through a session that sets it (systemd-logind makes %s), or make one:\n"+
		"sudo install -d -m 0700 -o %d -g %d %s\nexport XDG_RUNTIME_DIR=%s", dir, f.UID, f.GID, dir, dir)
	switch {
	case r.Env == "":
		c.Detail = "XDG_RUNTIME_DIR is not set: " + fallback
		c.Fix = create
	case !filepath.IsAbs(r.Env):
		c.Detail = fmt.Sprintf("XDG_RUNTIME_DIR=%s is not an absolute path: %s", r.Env, fallback)
		c.Fix = create
	case !r.Exists || !r.IsDir:
		c.Detail = fmt.Sprintf("XDG_RUNTIME_DIR=%s is not a directory: %s", r.Env, fallback)
		c.Fix = create
	case int(r.UID) != f.UID:
		c.Detail = fmt.Sprintf("XDG_RUNTIME_DIR=%s belongs to uid %d, not you: %s", r.Env, r.UID, fallback)
		c.Fix = create
	case r.Mode != 0o700:
		c.Detail = fmt.Sprintf("XDG_RUNTIME_DIR=%s is mode %04o, not 0700, so others can look in; hutch keeps its run state in %s, made 0700",
			r.Env, r.Mode, r.Dir)
		c.Fix = "chmod 0700 " + r.Env
	default:
		c.Status = CheckOK
		c.Detail = fmt.Sprintf("%s is yours, mode 0700: hutch keeps its run state in %s", r.Env, r.Dir)
	}
	return c
}

// checkImageStore says whether layers can be unpacked where images are
// stored: overlay whiteouts are character devices 0/0 (which Linux lets
// anyone make since 5.8) and opaque directories carry user.* xattrs.
func checkImageStore(f *doctorFacts) Check {
	st := f.Images
	c := Check{Name: checkImages, Status: CheckWarn}
	fix := "set XDG_DATA_HOME to a directory on a local file system (ext4, xfs, btrfs; tmpfs on Linux 6.6+), where images are stored"
	switch {
	case st.Err != "":
		c.Detail = fmt.Sprintf("cannot try %s: %s; images cannot be stored", st.Dir, st.Err)
		c.Fix = fix
	case st.Whiteout != "":
		c.Detail = fmt.Sprintf("the file system of %s refuses overlay whiteouts (a device 0/0: %s), which image layers that delete files need", st.Dir, st.Whiteout)
		c.Fix = fix + "; whiteouts need Linux 5.8+"
	case st.Xattr != "":
		c.Detail = fmt.Sprintf("the file system of %s refuses user.* xattrs (%s), which image layers that replace a directory need", st.Dir, st.Xattr)
		c.Fix = fix
	default:
		c.Status = CheckOK
		c.Detail = fmt.Sprintf("images are stored in %s, which takes overlay whiteouts and user.* xattrs", st.Dir)
	}
	return c
}

// checkNetworkModes sums up which network modes work here.
func checkNetworkModes(f *doctorFacts) Check {
	tun := f.Tun.Exists && f.Tun.Errno == 0
	works := []string{"none", "proxy", "host"}
	var missing []string
	for _, m := range []struct {
		name string
		p    programFact
	}{{"slirp4netns", f.Slirp4netns}, {"pasta", f.Pasta}} {
		switch {
		case m.p.Path == "" || len(m.p.Lacks) > 0:
			missing = append(missing, m.name+" (not installed or too old)")
		case !tun:
			missing = append(missing, m.name+" (/dev/net/tun)")
		default:
			works = append(works, m.name)
		}
	}
	c := Check{Name: checkNetModes, Status: CheckOK, Detail: "these work here: " + strings.Join(works, ", ")}
	if len(missing) > 0 {
		c.Status = CheckWarn
		c.Detail += "; not: " + strings.Join(missing, ", ")
		c.Fix = "see the slirp4netns, pasta and /dev/net/tun lines above"
	}
	return c
}

// checkSeccompFilter reports whether hutch's syscall filter can be used.
func checkSeccompFilter(f *doctorFacts) Check {
	if f.Seccomp == "" {
		return Check{Name: checkSeccomp, Status: CheckOK,
			Detail: "hutch's default filter installs, and refuses keyctl as it should"}
	}
	return Check{Name: checkSeccomp, Status: CheckWarn,
		Detail: "hutch's default syscall filter cannot be installed: " + f.Seccomp + "; sandboxes will refuse to start unless run with --seccomp off",
		Fix:    "use a kernel built with CONFIG_SECCOMP_FILTER (every distribution kernel is)"}
}

// checkOverlayDriver says what filesystem.overlay = "auto" picks here.
func checkOverlayDriver(f *doctorFacts) Check {
	fuse := f.FuseOverlayfs.Path != "" && f.DevFuse.Exists && f.DevFuse.Errno == 0
	c := Check{Name: checkOvlDriver, Status: CheckOK}
	switch {
	case f.Overlay.OK() && fuse:
		c.Detail = `auto picks the kernel's overlay; "fuse" works too`
	case f.Overlay.OK():
		c.Detail = `auto picks the kernel's overlay; "fuse" does not work here (see above)`
	case fuse:
		c.Detail = "auto picks fuse-overlayfs (slower on many small files): the kernel's overlay does not work here"
	default:
		c.Status = CheckWarn
		c.Detail = `no overlay driver works: project = "overlay", home = "overlay" and sessions are unavailable`
		c.Fix = "see the kernel overlay, fuse-overlayfs and /dev/fuse lines above"
	}
	return c
}

// probeOutcome is what doctor learned from one hutch-probe run.
type probeOutcome = nsprobe.Outcome
