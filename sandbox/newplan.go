package sandbox

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/userns"
)

// NewPlan resolves spec against host. It is pure: it reads nothing but its
// arguments.
func NewPlan(spec Spec, host *Host) (*Plan, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	pl, err := newPlanner(spec, host)
	if err != nil {
		return nil, err
	}
	pl.identity()
	if err := bundleMaps(pl.p, spec.Bundle, host); err != nil {
		return nil, err
	}
	if err := pl.checkBundleBinds(); err != nil {
		return nil, err
	}
	pl.namespaces()
	pl.locateProject()
	// Mounts, in order: system binds, /dev, /proc, /sys, scratch tmpfs, home,
	// user binds (parents before children), masks, generated files.
	pl.systemMounts()
	pl.devMounts()
	pl.procMounts()
	pl.scratchAndHome()
	pl.userBinds()
	pl.bundlePaths()
	pl.protectGit()
	pl.hideRevealed()
	pl.generatedFiles()
	pl.workdir()
	if err := pl.defences(); err != nil {
		return nil, err
	}
	if pl.p.Layers, err = planLayers(pl.p, spec.Filesystem, host, pl.project); err != nil {
		return nil, err
	}
	pl.command()
	if err := pl.planServices(); err != nil {
		return nil, err
	}
	return pl.p, nil
}

// planner is NewPlan's state between its steps: the plan so far, and what
// the steps after the project's place need of it.
type planner struct {
	spec Spec
	host *Host
	p    *Plan
	img  *ImageRoot // nil unless the spec names an image
	// project is the project directory on the host; projectAt where it
	// shows inside (elsewhere only with an image's process.workdir);
	// bindProject is false when binding it would bind the whole home.
	project, projectAt string
	bindProject        bool
	// visible are the host trees binds make visible (secrets under them
	// stay hidden; the working directory may be in them).
	visible []string
	// relocated are the host trees bound elsewhere, as {source, target}:
	// what is hidden under a source is hidden at its place under the target.
	relocated [][2]string
}

// newPlanner starts the plan from what the spec says directly.
func newPlanner(spec Spec, host *Host) (*planner, error) {
	fs := spec.Filesystem
	pl := &planner{spec: spec, host: host, p: &Plan{
		Hostname:    spec.Process.Hostname,
		Network:     spec.Network.Mode,
		TTY:         spec.TTY,
		PreserveFDs: spec.PreserveFDs,
		StateRoot:   host.RuntimeDir,
	}}
	for _, c := range fs.Create {
		pl.p.Create = append(pl.p.Create, pl.expand(c))
	}
	if ImageRef(spec) != "" {
		if host.Image == nil {
			return nil, fmt.Errorf("the image %s was not opened before planning", ImageRef(spec))
		}
		pl.img = host.Image
	}
	if DirRoot(spec) != "" {
		if host.Image == nil || host.Image.Name != "dir:"+DirRoot(spec) {
			return nil, fmt.Errorf("the root directory %s was not opened before planning", DirRoot(spec))
		}
		pl.img = host.Image
	}
	return pl, nil
}

// expand resolves ~ and cleans a path of the spec.
func (pl *planner) expand(s string) string {
	if s == "~" {
		return pl.host.Home
	}
	if strings.HasPrefix(s, "~/") {
		return filepath.Join(pl.host.Home, s[2:])
	}
	return filepath.Clean(s)
}

// add appends a mount step.
func (pl *planner) add(x Mount) { pl.p.Mounts = append(pl.p.Mounts, x) }

// identity picks the command's ids and the id maps: one id, or the
// subordinate ranges when newuidmap and newgidmap can write them.
func (pl *planner) identity() {
	p, spec, host, img := pl.p, pl.spec, pl.host, pl.img
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
		p.Caps = bundleCaps(p.Caps, spec.Bundle)
	} else if spec.Process.IDMap == IDMapAuto && host.NewUIDMap != "" && host.NewGIDMap != "" &&
		len(host.SubUIDs) > 0 && len(host.SubGIDs) > 0 {
		um, err1 := userns.Full(p.UID, uid, host.SubUIDs)
		gm, err2 := userns.Full(p.GID, gid, host.SubGIDs)
		if err1 == nil && err2 == nil {
			p.UIDMap, p.GIDMap, p.MapHelpers = um, gm, true
			p.NewUIDMap, p.NewGIDMap = host.NewUIDMap, host.NewGIDMap
		}
	}
}

