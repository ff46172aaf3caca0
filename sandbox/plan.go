package sandbox

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/internal/paths"
	"github.com/hutch-sandbox/hutch/slirp"
	"github.com/hutch-sandbox/hutch/userns"
)

// Plan is a Spec resolved against a Host: every path absolute, every id map
// laid out, every mount in order. It is what hutch-init receives, and what
// `hutch run --dry-run --json` prints.
type Plan struct {
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	Cwd      string   `json:"cwd"`
	Hostname string   `json:"hostname"`

	// UID and GID are the command's ids inside the sandbox.
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	// Groups are the command's supplementary groups (an image user's, from
	// its /etc/group); none otherwise.
	Groups []uint32 `json:"groups,omitempty"`
	// UIDMap and GIDMap are written by the supervisor: through newuidmap and
	// newgidmap when MapHelpers is set, else directly (one id only).
	UIDMap     []userns.Mapping `json:"uid_map"`
	GIDMap     []userns.Mapping `json:"gid_map"`
	MapHelpers bool             `json:"map_helpers"`
	NewUIDMap  string           `json:"newuidmap,omitempty"`
	NewGIDMap  string           `json:"newgidmap,omitempty"`

	// Namespaces are the ones hutch-init is cloned into.
	Namespaces []string `json:"namespaces"`
	Mounts     []Mount  `json:"mounts"`
	// Caps is the command's capability set (permitted, effective,
	// inheritable and bounding); empty for user "self".
	Caps []string `json:"caps"`

	Network string `json:"network"`
	// HostLoopback lets the sandbox reach the host's 127.0.0.1 (slirp4netns:
	// at 10.0.2.2; pasta: at the gateway address; proxy: allowed names may
	// resolve to it).
	HostLoopback bool `json:"host_loopback,omitempty"`
	// Allow is the proxy's allowlist (mode "proxy").
	Allow []string `json:"allow,omitempty"`
	// Ports are published from the host into the sandbox's loopback.
	Ports       []Port `json:"ports,omitempty"`
	TTY         string `json:"tty"`
	PreserveFDs int    `json:"preserve_fds"`
	// StateRoot is the directory holding per-run state directories.
	StateRoot string `json:"state_root"`
	// Create are host directories Launch makes (0700) when missing, before
	// anything is mounted: the binds of caches marked "+PATH".
	Create []string `json:"create,omitempty"`
	// Sockets are the host sockets inside binds left reachable; init
	// covers every other one it finds (sockets.go).
	Sockets []string `json:"sockets,omitempty"`

	// Seccomp is the filter installed right before the command's exec.
	Seccomp SeccompPlan `json:"seccomp"`
	// Rlimits are set on the command (core is always 0 unless asked).
	Rlimits []Rlimit `json:"rlimits"`
	// Cgroup limits need a delegated cgroup v2; LimitsRequired makes their
	// absence an error rather than a warning.
	Cgroup         CgroupLimits `json:"cgroup"`
	LimitsRequired bool         `json:"limits_required,omitempty"`
	// LimitsQuiet drops the warning that they are not enforced.
	LimitsQuiet bool `json:"limits_quiet,omitempty"`
	// Timeout kills the sandbox after this long (exit status 124).
	Timeout time.Duration `json:"timeout,omitempty"`
	// KillGrace is how long the command has after a forwarded SIGINT,
	// SIGTERM or SIGHUP (or the timeout's SIGTERM) before SIGKILL.
	KillGrace time.Duration `json:"kill_grace"`
	// ScratchSize is the one tmpfs that every Shared tmpfs mount is a
	// directory of (limits.tmpfs); 0 is the kernel's default, half of RAM.
	ScratchSize int64 `json:"scratch_size,omitempty"`
	// Inotify bounds inotify in the sandbox's own user namespace (limits.go).
	Inotify InotifyLimits `json:"inotify"`
	// Notes are things the user should know about how the plan differs
	// from what was asked (printed by the CLI).
	Notes []string `json:"notes,omitempty"`
	// GitAfter are checked on the host once the command has ended (git.go):
	// files that would send git elsewhere, which no mount can keep from
	// being created.
	GitAfter []GitCheck `json:"git_after,omitempty"`
	// Layers is set when anything is overlaid (overlay.go).
	Layers *LayersPlan `json:"layers,omitempty"`
	// Image is set when the root is an image (image.go): / is then the
	// image's overlay, writable, instead of a read-only tmpfs.
	Image *PlanImage `json:"image,omitempty"`
}

