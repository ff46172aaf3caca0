package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/nsprobe"
	"github.com/hutch-sandbox/hutch/internal/sysctl"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/seccomp"
	"github.com/hutch-sandbox/hutch/sandbox/session"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
	"github.com/hutch-sandbox/hutch/slirp"
	"github.com/hutch-sandbox/hutch/userns"
)

// doctorFacts is everything the checks judge. Tests build it by hand.
type doctorFacts struct {
	UID, GID int
	User     string // login name; "" when the uid has none
	SudoUser string // $SUDO_USER, when root came through sudo
	Exe      string // hutch's own path, for an AppArmor profile
	Kernel   string // uname -r

	// Sysctls, -1 when the file does not exist on this kernel.
	MaxUserNS        int // /proc/sys/user/max_user_namespaces
	UnprivClone      int // Debian's /proc/sys/kernel/unprivileged_userns_clone
	AppArmorRestrict int // Ubuntu's /proc/sys/kernel/apparmor_restrict_unprivileged_userns
	// MaxNS is user.max_<kind>_namespaces for every kind ("net", …).
	MaxNS map[string]int
	// Sandbox is a child in new user, mount, pid, net, ipc and uts
	// namespaces mounting a tmpfs and /proc, as hutch-init does.
	Sandbox nsprobe.Outcome

	SubUIDs, SubGIDs []userns.Range
	SubIDErr         string
	// FreeSubID is where a new 65536-id range overlaps no one's, in both
	// /etc/subuid and /etc/subgid.
	FreeSubID uint32

	NewUIDMap, NewGIDMap helperFact
	// IDMap is a child whose maps newuidmap and newgidmap wrote from the
	// subordinate ranges; not tried without ranges or helpers.
	IDMap nsprobe.Outcome

	Overlay nsprobe.Outcome
	// Redirect is a child in new user and network namespaces installing
	// network mode proxy's nftables redirect (redirect.go).
	Redirect nsprobe.Outcome

	FuseOverlayfs programFact
	DevFuse       deviceFact
	Slirp4netns   programFact
	Pasta         programFact
	Tun           deviceFact

	Cgroup  cgroupFacts
	Runtime runtimeFacts
	Images  imageStoreFacts

	// Seccomp is "" when hutch's default filter installed on a throwaway
	// thread, else why it did not.
	Seccomp string
}

// helperFact describes newuidmap or newgidmap.
type helperFact = userns.Helper

// programFact describes a helper program on PATH.
type programFact struct {
	Path    string   // "" when not on PATH
	Version string   // "" when it does not say
	Lacks   []string // options hutch needs that its --help does not list
}

// deviceFact describes a device node and whether we can open it.
type deviceFact struct {
	Path   string
	Exists bool
	Mode   uint32        // permission bits
	UID    uint32        // owner
	Owner  string        // owner and group by name, "root:root"
	Errno  syscall.Errno // from open(O_RDWR); 0 when it opened
}

// cgroupFacts describe cgroup v2 and our place in it.
type cgroupFacts struct {
	Mount       string   // where cgroup2 is mounted; "" when nowhere
	Unified     bool     // /sys/fs/cgroup itself is cgroup2 (not a hybrid setup)
	Own         string   // our cgroup, from the "0::" line of /proc/self/cgroup
	Owner       int      // uid owning our cgroup's directory; -1 when unknown
	Writable    bool     // we may write its cgroup.procs
	Controllers []string // cgroup.controllers: what the parent grants
	Subtree     []string // cgroup.subtree_control: what it passes to children
	OtherProcs  bool     // it holds processes besides hutch (a shell, say)
}

// runtimeFacts describe $XDG_RUNTIME_DIR.
type runtimeFacts struct {
	Env    string // the variable's value
	Exists bool
	IsDir  bool
	UID    uint32
	Mode   uint32 // permission bits
	Dir    string // where hutch keeps run state: runtimeDir()
}

// limitControllers are what a profile's [limits] memory, pids and cpu use.
var limitControllers = []string{"memory", "pids", "cpu"}