// namespaces lists the namespaces to create.
func (pl *planner) namespaces() {
	p, spec, host := pl.p, pl.spec, pl.host
	p.Namespaces = []string{"user", "mount", "pid", "ipc", "uts"}
	if spec.Network.Mode != NetworkHost {
		p.Namespaces = append(p.Namespaces, "net")
	}
	if host.CgroupNS {
		p.Namespaces = append(p.Namespaces, "cgroup")
	}
}

// locateProject finds the project, where it shows, and whether to bind it.
func (pl *planner) locateProject() {
	p, spec, fs, host, img := pl.p, pl.spec, pl.spec.Filesystem, pl.host, pl.img
	pl.project = host.Cwd
	if fs.Project != "" {
		pl.project = pl.expand(fs.Project)
	}
	// A bundle's command sees what its config.json mounts, no project.
	pl.bindProject = spec.Bundle == nil
	// With an image, the project may be bound elsewhere (process.workdir).
	pl.projectAt = pl.project
	if img != nil && spec.Process.Workdir != "" {
		pl.projectAt = filepath.Clean(spec.Process.Workdir)
	}
	if pl.bindProject && isWithin(pl.project, host.Home) {
		// The working directory is home or one of its ancestors: binding it
		// would expose every secret in home.
		pl.bindProject = false
		p.Notes = append(p.Notes, fmt.Sprintf("the working directory %s holds your whole home, so it is not bound; cd into a project (or pass --project DIR) to work on it", pl.project))
	}
}

// systemMounts shows the host's system directories (read-only, or
// overlaid for root with layers), or the image's root.
func (pl *planner) systemMounts() {
	spec, fs, host, img := pl.spec, pl.spec.Filesystem, pl.host, pl.img
	hostRoot := map[string]RootEntry{}
	for _, e := range host.Root {
		hostRoot[e.Name] = e
	}
	if img != nil {
		// The image's overlay is the root; everything else goes on top.
		pl.add(Mount{Kind: MountOverlay, Src: img.Layers[0], Lower: img.Layers, Dst: "/", Layer: LayerImage})
	}
	for _, name := range systemDirs {
		e, ok := hostRoot[name]
		if !ok || img != nil {
			continue
		}
		if e.Link != "" {
			pl.add(Mount{Kind: MountSymlink, Src: e.Link, Dst: "/" + name})
			continue
		}
		if e.Dir && layered(fs) && spec.Process.User == UserRoot {
			// overlay: root's writes (apt, make install) land in the
			// session's upper layer (overlay.go).
			pl.add(Mount{Kind: MountOverlay, Src: "/" + name, Dst: "/" + name, Layer: LayerRootPrefix + name})
		} else if e.Dir {
			pl.add(Mount{Kind: MountBind, Src: "/" + name, Dst: "/" + name, RO: true})
		}
	}
}

// devMounts builds a minimal /dev.
func (pl *planner) devMounts() {
	pl.add(Mount{Kind: MountTmpfs, Dst: "/dev", Mode: 0o755})
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		pl.add(Mount{Kind: MountBind, Src: "/dev/" + d, Dst: "/dev/" + d, Dev: true})
	}
	pl.add(Mount{Kind: MountDevpts, Dst: "/dev/pts"})
	pl.add(Mount{Kind: MountSymlink, Src: "pts/ptmx", Dst: "/dev/ptmx"})
	pl.add(Mount{Kind: MountTmpfs, Dst: "/dev/shm", Mode: 0o1777, Size: shmSize})
	pl.add(Mount{Kind: MountMqueue, Dst: "/dev/mqueue", Optional: true})
	pl.add(Mount{Kind: MountSymlink, Src: "/proc/self/fd", Dst: "/dev/fd"})
	for i, n := range []string{"stdin", "stdout", "stderr"} {
		pl.add(Mount{Kind: MountSymlink, Src: fmt.Sprintf("/proc/self/fd/%d", i), Dst: "/dev/" + n})
	}
	// Populated: nothing more may be created in /dev (its submounts, such as
	// /dev/shm, stay writable).
	pl.add(Mount{Kind: MountSeal, Dst: "/dev"})
}

