package model

import (
	"encoding/json"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/slirp/allow"
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
	// Learn: every destination is allowed and recorded (network.learn);
	// the file is the CLI's to write.
	Learn bool `json:"learn,omitempty"`
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
	// Resolved is set by Resolve, after NewPlan: what a run derives from
	// the plan (the compiled filter, the parsed allowlist). Not JSON.
	Resolved *Resolved `json:"-"`
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
	// RootReadOnly makes / read-only once built (an OCI bundle's
	// root.readonly); its submounts keep their own flags.
	RootReadOnly bool `json:"root_readonly,omitempty"`
	// Services start before the command, in this order (services.go).
	Services []ServicePlan `json:"services,omitempty"`
}

// SeccompPlan says which filter the command gets.
type SeccompPlan struct {
	// Mode is "default" (hutch's policy), "off", or "profile" (Profile is
	// the path of an OCI/Docker seccomp JSON file).
	Mode    string `json:"mode"`
	Profile string `json:"profile,omitempty"`
	// Nested allows new user namespaces and mounts inside.
	Nested bool `json:"nested,omitempty"`
	// Bundle is an OCI bundle's own seccomp section, installed on top of
	// Mode's filter: both apply, and the stricter answer wins.
	Bundle json.RawMessage `json:"bundle,omitempty"`
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
	NoExec   bool   `json:"noexec,omitempty"`   // a bind whose files cannot be executed
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

// DefaultPath is PATH inside when the host has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ProxyPort is where the allowlist proxy listens on the sandbox's loopback.
const ProxyPort = 3128

// DNSPort is where, in network modes none and proxy, the supervisor
// answers lookups on the sandbox's loopback (UDP and TCP).
const DNSPort = 53

// HomeWrites is what the command left in a temporary home (home =
// "tmpfs"), which goes with the sandbox: go install's binaries, npm -g's
// packages, the logs whose paths a tool printed. The CLI says so at exit.
type HomeWrites struct {
	// Count is the files (and symlinks) written there; Paths the first
	// few, relative to home. More: the walk stopped at its bound.
	Count int      `json:"count"`
	Paths []string `json:"paths,omitempty"`
	More  bool     `json:"more,omitempty"`
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

// Any reports whether any cgroup limit is set.
func (l CgroupLimits) Any() bool { return l.Memory > 0 || l.Pids > 0 || l.CPU > 0 }

// Controllers lists the cgroup controllers the limits need.
func (l CgroupLimits) Controllers() []string {
	var c []string
	if l.Memory > 0 {
		c = append(c, "memory")
	}
	if l.Pids > 0 {
		c = append(c, "pids")
	}
	if l.CPU > 0 {
		c = append(c, "cpu")
	}
	return c
}

// Network modes (Plan.Network).
const (
	NetworkNone  = "none"
	NetworkHost  = "host"
	NetworkProxy = "proxy"
	NetworkSlirp = "slirp4netns"
	NetworkPasta = "pasta"
)

// Port is a published port: HostIP:HostPort on the host reaches Port on
// the sandbox's loopback.
type Port struct {
	HostIP   string `json:"host_ip"`
	HostPort int    `json:"host_port"`
	Port     int    `json:"port"`
	Proto    string `json:"proto"` // "tcp" or "udp"
}

// ServicePlan is a Service resolved: its own root's mounts, environment
// and readiness check. It runs with the command's ids, capabilities,
// rlimits and seccomp filter (Plan), as PID 1's child in new mount, pid
// and ipc namespaces (docs/internals.md).
type ServicePlan struct {
	Name   string   `json:"name"`
	Args   []string `json:"args"`
	Env    []string `json:"env"`
	Cwd    string   `json:"cwd"`
	Mounts []Mount  `json:"mounts"`
	// ReadyPort, when not 0, is polled on 127.0.0.1; ReadyCommand, when
	// set, is run until it exits 0.
	ReadyPort    int           `json:"ready_port,omitempty"`
	ReadyCommand []string      `json:"ready_command,omitempty"`
	ReadyTimeout time.Duration `json:"ready_timeout"`
	After        []string      `json:"after,omitempty"`
	// Image, when set, is the image whose layers are the service's root
	// (its first mount, an overlay at /).
	Image *PlanImage `json:"image,omitempty"`
}

// GitCheck is a path checked on the host after the run (Plan.GitAfter).
type GitCheck struct {
	Path string `json:"path"`
	// Quarantine moves a file that appeared aside (a planted commondir has
	// no use but to redirect git); otherwise the CLI warns.
	Quarantine bool `json:"quarantine,omitempty"`
}

// PlanImage is the image part of a plan.
type PlanImage struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

// MountOverlay is a plan step: the host tree Src shown at Dst through an
// overlay whose upper layer is the session's layer named Mount.Layer.
const MountOverlay = "overlay"

// Overlay drivers (filesystem.overlay).
const (
	OverlayAuto   = "auto"
	OverlayKernel = "kernel"
	OverlayFuse   = "fuse"
)

// LayerRootPrefix names the layer of a system directory: "root-DIR".
const LayerRootPrefix = "root-"

// LayersPlan is the layered part of a plan.
type LayersPlan struct {
	// Driver is "auto", "kernel" or "fuse", as asked; Launch resolves
	// "auto" (and a kept session keeps the driver it was made with).
	Driver string `json:"driver"`
	// Session is the kept session's name; "" throws the upper layers away
	// when the run ends.
	Session string `json:"session,omitempty"`
	// Dir holds the sessions: $XDG_DATA_HOME/hutch/sessions.
	Dir string `json:"dir"`
	// Project is the overlaid project directory ("" when the project is
	// not overlaid): the one layer apply writes back.
	Project string `json:"project,omitempty"`
	// FuseOverlayfs is the fuse-overlayfs binary, when found.
	FuseOverlayfs string `json:"fuse_overlayfs,omitempty"`
}

// Resolved is what a run derives from a plan beyond its JSON: the
// compiled seccomp program and the proxy's parsed allowlist. It stays out
// of the JSON (golden plans, hutch run --dry-run --json, the frame to
// hutch-init, which receives the program as bytes).
type Resolved struct {
	// Filter is the command's seccomp program; nil for mode "off".
	Filter []unix.SockFilter
	// Extra is a bundle's own program, installed after Filter; nil
	// without one.
	Extra []unix.SockFilter
	// Allow is plan.Allow parsed, for network mode "proxy".
	Allow []allow.Rule
}