// gatherFacts looks at the machine. Probes that need a namespace run in
// hutch-probe children.
func gatherFacts(ctx context.Context) *doctorFacts {
	f := &doctorFacts{UID: os.Getuid(), GID: os.Getgid(), SudoUser: os.Getenv("SUDO_USER")}
	if u, err := user.LookupId(strconv.Itoa(f.UID)); err == nil {
		f.User = u.Username
	}
	f.Exe, _ = os.Executable()
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		f.Kernel = unix.ByteSliceToString(uts.Release[:])
	}

	// The cgroup first: our probes' children would count as other
	// processes in it.
	f.Cgroup = gatherCgroup()
	f.Runtime = gatherRuntime(f.UID)

	f.MaxUserNS = sysctl.Read("/proc/sys/user/max_user_namespaces")
	f.MaxNS = sysctl.NSLimits()
	f.UnprivClone = sysctl.Read("/proc/sys/kernel/unprivileged_userns_clone")
	f.AppArmorRestrict = sysctl.Read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
	oneID := func(flags uintptr) *syscall.SysProcAttr { return oneIDAttr(f, flags) }
	tmp, err := os.MkdirTemp("", "hutch-doctor-")
	if err != nil {
		f.Sandbox = nsprobe.Outcome{Tried: true, Step: "creating a temporary directory", Err: err.Error()}
	} else {
		defer nsprobe.RemoveDir(tmp)
		for _, d := range []string{"sandbox", "overlay"} {
			os.Mkdir(filepath.Join(tmp, d), 0o700)
		}
		f.Sandbox = nsprobe.Run(ctx, oneID(unix.CLONE_NEWUSER|unix.CLONE_NEWNS|unix.CLONE_NEWPID|
			unix.CLONE_NEWNET|unix.CLONE_NEWIPC|unix.CLONE_NEWUTS), nil, "sandbox", filepath.Join(tmp, "sandbox"))
		if f.Sandbox.OK() {
			f.Overlay = nsprobe.Run(ctx, oneID(unix.CLONE_NEWUSER|unix.CLONE_NEWNS), nil, "overlay", filepath.Join(tmp, "overlay"))
			f.Redirect = gatherRedirect(ctx, f)
		}
	}

	if f.SubUIDs, err = userns.ReadSubIDs(userns.SubUIDFile, f.User, f.UID); err != nil {
		f.SubIDErr = err.Error()
	}
	if f.SubGIDs, err = userns.ReadSubIDs(userns.SubGIDFile, f.User, f.UID); err != nil && f.SubIDErr == "" {
		f.SubIDErr = err.Error()
	}
	u, _ := os.ReadFile(userns.SubUIDFile)
	g, _ := os.ReadFile(userns.SubGIDFile)
	f.FreeSubID = max(freeSubID(string(u)), freeSubID(string(g)))
	f.NewUIDMap = userns.FindHelper("newuidmap")
	f.NewGIDMap = userns.FindHelper("newgidmap")
	if f.Sandbox.OK() && f.NewUIDMap.Usable() && f.NewGIDMap.Usable() && len(f.SubUIDs) > 0 && len(f.SubGIDs) > 0 {
		f.IDMap = probeIDMaps(ctx, f)
	}

	f.FuseOverlayfs = gatherProgram(ctx, "fuse-overlayfs", nil)
	f.DevFuse = gatherDevice("/dev/fuse")
	f.Slirp4netns = gatherProgram(ctx, "slirp4netns", func() []string {
		sf, err := slirp.ProbeSlirp4netns()
		if err != nil {
			return nil
		}
		return lacking(map[string]bool{"--ready-fd": sf.ReadyFD, "--exit-fd": sf.ExitFD,
			"--disable-host-loopback": sf.DisableHostLoopback})
	})
	f.Pasta = gatherProgram(ctx, "pasta", func() []string {
		pf, err := slirp.ProbePasta()
		if err != nil {
			return nil
		}
		return lacking(map[string]bool{"--config-net": pf.ConfigNet, "--pid": pf.PIDFile, "--foreground": pf.Foreground})
	})
	f.Tun = gatherDevice("/dev/net/tun")
	f.Seccomp = trySeccomp()
	f.Images = gatherImageStore()
	return f
}