// SeccompPlan says which filter the command gets.
type SeccompPlan struct {
	// Mode is "default" (hutch's policy), "off", or "profile" (Profile is
	// the path of an OCI/Docker seccomp JSON file).
	Mode    string `json:"mode"`
	Profile string `json:"profile,omitempty"`
	// Nested allows new user namespaces and mounts inside.
	Nested bool `json:"nested,omitempty"`
}

// Rlimit is one resource limit, by its name in prlimit(1): NOFILE, NPROC,
// FSIZE, CORE.
type Rlimit struct {
	Resource string `json:"resource"`
	Soft     uint64 `json:"soft"`
	Hard     uint64 `json:"hard"`
}

// CgroupLimits are enforced through a cgroup v2 child of the caller's own,
// delegated cgroup. Zero means unlimited.
type CgroupLimits struct {
	Memory int64   `json:"memory,omitempty"` // bytes: memory.max (and memory.swap.max = 0)
	Pids   int64   `json:"pids,omitempty"`   // pids.max
	CPU    float64 `json:"cpu,omitempty"`    // CPUs: cpu.max
}

// Mount kinds.
const (
	MountBind    = "bind"       // Src bound at Dst (recursively)
	MountTmpfs   = "tmpfs"      // an empty tmpfs at Dst
	MountProc    = "proc"       // procfs of the sandbox's pid namespace
	MountSysfs   = "sysfs"      // sysfs of the sandbox's net namespace, read-only
	MountDevpts  = "devpts"     // a new devpts instance
	MountMqueue  = "mqueue"     // POSIX message queues of the ipc namespace
	MountSymlink = "symlink"    // a symlink at Dst pointing to Src
	MountFile    = "file"       // a generated file with Data at Dst
	MountHide    = "hide"       // Dst masked: an empty read-only dir or file
	MountRO      = "remount-ro" // Dst (already visible) made read-only, with its submounts
	MountSeal    = "seal"       // the mount at Dst (one of ours) made read-only, not its submounts
)

// Mount is one step in building the sandbox's root. Steps run in order;
// Dst is the path inside the sandbox.
type Mount struct {
	Kind     string `json:"kind"`
	Src      string `json:"src,omitempty"`
	Dst      string `json:"dst"`
	RO       bool   `json:"ro,omitempty"`
	Dev      bool   `json:"dev,omitempty"`      // keep device nodes usable (binds of /dev files)
	Mode     uint32 `json:"mode,omitempty"`     // tmpfs root mode
	Size     int64  `json:"size,omitempty"`     // tmpfs size in bytes; 0 is the kernel's default, half of RAM
	Data     string `json:"data,omitempty"`     // file contents, for MountFile
	Optional bool   `json:"optional,omitempty"` // skip when Src (or Dst, for hide) is missing
	Layer    string `json:"layer,omitempty"`    // the session layer of an overlay (overlay.go)
	// Lower lists an overlay's lower directories, top first, when there
	// are several (an image's layers); else Src is the one.
	Lower []string `json:"lower,omitempty"`
	// Shared: this tmpfs is a directory of the plan's one scratch tmpfs
	// (Plan.ScratchSize), so that all of them share one budget.
	Shared bool `json:"shared,omitempty"`
}

// Directories of the host root bound read-only when present: the system,
// but nothing that holds users' data or the host's runtime state.
var systemDirs = paths.SystemDirs

// defaultEnv is the allowlist of host variables a command sees.
var defaultEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_*", "TZ", "COLORTERM", "NO_COLOR"}

// secretPaths, relative to home, are always masked when a bind would make
// them visible: credentials that a dependency's install script should never
// read.
var secretPaths = []string{
	".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube", ".docker/config.json",
	".netrc", ".npmrc", ".pypirc", ".git-credentials", ".config/gh", ".config/hub",
	".local/share/keyrings", ".password-store", ".mozilla", ".config/google-chrome",
	".config/chromium", ".cargo/credentials", ".cargo/credentials.toml", ".gem/credentials",
	".vault-token", ".terraform.d/credentials.tfrc.json", ".config/hutch",
}

