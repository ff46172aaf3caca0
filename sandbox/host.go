package sandbox

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/sysctl"
	"github.com/hutch-sandbox/hutch/sandbox/session"
	"github.com/hutch-sandbox/hutch/userns"
)

// Host is what NewPlan needs to know about the machine and the caller. It
// is gathered once, by ProbeHost, before anything forks; tests build it by
// hand.
type Host struct {
	UID, GID int
	UserName string
	Home     string // the caller's home, symlinks resolved
	Shell    string // the caller's login shell from passwd, if any
	Cwd      string // the working directory, symlinks resolved
	Env      []string

	SubUIDs, SubGIDs []userns.Range
	// NewUIDMap and NewGIDMap are the paths of usable setuid helpers, or ""
	// when missing or not privileged.
	NewUIDMap, NewGIDMap string

	// Root lists the entries of the host's / that a sandbox may bind.
	Root []RootEntry

	RuntimeDir string // where per-run state lives ($XDG_RUNTIME_DIR/hutch or a fallback)
	CgroupNS   bool   // the kernel has cgroup namespaces

	// MemTotal is the machine's RAM in bytes (0: unknown), for the
	// default tmpfs budget.
	MemTotal int64
	// InotifyInstances and InotifyWatches are the host user namespace's
	// user.max_inotify_* limits (0: unknown).
	InotifyInstances, InotifyWatches int64

	// DataDir holds kept sessions ($XDG_DATA_HOME/hutch or ~/.local/share/hutch).
	DataDir string
	// FuseOverlayfs is the fuse-overlayfs binary, or "" when missing.
	FuseOverlayfs string
	// ResolvConf is the host's /etc/resolv.conf, for an image sharing the
	// host's network.
	ResolvConf string

	// Git is what ProbeGit found of git in the project (the CLI probes it
	// once the spec names the project); nil when not probed.
	Git *GitFacts
	// Dotfiles is what ProbeDotfiles found of the dotfiles the spec binds
	// (the CLI probes them once the spec is known).
	Dotfiles map[string]DotfileFact

	// Image is the opened image of a spec whose root is one (the CLI opens
	// it from the store, image.go).
	Image *ImageRoot
	// ServiceImages are the opened images of the spec's services that
	// name one, by service name (Prepare opens them, as Image).
	ServiceImages map[string]*ImageRoot `json:"service_images,omitempty"`

	// UserRuntimeDir is $XDG_RUNTIME_DIR, symlinks resolved, or "": masked
	// wherever a bind shows it (hidden.go).
	UserRuntimeDir string
	// RealPaths maps each always-hidden path that a symlink leads elsewhere
	// (~/.ssh -> dotfiles/ssh) to its real path (hidden.go).
	RealPaths map[string]string
	// BindReal maps each [[filesystem.bind]] source to its real path,
	// when symlinks lead elsewhere (a bundle's bind is checked at both).
	BindReal map[string]string
}

// RootEntry is one entry of the host's root directory.
type RootEntry struct {
	Name string `json:"name"`
	Dir  bool   `json:"dir,omitempty"`
	Link string `json:"link,omitempty"` // symlink target, when a symlink
}

// ProbeHost gathers the host facts NewPlan needs.
func ProbeHost() (*Host, error) {
	h := &Host{UID: os.Getuid(), GID: os.Getgid(), Env: os.Environ()}
	if u, err := user.LookupId(strconv.Itoa(h.UID)); err == nil {
		h.UserName, h.Home = u.Username, u.HomeDir
	}
	h.Shell = loginShell(h.UID)
	if env := os.Getenv("HOME"); env != "" {
		h.Home = env
	}
	if h.Home == "" {
		return nil, fmt.Errorf("no home directory for uid %d: set HOME", h.UID)
	}
	if r, err := filepath.EvalSymlinks(h.Home); err == nil {
		h.Home = r
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("reading the working directory: %w", err)
	}
	if r, err := filepath.EvalSymlinks(cwd); err == nil {
		cwd = r
	}
	h.Cwd = cwd

	if h.SubUIDs, err = userns.ReadSubIDs(userns.SubUIDFile, h.UserName, h.UID); err != nil {
		return nil, err
	}
	if h.SubGIDs, err = userns.ReadSubIDs(userns.SubGIDFile, h.UserName, h.UID); err != nil {
		return nil, err
	}
	// Under no_new_privs (inside another sandbox, say) a setuid helper gains
	// nothing and cannot write maps: map one id instead.
	if nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err != nil || nnp == 0 {
		h.NewUIDMap = privilegedHelper("newuidmap")
		h.NewGIDMap = privilegedHelper("newgidmap")
	}

	ents, err := os.ReadDir("/")
	if err != nil {
		return nil, fmt.Errorf("listing /: %w", err)
	}
	for _, e := range ents {
		re := RootEntry{Name: e.Name(), Dir: e.IsDir()}
		if e.Type()&os.ModeSymlink != 0 {
			re.Link, _ = os.Readlink("/" + e.Name())
			if fi, err := os.Stat("/" + e.Name()); err == nil {
				re.Dir = fi.IsDir()
			}
		}
		h.Root = append(h.Root, re)
	}
	h.RuntimeDir = RuntimeDir(h.UID)
	h.DataDir = session.DataDir(h.Home)
	h.probeHidden()
	h.FuseOverlayfs = FindFuseOverlayfs()
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil && len(b) < 64<<10 {
		h.ResolvConf = string(b)
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		h.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	h.InotifyInstances = int64(max(0, sysctl.Read("/proc/sys/user/max_inotify_instances")))
	h.InotifyWatches = int64(max(0, sysctl.Read("/proc/sys/user/max_inotify_watches")))
	_, err = os.Stat("/proc/self/ns/cgroup")
	h.CgroupNS = err == nil
	return h, nil
}

// privilegedHelper returns the path of a newuidmap-like helper when it is
// on PATH (or in /usr/bin) and can actually act: setuid root, or carrying
// file capabilities.
func privilegedHelper(name string) string {
	if h := userns.FindHelper(name); h.Setuid || h.Caps {
		return h.Path
	}
	return ""
}

// RuntimeDir is where per-run state lives: $XDG_RUNTIME_DIR/hutch when the
// variable names a directory we own, else a per-user directory in /tmp,
// which EnsureStateRoot creates 0700 and checks for ownership.
func RuntimeDir(uid int) string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		var st unix.Stat_t
		if unix.Stat(d, &st) == nil && int(st.Uid) == uid && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return filepath.Join(d, "hutch")
		}
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("hutch-%d", uid))
}

// loginShell reads uid's shell from /etc/passwd (os/user does not expose it).
func loginShell(uid int) string {
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return ""
	}
	return passwdShell(string(data), uid)
}