// procMounts mounts /proc and /sys with what container runtimes mask.
func (pl *planner) procMounts() {
	spec := pl.spec
	pl.add(Mount{Kind: MountProc, Dst: "/proc"})
	// What container runtimes mask in /proc: kernel memory, keys, timers and
	// knobs that reach the host kernel. With security.nested the masks go:
	// the kernel lets a nested sandbox mount its own /proc (and sysfs) only
	// when no part of ours is covered (mount_too_revealing).
	nested := spec.Security.Nested
	for _, f := range []string{"kcore", "keys", "key-users", "timer_list", "sched_debug", "latency_stats", "timer_stats", "sysrq-trigger", "kallsyms"} {
		if !nested {
			pl.add(Mount{Kind: MountHide, Dst: "/proc/" + f, Optional: true})
		}
	}
	for _, d := range []string{"acpi", "scsi", "asound"} {
		if !nested {
			pl.add(Mount{Kind: MountHide, Dst: "/proc/" + d, Optional: true})
		}
	}
	for _, d := range []string{"sys", "irq", "bus", "fs"} {
		if !nested {
			pl.add(Mount{Kind: MountRO, Dst: "/proc/" + d, Optional: true})
		}
	}
	// A new sysfs needs the sandbox's own net namespace; with the host's
	// network, the host's /sys is bound read-only instead.
	if spec.Network.Mode != NetworkHost {
		pl.add(Mount{Kind: MountSysfs, Dst: "/sys", Optional: true})
	} else {
		pl.add(Mount{Kind: MountBind, Src: "/sys", Dst: "/sys", RO: true, Optional: true})
	}
	if !nested {
		pl.add(Mount{Kind: MountHide, Dst: "/sys/firmware", Optional: true})
	}
}

// scratchAndHome mounts the scratch tmpfs directories and the home.
func (pl *planner) scratchAndHome() {
	p, spec, fs, host, img := pl.p, pl.spec, pl.spec.Filesystem, pl.host, pl.img
	// Scratch space is memory: /tmp, /var/tmp, the tmpfs home and
	// filesystem.tmpfs paths are directories of one tmpfs, whose size is
	// their one budget (three tmpfs mounts at the kernel's default size
	// could take 150% of RAM).
	p.ScratchSize = scratchBudget(spec.Limits, host)
	pl.add(Mount{Kind: MountTmpfs, Dst: "/tmp", Mode: 0o1777, Shared: true})
	pl.add(Mount{Kind: MountTmpfs, Dst: "/var/tmp", Mode: 0o1777, Shared: true})
	pl.add(Mount{Kind: MountTmpfs, Dst: "/run", Mode: 0o755, Size: runSize})
	if fs.Home == "ro" {
		pl.add(Mount{Kind: MountBind, Src: host.Home, Dst: host.Home, RO: true})
	} else if fs.Home == "overlay" {
		pl.add(Mount{Kind: MountOverlay, Src: host.Home, Dst: host.Home, Layer: LayerHome})
	} else if img == nil {
		// (An image has homes of its own, in its overlay.)
		pl.add(Mount{Kind: MountTmpfs, Dst: host.Home, Mode: 0o700, Shared: true})
		planDotfiles(spec, host, p, pl.add)
	}
}