// defaultCaps is what a "root" user keeps inside: the file-owning set that
// container runtimes grant by default, without CAP_SYS_ADMIN, CAP_NET_ADMIN
// or CAP_NET_RAW.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_SETFCAP",
}

// Sizes of the small tmpfs mounts: /dev/shm as podman and docker size it,
// /run for pid files and sockets.
const (
	shmSize = 64 << 20
	runSize = 16 << 20
)

// DefaultPath is PATH inside when the host has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// NewPlan resolves spec against host. It is pure: it reads nothing but its
// arguments.
func NewPlan(spec Spec, host *Host) (*Plan, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	fs := spec.Filesystem
	p := &Plan{
		Hostname:    spec.Process.Hostname,
		Network:     spec.Network.Mode,
		TTY:         spec.TTY,
		PreserveFDs: spec.PreserveFDs,
		StateRoot:   host.RuntimeDir,
	}
	expand := func(s string) string {
		if s == "~" {
			return host.Home
		}
		if strings.HasPrefix(s, "~/") {
			return filepath.Join(host.Home, s[2:])
		}
		return filepath.Clean(s)
	}

	for _, c := range fs.Create {
		p.Create = append(p.Create, expand(c))
	}

	img := host.Image
	if ImageRef(spec) != "" && img == nil {
		return nil, fmt.Errorf("the image %s was not opened before planning", ImageRef(spec))
	}
	if ImageRef(spec) == "" {
		img = nil
	}

	// Identity and id maps.
	uid, gid := uint32(host.UID), uint32(host.GID)
	p.UID, p.GID = uid, gid
	if spec.Process.User == UserRoot {
		p.UID, p.GID = 0, 0
		p.Caps = append([]string(nil), defaultCaps...)
	}
	p.UIDMap = userns.Single(p.UID, uid)
	p.GIDMap = userns.Single(p.GID, gid)
	if img != nil {
		imageIdentity(spec, host, p)
		p.Image = &PlanImage{Name: img.Name, ID: img.ID}
	} else if spec.Process.IDMap == IDMapAuto && host.NewUIDMap != "" && host.NewGIDMap != "" &&
		len(host.SubUIDs) > 0 && len(host.SubGIDs) > 0 {
		um, err1 := userns.Full(p.UID, uid, host.SubUIDs)
		gm, err2 := userns.Full(p.GID, gid, host.SubGIDs)
		if err1 == nil && err2 == nil {
			p.UIDMap, p.GIDMap, p.MapHelpers = um, gm, true
			p.NewUIDMap, p.NewGIDMap = host.NewUIDMap, host.NewGIDMap
		}
	}

	p.Namespaces = []string{"user", "mount", "pid", "ipc", "uts"}
	if spec.Network.Mode != NetworkHost {
		p.Namespaces = append(p.Namespaces, "net")
	}
	if host.CgroupNS {
		p.Namespaces = append(p.Namespaces, "cgroup")
	}

	// Project.
	project := host.Cwd
	if fs.Project != "" {
		project = expand(fs.Project)
	}
	bindProject := true
	// With an image, the project may be bound elsewhere (process.workdir).
	projectAt := project
	if img != nil && spec.Process.Workdir != "" {
		projectAt = filepath.Clean(spec.Process.Workdir)
	}
	if isWithin(project, host.Home) {
		// The working directory is home or one of its ancestors: binding it
		// would expose every secret in home.
		bindProject = false
		p.Notes = append(p.Notes, fmt.Sprintf("the working directory %s holds your whole home, so it is not bound; cd into a project (or pass --project DIR) to work on it", project))
	}

	// Mounts, in order: system binds, /dev, /proc, /sys, scratch tmpfs, home,
	// user binds (parents before children), masks, generated files.
	m := &p.Mounts
	add := func(x Mount) { *m = append(*m, x) }
	hostRoot := map[string]RootEntry{}
	for _, e := range host.Root {
		hostRoot[e.Name] = e
	}
	if img != nil {
		// The image's overlay is the root; everything else goes on top.
		add(Mount{Kind: MountOverlay, Src: img.Layers[0], Lower: img.Layers, Dst: "/", Layer: LayerImage})
	}
	for _, name := range systemDirs {
		e, ok := hostRoot[name]
		if !ok || img != nil {
			continue
		}
		if e.Link != "" {
			add(Mount{Kind: MountSymlink, Src: e.Link, Dst: "/" + name})
			continue
		}
		if e.Dir && layered(fs) && spec.Process.User == UserRoot {
			// overlay: root's writes (apt, make install) land in the
			// session's upper layer (overlay.go).
			add(Mount{Kind: MountOverlay, Src: "/" + name, Dst: "/" + name, Layer: LayerRootPrefix + name})
		} else if e.Dir {
			add(Mount{Kind: MountBind, Src: "/" + name, Dst: "/" + name, RO: true})
		}
	}
	add(Mount{Kind: MountTmpfs, Dst: "/dev", Mode: 0o755})
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		add(Mount{Kind: MountBind, Src: "/dev/" + d, Dst: "/dev/" + d, Dev: true})
	}
	add(Mount{Kind: MountDevpts, Dst: "/dev/pts"})
	add(Mount{Kind: MountSymlink, Src: "pts/ptmx", Dst: "/dev/ptmx"})
	add(Mount{Kind: MountTmpfs, Dst: "/dev/shm", Mode: 0o1777, Size: shmSize})
	add(Mount{Kind: MountMqueue, Dst: "/dev/mqueue", Optional: true})
	add(Mount{Kind: MountSymlink, Src: "/proc/self/fd", Dst: "/dev/fd"})
	for i, n := range []string{"stdin", "stdout", "stderr"} {
		add(Mount{Kind: MountSymlink, Src: fmt.Sprintf("/proc/self/fd/%d", i), Dst: "/dev/" + n})
	}
	// Populated: nothing more may be created in /dev (its submounts, such as
	// /dev/shm, stay writable).
	add(Mount{Kind: MountSeal, Dst: "/dev"})
	add(Mount{Kind: MountProc, Dst: "/proc"})
	// What container runtimes mask in /proc: kernel memory, keys, timers and
	// knobs that reach the host kernel. With security.nested the masks go:
	// the kernel lets a nested sandbox mount its own /proc (and sysfs) only
	// when no part of ours is covered (mount_too_revealing).
	nested := spec.Security.Nested
	for _, f := range []string{"kcore", "keys", "key-users", "timer_list", "sched_debug", "latency_stats", "timer_stats", "sysrq-trigger", "kallsyms"} {
		if !nested {
			add(Mount{Kind: MountHide, Dst: "/proc/" + f, Optional: true})
		}
	}
	for _, d := range []string{"acpi", "scsi", "asound"} {
		if !nested {
			add(Mount{Kind: MountHide, Dst: "/proc/" + d, Optional: true})
		}
	}
	for _, d := range []string{"sys", "irq", "bus", "fs"} {
		if !nested {
			add(Mount{Kind: MountRO, Dst: "/proc/" + d, Optional: true})
		}
	}
	// A new sysfs needs the sandbox's own net namespace; with the host's
	// network, the host's /sys is bound read-only instead.
	if spec.Network.Mode != NetworkHost {
		add(Mount{Kind: MountSysfs, Dst: "/sys", Optional: true})
	} else {
		add(Mount{Kind: MountBind, Src: "/sys", Dst: "/sys", RO: true, Optional: true})
	}
	if !nested {
		add(Mount{Kind: MountHide, Dst: "/sys/firmware", Optional: true})
	}
	// Scratch space is memory: /tmp, /var/tmp, the tmpfs home and
	// filesystem.tmpfs paths are directories of one tmpfs, whose size is
	// their one budget (three tmpfs mounts at the kernel's default size
	// could take 150% of RAM).
	p.ScratchSize = scratchBudget(spec.Limits, host)
	add(Mount{Kind: MountTmpfs, Dst: "/tmp", Mode: 0o1777, Shared: true})
	add(Mount{Kind: MountTmpfs, Dst: "/var/tmp", Mode: 0o1777, Shared: true})
	add(Mount{Kind: MountTmpfs, Dst: "/run", Mode: 0o755, Size: runSize})
	if fs.Home == "ro" {
		add(Mount{Kind: MountBind, Src: host.Home, Dst: host.Home, RO: true})
	} else if fs.Home == "overlay" {
		add(Mount{Kind: MountOverlay, Src: host.Home, Dst: host.Home, Layer: LayerHome})
	} else if img == nil {
		// (An image has homes of its own, in its overlay.)
		add(Mount{Kind: MountTmpfs, Dst: host.Home, Mode: 0o700, Shared: true})
		planDotfiles(spec, host, p, add)
	}

	// User binds, sorted so that a parent is mounted before its children; on
	// the same path the later kind wins (hide over ro over rw).
	type bind struct {
		path string
		kind int    // -1 overlay, 0 rw, 1 ro, 2 tmpfs, 3 hide
		dst  string // where it shows, when not at path
	}
	var binds []bind
	if bindProject {
		k := 0
		if fs.ProjectMode == "ro" {
			k = 1
		} else if fs.ProjectMode == "overlay" {
			k = -1
		}
		binds = append(binds, bind{project, k, projectAt})
	}
	for k, list := range [][]string{fs.RW, fs.RO, fs.Tmpfs, fs.Hide} {
		for _, s := range list {
			binds = append(binds, bind{expand(s), k, ""})
		}
	}
	for i := range binds {
		if binds[i].dst == "" {
			binds[i].dst = binds[i].path
			// Under a relocated project (process.workdir with an image),
			// binds and masks inside it move with it: a hide of
			// ${PROJECT}/.env must still hide it.
			if bindProject && projectAt != project && isWithin(project, binds[i].path) {
				rel, _ := filepath.Rel(project, binds[i].path)
				binds[i].dst = filepath.Join(projectAt, rel)
			}
		}
	}
	sort.SliceStable(binds, func(i, j int) bool {
		di, dj := depth(binds[i].dst), depth(binds[j].dst)
		if di != dj {
			return di < dj
		}
		return binds[i].kind < binds[j].kind
	})
	var visible []string // host trees made visible by binds
	if fs.Home == "ro" || fs.Home == "overlay" {
		visible = append(visible, host.Home)
	}
	for _, b := range binds {
		switch b.kind {
		case 2:
			add(Mount{Kind: MountTmpfs, Dst: b.dst, Mode: 0o755, Shared: true})
		case 3:
			add(Mount{Kind: MountHide, Dst: b.dst, Optional: true})
		case -1:
			add(Mount{Kind: MountOverlay, Src: b.path, Dst: b.dst, Layer: LayerProject})
			if b.dst == b.path {
				visible = append(visible, b.path)
			}
		default:
			add(Mount{Kind: MountBind, Src: b.path, Dst: b.dst, RO: b.kind == 1})
			if b.dst == b.path {
				visible = append(visible, b.path)
			}
		}
	}
	// Git's control files stay read-only under writable binds (git.go).
	if g := host.Git; g != nil && g.Project == project && fs.Git == GitProtect {
		planGit(p, g, func(x string) (string, bool) {
			if bindProject && fs.ProjectMode == "rw" && isWithin(project, x) {
				rel, _ := filepath.Rel(project, x)
				return filepath.Join(projectAt, rel), true
			}
			for _, rw := range fs.RW {
				if isWithin(expand(rw), x) {
					return x, true
				}
			}
			return "", false
		})
	}
	// Secrets stay masked under any bind that would reveal them, and so do
	// the runtime directory, hutch's own state and its data (other
	// sessions' upper layers); each also where its symlink leads (hidden.go).
	if !mutate.Off("hide-secrets") {
		for _, rel := range secretPaths {
			hideVisible(add, host, visible, filepath.Join(host.Home, rel), false)
		}
	}
	if !mutate.Off("hide-runtime") {
		if host.UserRuntimeDir != "" {
			hideVisible(add, host, visible, host.UserRuntimeDir, false)
		}
		if host.RuntimeDir != "" {
			hideVisible(add, host, visible, host.RuntimeDir, true)
		}
	}
	if host.DataDir != "" && !mutate.Off("hide-state") {
		hideVisible(add, host, visible, host.DataDir, true)
	}

	// Generated files.
	add(Mount{Kind: MountFile, Dst: "/etc/hostname", Data: spec.Process.Hostname + "\n", Optional: true})
	add(Mount{Kind: MountFile, Dst: "/etc/hosts", Data: hostsFile(spec.Process.Hostname), Optional: true})
	if rc := resolvConf(spec.Network.Mode); rc != "" {
		add(Mount{Kind: MountFile, Dst: "/etc/resolv.conf", Data: rc, Optional: true})
	} else if img != nil {
		// The host's network, and so its resolver, in the image's /etc.
		add(Mount{Kind: MountFile, Dst: "/etc/resolv.conf", Data: host.ResolvConf, Optional: true})
	}

	// Working directory: the caller's when visible inside (home itself is,
	// as an empty tmpfs), else /.
	p.Cwd = "/"
	if img != nil {
		// In an image: process.workdir (the project is bound there; the
		// caller's place in it kept), else the image's WorkingDir, else
		// the caller's place in the project (an image without a
		// WorkingDir, as node's, runs `npm test` where you are).
		inProject := bindProject && isWithin(project, host.Cwd)
		rel := "."
		if inProject {
			rel, _ = filepath.Rel(project, host.Cwd)
		}
		switch {
		case spec.Process.Workdir != "":
			p.Cwd = filepath.Join(projectAt, rel)
		case img.WorkingDir != "":
			p.Cwd = img.WorkingDir
		case inProject:
			p.Cwd = host.Cwd
		}
	} else if spec.Process.Workdir != "" {
		p.Cwd = filepath.Clean(spec.Process.Workdir)
	} else if host.Cwd == host.Home || bindProject && isWithin(project, host.Cwd) {
		p.Cwd = host.Cwd
	} else {
		for _, v := range visible {
			if isWithin(v, host.Cwd) {
				p.Cwd = host.Cwd
			}
		}
	}

	// Defences and limits.
	p.Seccomp = SeccompPlan{Mode: spec.Security.Seccomp, Nested: spec.Security.Nested}
	if p.Seccomp.Mode != "default" && p.Seccomp.Mode != "off" {
		p.Seccomp.Mode, p.Seccomp.Profile = "profile", expand(spec.Security.Seccomp)
	}
	l := spec.Limits
	p.Rlimits = []Rlimit{{Resource: "CORE"}}
	for _, r := range []struct {
		name string
		v    int64
	}{{"NOFILE", l.NoFile}, {"NPROC", nprocLimit(l)}, {"FSIZE", l.FSize}} {
		if r.v > 0 {
			p.Rlimits = append(p.Rlimits, Rlimit{Resource: r.name, Soft: uint64(r.v), Hard: uint64(r.v)})
		}
	}
	p.Cgroup = CgroupLimits{Memory: l.Memory, Pids: l.Pids, CPU: l.CPU}
	p.LimitsRequired = l.Required
	p.LimitsQuiet = l.Quiet
	p.Timeout = spec.Process.Timeout
	p.KillGrace = spec.Process.KillGrace
	p.Inotify = inotifyLimits(l, host)

	p.HostLoopback = spec.Network.HostLoopback
	for _, s := range fs.Sockets {
		p.Sockets = append(p.Sockets, expand(s))
	}
	p.Allow = spec.Network.Allow
	for _, ps := range spec.Network.Ports {
		pm, err := ParsePort(ps)
		if err != nil {
			return nil, err
		}
		p.Ports = append(p.Ports, pm)
	}

	lp, err := planLayers(p, fs, host, project)
	if err != nil {
		return nil, err
	}
	p.Layers = lp

	p.Env = buildEnv(spec, host, p)
	p.Args = spec.Args
	if img != nil {
		p.Args = imageArgs(spec, img)
	}
	if len(p.Args) == 0 {
		p.Args = spec.Process.Shell
	}
	if len(p.Args) == 0 {
		sh := host.Shell
		if sh == "" {
			sh = "/bin/sh"
		}
		p.Args = []string{sh}
	}
	return p, nil
}