// imageStoreFacts say whether the image store's file system takes what
// unpacked layers hold.
type imageStoreFacts struct {
	Dir      string // the store, or its nearest existing parent
	Err      string // trying failed before the file system could answer
	Whiteout string // why a whiteout (device 0/0) could not be made
	Xattr    string // why a user.* xattr could not be set
}

func gatherImageStore() imageStoreFacts {
	home, _ := os.UserHomeDir()
	if h := os.Getenv("HOME"); h != "" {
		home = h
	}
	f := imageStoreFacts{Dir: filepath.Join(session.DataDir(home), "images")}
	dir := f.Dir
	for fi, err := os.Stat(dir); (err != nil || !fi.IsDir()) && dir != "/"; fi, err = os.Stat(dir) {
		dir = filepath.Dir(dir)
	}
	tmp, err := os.MkdirTemp(dir, ".hutch-doctor-")
	if err != nil {
		f.Err = err.Error()
		return f
	}
	defer os.RemoveAll(tmp)
	if err := unix.Mknod(filepath.Join(tmp, "wh"), unix.S_IFCHR, 0); err != nil {
		f.Whiteout = err.Error()
	}
	if err := unix.Setxattr(tmp, "user.overlay.opaque", []byte("y"), 0); err != nil {
		f.Xattr = err.Error()
	}
	return f
}

// oneIDAttr puts a probe in new namespaces (flags) as root inside, mapped
// to the caller: the probe keeps its capabilities across exec.
func oneIDAttr(f *doctorFacts, flags uintptr) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:  flags,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: f.UID, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: f.GID, Size: 1}},
	}
}

// probeIDMaps maps a child's namespace with newuidmap and newgidmap, as
// hutch run does with the subordinate ranges, and checks what the kernel
// took.
func probeIDMaps(ctx context.Context, f *doctorFacts) nsprobe.Outcome {
	um, err1 := userns.Full(0, uint32(f.UID), f.SubUIDs)
	gm, err2 := userns.Full(0, uint32(f.GID), f.SubGIDs)
	if err := errors.Join(err1, err2); err != nil {
		return nsprobe.Outcome{Tried: true, Step: "laying out the id maps", Err: err.Error()}
	}
	out := nsprobe.Run(ctx, &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}, func(pid int) error {
		if err := userns.WriteWithHelper(ctx, f.NewUIDMap.Path, pid, um); err != nil {
			return err
		}
		return userns.WriteWithHelper(ctx, f.NewGIDMap.Path, pid, gm)
	}, "idmap")
	if out.OK() && (!sameMap(out.Reply.UIDMap, um) || !sameMap(out.Reply.GIDMap, gm)) {
		out.Step = "checking the id maps"
		out.Err = fmt.Sprintf("the kernel holds uid_map %q and gid_map %q", out.Reply.UIDMap, out.Reply.GIDMap)
	}
	return out
}

// sameMap compares a uid_map as the kernel prints it with what we wrote.
func sameMap(kernel string, want []userns.Mapping) bool {
	return strings.Join(strings.Fields(kernel), " ") == strings.Join(strings.Fields(userns.Format(want)), " ")
}

// freeSubID is where a 65536-id range overlaps nothing in a subuid or
// subgid file: past the highest range, and no lower than 100000 (where
// useradd starts them).
func freeSubID(file string) uint32 {
	free := uint64(100000)
	for _, line := range strings.Split(file, "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 == nil && err2 == nil && start+count > free {
			free = start + count
		}
	}
	if free > 1<<32-1-65536 {
		return 0
	}
	return uint32(free)
}

// gatherProgram finds name on PATH and reads its version; lacks, when
// set, lists the options hutch needs that this build does not have.
func gatherProgram(ctx context.Context, name string, lacks func() []string) programFact {
	p, err := exec.LookPath(name)
	if err != nil {
		return programFact{}
	}
	pf := programFact{Path: p}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, p, "--version").CombinedOutput()
	pf.Version = parseVersion(name, string(out))
	if lacks != nil {
		pf.Lacks = lacks()
	}
	return pf
}

func lacking(have map[string]bool) []string {
	var out []string
	for opt, ok := range have {
		if !ok {
			out = append(out, opt)
		}
	}
	slices.Sort(out)
	return out
}