// userBinds mounts the project and the spec's binds, masks and tmpfs.
func (pl *planner) userBinds() {
	fs, host := pl.spec.Filesystem, pl.host
	// User binds, sorted so that a parent is mounted before its children; on
	// the same path the later kind wins (hide over ro over rw).
	type bind struct {
		path   string
		kind   int    // -1 overlay, 0 rw, 1 ro, 2 tmpfs, 3 hide
		dst    string // where it shows, when not at path
		noexec bool
	}
	var binds []bind
	if pl.bindProject {
		k := 0
		if fs.ProjectMode == "ro" {
			k = 1
		} else if fs.ProjectMode == "overlay" {
			k = -1
		}
		binds = append(binds, bind{pl.project, k, pl.projectAt, false})
	}
	for k, list := range [][]string{fs.RW, fs.RO, fs.Tmpfs, fs.Hide} {
		for _, s := range list {
			binds = append(binds, bind{pl.expand(s), k, "", false})
		}
	}
	for _, b := range fs.Binds {
		k := 1
		if b.Mode == BindRW {
			k = 0
		}
		binds = append(binds, bind{pl.expand(b.Source), k, filepath.Clean(b.Target), b.NoExec})
	}
	for i := range binds {
		if binds[i].dst == "" {
			binds[i].dst = binds[i].path
			// Under a relocated project (process.workdir with an image),
			// binds and masks inside it move with it: a hide of
			// ${PROJECT}/.env must still hide it.
			if pl.bindProject && pl.projectAt != pl.project && isWithin(pl.project, binds[i].path) {
				rel, _ := filepath.Rel(pl.project, binds[i].path)
				binds[i].dst = filepath.Join(pl.projectAt, rel)
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
	if fs.Home == "ro" || fs.Home == "overlay" {
		pl.visible = append(pl.visible, host.Home)
	}
	for _, b := range binds {
		switch b.kind {
		case 2:
			pl.add(Mount{Kind: MountTmpfs, Dst: b.dst, Mode: 0o755, Shared: true})
		case 3:
			pl.add(Mount{Kind: MountHide, Dst: b.dst, Optional: true})
		case -1:
			pl.add(Mount{Kind: MountOverlay, Src: b.path, Dst: b.dst, Layer: LayerProject})
			if b.dst == b.path {
				pl.visible = append(pl.visible, b.path)
			}
		default:
			pl.add(Mount{Kind: MountBind, Src: b.path, Dst: b.dst, RO: b.kind == 1, NoExec: b.noexec})
			if b.dst == b.path {
				pl.visible = append(pl.visible, b.path)
			} else {
				pl.relocated = append(pl.relocated, [2]string{b.path, b.dst})
			}
		}
	}
}

// protectGit keeps git's control files read-only under writable binds.
func (pl *planner) protectGit() {
	p, fs, host := pl.p, pl.spec.Filesystem, pl.host
	// Git's control files stay read-only under writable binds (git.go).
	if g := host.Git; g != nil && g.Project == pl.project && fs.Git == GitProtect {
		planGit(p, g, func(x string) (string, bool) {
			if pl.bindProject && fs.ProjectMode == "rw" && isWithin(pl.project, x) {
				rel, _ := filepath.Rel(pl.project, x)
				return filepath.Join(pl.projectAt, rel), true
			}
			for _, rw := range fs.RW {
				if isWithin(pl.expand(rw), x) {
					return x, true
				}
			}
			return "", false
		})
	}
}

// hideRevealed masks secrets, the runtime directory and hutch's state and
// data wherever a bind would reveal them.
func (pl *planner) hideRevealed() {
	host := pl.host
	// Secrets stay masked under any bind that would reveal them, and so do
	// the runtime directory, hutch's own state and its data (other
	// sessions' upper layers); each also where its symlink leads (hidden.go).
	if !mutate.Off("hide-secrets") {
		for _, rel := range secretPaths {
			hideVisible(pl.add, host, pl.visible, filepath.Join(host.Home, rel), false)
		}
	}
	if !mutate.Off("hide-runtime") {
		if host.UserRuntimeDir != "" {
			hideVisible(pl.add, host, pl.visible, host.UserRuntimeDir, false)
		}
		if host.RuntimeDir != "" {
			hideVisible(pl.add, host, pl.visible, host.RuntimeDir, true)
		}
	}
	if host.DataDir != "" && !mutate.Off("hide-state") {
		hideVisible(pl.add, host, pl.visible, host.DataDir, true)
	}
	pl.hideRelocated()
}

// generatedFiles writes /etc/hostname, /etc/hosts and /etc/resolv.conf.
func (pl *planner) generatedFiles() {
	spec, host, img := pl.spec, pl.host, pl.img
	// Generated files.
	pl.add(Mount{Kind: MountFile, Dst: "/etc/hostname", Data: spec.Process.Hostname + "\n", Optional: true})
	pl.add(Mount{Kind: MountFile, Dst: "/etc/hosts", Data: pl.hostsFile(), Optional: true})
	if rc := resolvConf(spec.Network.Mode); rc != "" {
		pl.add(Mount{Kind: MountFile, Dst: "/etc/resolv.conf", Data: rc, Optional: true})
	} else if img != nil {
		// The host's network, and so its resolver, in the image's /etc.
		pl.add(Mount{Kind: MountFile, Dst: "/etc/resolv.conf", Data: host.ResolvConf, Optional: true})
	}
}

// workdir picks the command's working directory.
func (pl *planner) workdir() {
	p, spec, host, img := pl.p, pl.spec, pl.host, pl.img
	// Working directory: the caller's when visible inside (home itself is,
	// as an empty tmpfs), else /.
	p.Cwd = "/"
	if img != nil {
		// In an image: process.workdir (the project is bound there; the
		// caller's place in it kept), else the image's WorkingDir, else
		// the caller's place in the project (an image without a
		// WorkingDir, as node's, runs `npm test` where you are).
		inProject := pl.bindProject && isWithin(pl.project, host.Cwd)
		rel := "."
		if inProject {
			rel, _ = filepath.Rel(pl.project, host.Cwd)
		}
		switch {
		case spec.Bundle != nil:
			if spec.Process.Workdir != "" {
				p.Cwd = filepath.Clean(spec.Process.Workdir)
			}
		case spec.Process.Workdir != "":
			p.Cwd = filepath.Join(pl.projectAt, rel)
		case img.WorkingDir != "":
			p.Cwd = img.WorkingDir
		case inProject:
			p.Cwd = host.Cwd
		}
	} else if spec.Process.Workdir != "" {
		p.Cwd = filepath.Clean(spec.Process.Workdir)
	} else if host.Cwd == host.Home || pl.bindProject && isWithin(pl.project, host.Cwd) {
		p.Cwd = host.Cwd
	} else {
		for _, v := range pl.visible {
			if isWithin(v, host.Cwd) {
				p.Cwd = host.Cwd
			}
		}
	}
}

// defences sets seccomp, rlimits, cgroup and inotify limits, and the
// network's sockets, allowlist and ports.
func (pl *planner) defences() error {
	p, spec, fs, host := pl.p, pl.spec, pl.spec.Filesystem, pl.host
	// Defences and limits.
	p.Seccomp = SeccompPlan{Mode: spec.Security.Seccomp, Nested: spec.Security.Nested}
	if p.Seccomp.Mode != "default" && p.Seccomp.Mode != "off" {
		p.Seccomp.Mode, p.Seccomp.Profile = "profile", pl.expand(spec.Security.Seccomp)
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
	if b := spec.Bundle; b != nil {
		p.Rlimits = append(p.Rlimits, b.Rlimits...)
		p.RootReadOnly = b.ReadOnlyRoot
		p.Seccomp.Bundle = b.Seccomp
	}
	p.Cgroup = CgroupLimits{Memory: l.Memory, Pids: l.Pids, CPU: l.CPU}
	p.LimitsRequired = l.Required
	p.LimitsQuiet = l.Quiet
	p.Timeout = spec.Process.Timeout
	p.KillGrace = spec.Process.KillGrace
	p.Inotify = inotifyLimits(l, host)

	p.HostLoopback = spec.Network.HostLoopback
	for _, s := range fs.Sockets {
		p.Sockets = append(p.Sockets, pl.expand(s))
	}
	p.Allow = spec.Network.Allow
	p.Learn = spec.Network.Learn != ""
	for _, ps := range spec.Network.Ports {
		pm, err := ParsePort(ps)
		if err != nil {
			return err
		}
		p.Ports = append(p.Ports, pm)
	}
	return nil
}

// command sets the environment and the command line.
func (pl *planner) command() {
	p, spec, host, img := pl.p, pl.spec, pl.host, pl.img
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
}