// ProxyPort is where the allowlist proxy listens on the sandbox's loopback.
const ProxyPort = 3128

// resolvConf is the generated /etc/resolv.conf for a network mode; "" keeps
// the host's.
func resolvConf(mode string) string {
	switch mode {
	case NetworkHost:
		return ""
	case NetworkSlirp:
		return "nameserver " + slirp.SlirpDNS + "\n"
	case NetworkPasta:
		return "nameserver " + slirp.PastaDNS + "\n"
	case NetworkProxy:
		return "# hutch: no DNS here (network = proxy); names are resolved by the proxy at\n" +
			fmt.Sprintf("# http://127.0.0.1:%d, which HTTP_PROXY and HTTPS_PROXY point to.\n", ProxyPort)
	}
	return "# hutch: this sandbox has no network (network = none)\n"
}

func hostsFile(hostname string) string {
	return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n"
}

// buildEnv clears the environment down to the allowlist, the spec's keep
// patterns and its explicit settings.
func buildEnv(spec Spec, host *Host, p *Plan) []string {
	keep := append(append([]string(nil), defaultEnv...), spec.Env.Keep...)
	env := map[string]string{}
	if host.Image != nil && p.Image != nil {
		// The host's paths mean nothing in an image: only its terminal
		// and locale settings (and what env.keep names) pass.
		keep = append([]string{"TERM", "LANG", "LC_*", "TZ", "COLORTERM", "NO_COLOR"}, spec.Env.Keep...)
	}
	for _, kv := range host.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		// A secret-looking variable passes only when named exactly.
		secret := secretEnv(k) && !mutate.Off("env-secrets")
		for _, pat := range keep {
			if ok, _ := path.Match(pat, k); ok && (!secret || pat == k) {
				env[k] = v
				break
			}
		}
	}
	if p.Image != nil {
		base := imageEnv(spec, host, p)
		for k, v := range base {
			if _, kept := env[k]; !kept || k == "PATH" || k == "HOME" || k == "USER" || k == "LOGNAME" {
				env[k] = v
			}
		}
	} else {
		env["HOME"] = host.Home
		if env["PATH"] == "" {
			env["PATH"] = DefaultPath
		}
		name := host.UserName
		if p.UID == 0 {
			name = "root"
		}
		if name != "" {
			env["USER"], env["LOGNAME"] = name, name
		}
		if host.Shell != "" && env["SHELL"] == "" {
			env["SHELL"] = host.Shell
		}
	}
	env["container"] = "hutch"
	// For prompts and scripts: PS1='${HUTCH:+[hutch] }\u@\h …'.
	env["HUTCH"] = "1"
	if spec.Network.Mode == NetworkProxy {
		// Both spellings: curl reads only the lower-case http_proxy.
		proxyURL := fmt.Sprintf("http://127.0.0.1:%d", ProxyPort)
		for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
			env[k] = proxyURL
		}
		env["NO_PROXY"], env["no_proxy"] = "localhost,127.0.0.1,::1", "localhost,127.0.0.1,::1"
	}
	for k, v := range spec.Env.Set {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// isWithin reports whether p is dir or beneath it.
func isWithin(dir, p string) bool { return paths.Within(dir, p) }

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// secretEnvPatterns name variables that usually hold credentials; globs
// never pass them, only an exact name in env.keep does. They are matched
// against the name in upper case: npm reads npm_config__auth and
// NPM_CONFIG__AUTH alike, and a lower-case my_token is no less a secret.
// "NPM_CONFIG_*:_AUTH*" is npm's per-registry form,
// npm_config_//registry.example/:_authToken.
var secretEnvPatterns = []string{"*_TOKEN", "*_SECRET", "*_SECRET_*", "*_PASSWORD", "*_PASSWD", "*_KEY", "*_API_KEY", "AWS_*", "SSH_AUTH_SOCK", "GPG_AGENT_INFO", "*_CREDENTIALS", "NPM_CONFIG__AUTH*", "NPM_CONFIG_*:_AUTH*"}

// SecretPaths lists, relative to home, the paths hutch always masks.
func SecretPaths() []string { return append([]string(nil), secretPaths...) }

// SecretEnv reports whether a variable's name says it holds a credential:
// such variables pass into a sandbox only when named exactly.
func SecretEnv(name string) bool { return secretEnv(name) }

func secretEnv(name string) bool {
	// path.Match's * stops at '/', which npm's per-registry names hold.
	name = strings.ReplaceAll(strings.ToUpper(name), "/", "_")
	for _, p := range secretEnvPatterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