// parseVersion finds the version in a program's --version output: the
// first word with a digit after the program's name on the line that names
// it ("slirp4netns version 1.2.0", "fuse-overlayfs: version 1.10"). ""
// when it says none ("pasta unknown version").
func parseVersion(name, out string) string {
	for _, line := range strings.Split(out, "\n") {
		words := strings.Fields(line)
		for i, w := range words {
			if strings.TrimSuffix(w, ":") != name {
				continue
			}
			for _, v := range words[i+1:] {
				if strings.ContainsAny(v, "0123456789") {
					return strings.TrimSuffix(strings.TrimPrefix(v, "v"), ",")
				}
			}
			return ""
		}
	}
	return ""
}

func gatherDevice(path string) deviceFact {
	d := deviceFact{Path: path}
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return d
	}
	d.Exists, d.Mode, d.UID, d.Owner = true, st.Mode&0o7777, st.Uid, owner(st.Uid, st.Gid)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		d.Errno, _ = err.(syscall.Errno)
		if d.Errno == 0 {
			d.Errno = syscall.EIO
		}
		return d
	}
	unix.Close(fd)
	return d
}

func gatherCgroup() cgroupFacts {
	c := cgroupFacts{Owner: -1}
	var sfs unix.Statfs_t
	c.Unified = unix.Statfs("/sys/fs/cgroup", &sfs) == nil && sfs.Type == unix.CGROUP2_SUPER_MAGIC
	var err error
	if c.Mount, err = supervise.Cgroup2Mount(); err != nil {
		return c
	}
	if c.Own, err = supervise.OwnCgroup(); err != nil {
		return c
	}
	base := filepath.Join(c.Mount, c.Own)
	var st unix.Stat_t
	if unix.Stat(base, &st) != nil {
		return c
	}
	c.Owner = int(st.Uid)
	c.Writable = unix.Access(filepath.Join(base, "cgroup.procs"), unix.W_OK) == nil
	c.Controllers = fieldList(filepath.Join(base, "cgroup.controllers"))
	c.Subtree = fieldList(filepath.Join(base, "cgroup.subtree_control"))
	procs, _ := os.ReadFile(filepath.Join(base, "cgroup.procs"))
	for _, p := range strings.Fields(string(procs)) {
		if p != strconv.Itoa(os.Getpid()) {
			c.OtherProcs = true
		}
	}
	return c
}

func fieldList(path string) []string {
	data, _ := os.ReadFile(path)
	return strings.Fields(string(data))
}

func gatherRuntime(uid int) runtimeFacts {
	r := runtimeFacts{Env: os.Getenv("XDG_RUNTIME_DIR"), Dir: sandbox.RuntimeDir(uid)}
	var st unix.Stat_t
	if r.Env != "" && unix.Stat(r.Env, &st) == nil {
		r.Exists, r.IsDir, r.UID, r.Mode = true, st.Mode&unix.S_IFMT == unix.S_IFDIR, st.Uid, st.Mode&0o7777
	}
	return r
}

func owner(uid, gid uint32) string {
	u, g := strconv.Itoa(int(uid)), strconv.Itoa(int(gid))
	if uu, err := user.LookupId(u); err == nil {
		u = uu.Username
	}
	if gg, err := user.LookupGroupId(g); err == nil {
		g = gg.Name
	}
	return u + ":" + g
}

// trySeccomp compiles hutch's default filter and installs it on a thread
// that exits right after, as hutch-init installs it on the thread that
// forks the command: the real thing, at no cost to this process.
func trySeccomp() string {
	prog, err := seccomp.Default(seccomp.Options{}).Compile()
	if err != nil {
		return err.Error()
	}
	res := make(chan string, 1)
	go func() {
		// Never unlocked: the thread, with its filter, retires with the
		// goroutine.
		runtime.LockOSThread()
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			res <- "setting no_new_privs: " + err.Error()
			return
		}
		if err := seccomp.Install(prog); err != nil {
			res <- err.Error()
			return
		}
		if _, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false); err != unix.EPERM {
			res <- fmt.Sprintf("the filter installed but keyctl was not refused (%v)", err)
			return
		}
		res <- ""
	}()
	return <-res
}
