package sandbox

import (
	"encoding/json"
	"fmt"
	"path"
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

// ProxyPort is where the allowlist proxy listens on the sandbox's loopback.
const ProxyPort = 3128

// DNSPort is where, in network modes none and proxy, the supervisor
// answers lookups on the sandbox's loopback (UDP and TCP).
const DNSPort = 53

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
		return "# hutch: network = proxy; hutch answers the names network.allow lets through,\n" +
			"# and every other name \"no such host\".\n" +
			"nameserver 127.0.0.1\n"
	}
	// A resolver with no server retries for minutes (EAI_AGAIN); hutch
	// answers at once instead, and names what was asked at exit.
	return "# hutch: this sandbox has no network (network = none); hutch answers every name \"no such host\"\n" +
		"nameserver 127.0.0.1\n"
}

func hostsFile(hostname string) string {
	return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n"
}

// buildEnv clears the environment down to the allowlist, the spec's keep
// patterns and its explicit settings.
func buildEnv(spec Spec, host *Host, p *Plan) []string {
	keep := append(append([]string(nil), defaultEnv...), spec.Env.Keep...)
	env := map[string]string{}
	if spec.Bundle != nil {
		// A bundle's environment is exact: of the host's, only what
		// env.keep names.
		keep = spec.Env.Keep
	} else if host.Image != nil && p.Image != nil {
		// The host's paths mean nothing in an image: only its terminal
		// and locale settings (and what env.keep names) pass.
		keep = append([]string{"TERM", "LANG", "LC_*", "TZ", "COLORTERM", "NO_COLOR"}, spec.Env.Keep...)
	}
	for _, kv := range host.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		// A secret-looking variable passes only when named exactly. Asked
		// only of a variable a glob lets through: matching every host
		// variable against the secret patterns was 1.4% of hutch run's CPU.
		for _, pat := range keep {
			if ok, _ := path.Match(pat, k); ok && (pat == k || !secretEnv(k) || mutate.Off("env-secrets")) {
				env[k] = v
				break
			}
		}
	}
	if spec.Bundle != nil {
		for _, kv := range spec.Bundle.Env {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	} else if p.Image != nil {
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
	if spec.Bundle == nil {
		env["container"] = "hutch"
		// For prompts and scripts: PS1='${HUTCH:+[hutch] }\u@\h …'.
		env["HUTCH"] = "1"
	}
	if spec.Network.Mode == NetworkProxy {
		// Both spellings: curl reads only the lower-case http_proxy.
		proxyURL := fmt.Sprintf("http://127.0.0.1:%d", ProxyPort)
		for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
			env[k] = proxyURL
		}
		// The services are on the sandbox's own loopback, not behind
		// the proxy.
		noProxy := strings.Join(append([]string{"localhost", "127.0.0.1", "::1"}, serviceNames(spec)...), ",")
		env["NO_PROXY"], env["no_proxy"] = noProxy, noProxy
	}
	if spec.Network.Mode == NetworkNone {
		noRetries(env)
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

// noRetries tells npm not to retry a failed fetch, unless your own
// environment says otherwise: npm retries every network error, "no such
// host" included, 10 s and then 60 s later, so with no network at all
// (mode none) `npm install` failed after 72 s instead of 2, though hutch's
// DNS answered at once.
func noRetries(env map[string]string) {
	for k := range env {
		if strings.EqualFold(k, "npm_config_fetch_retries") {
			return
		}
	}
	env["npm_config_fetch_retries"] = "0"
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
