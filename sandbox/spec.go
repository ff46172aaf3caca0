package sandbox

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hutch-sandbox/hutch/sandbox/model"
	"github.com/hutch-sandbox/hutch/sandbox/session"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
)

// Spec is the validated intent of a sandbox: what the user asked for, before
// it is resolved against the host. Profiles and CLI flags produce it. Its
// sections mirror the profile's tables ([filesystem], [network], …), and
// every field's `key` tag names its profile key; docs/profiles.md lists them.
//
// Paths are absolute or start with "~/" (the caller's home).
type Spec struct {
	// Args is the command and its arguments. Empty means the user's shell.
	Args []string `json:"args"`

	Filesystem Filesystem `json:"filesystem"`
	Network    Network    `json:"network"`
	Env        Env        `json:"env"`
	Process    Process    `json:"process"`
	Limits     Limits     `json:"limits"`
	Security   Security   `json:"security"`
	// Services run beside the command, each in a sandbox of its own on
	// the command's network ([services.NAME]; services.go).
	Services []Service `json:"services,omitempty"`

	// PreserveFDs passes the caller's fds 3 .. 3+N-1 to the command, as
	// podman run --preserve-fds does. An invocation setting, not a profile key.
	PreserveFDs int `json:"preserve_fds"`
	// TTY is "auto" (default: a pty when stdin is a terminal), "always" or
	// "never". An invocation setting, not a profile key.
	TTY string `json:"tty"`
	// Entrypoint replaces an image's entrypoint (nil keeps it; empty
	// clears it), as docker run --entrypoint does. An invocation setting.
	Entrypoint *[]string `json:"entrypoint,omitempty"`
	// Shell marks hutch shell: with an image, the shell runs instead of
	// the image's entrypoint and command.
	Shell bool `json:"shell,omitempty"`
	// Bundle holds what an OCI bundle (hutch oci) fixes exactly, beyond
	// the profile keys; nil for hutch run and shell (bundle.go).
	Bundle *Bundle `json:"bundle,omitempty"`
}

// Filesystem is what the command sees.
type Filesystem struct {
	// Root is "host" (default: the host's system directories, read-only),
	// "image:REF": a stored OCI image (image.ParseSource reads REF), its
	// layers overlaid with an upper layer of the run's or session's, or
	// "dir:PATH": a root filesystem directory (an OCI bundle's rootfs),
	// overlaid the same way, so that the directory itself is never written.
	Root string `json:"root" key:"filesystem.root"`
	// Project is the directory bound at its own path; default the working
	// directory.
	Project string `json:"project_dir" key:"filesystem.project_dir"`
	// ProjectMode is "rw" (default), "ro", or "overlay" (writes kept in an
	// upper layer for hutch diff and apply; docs/layers.md).
	ProjectMode string `json:"project" key:"filesystem.project"`
	// Overlay is the overlay driver: "auto" (default), "kernel" or "fuse".
	Overlay string `json:"overlay" key:"filesystem.overlay"`
	// RW and RO are host paths bound writable or read-only at their own
	// paths. Hide paths are masked (an empty directory or file).
	RW []string `json:"rw" key:"filesystem.rw"`
	// Create are RW paths (from "+PATH") made on the host, as directories
	// of mode 0700, when missing at launch: caches that should persist
	// from the first run on. The profile layer fills it.
	Create []string `json:"create,omitempty"`
	RO     []string `json:"ro" key:"filesystem.ro"`
	// Binds are host paths bound elsewhere inside ([[filesystem.bind]]
	// source, target, mode; an OCI bundle's mounts), opened and checked
	// as RW and RO are.
	Binds []Bind   `json:"bind,omitempty" key:"filesystem.bind"`
	Hide  []string `json:"hide" key:"filesystem.hide"`
	// Tmpfs paths get an empty, writable tmpfs.
	Tmpfs []string `json:"tmpfs" key:"filesystem.tmpfs"`
	// Sockets are host unix sockets, inside binds, that stay reachable;
	// every other socket a bind shows is covered (sockets.go).
	Sockets []string `json:"sockets,omitempty" key:"filesystem.sockets"`
	// Home is "tmpfs" (default: an empty home), "ro" (the real home,
	// read-only, secrets still masked) or "overlay" (the real home, secrets
	// still masked, writes kept in an upper layer).
	Home string `json:"home" key:"filesystem.home"`
	// Git is "protect" (default: in a writable project, git's config, hooks
	// and info, the .git entries and what points at them are read-only,
	// since git on the host runs what they say) or "rw". docs/security.md.
	Git string `json:"git" key:"filesystem.git"`
	// Session names the kept upper layers of an overlaid run; "" throws
	// them away when the run ends.
	Session string `json:"session" key:"filesystem.session"`
}

// Network is what the command can reach.
type Network struct {
	// Mode is "none" (default: only lo), "host", or (not supported yet)
	// "proxy", "slirp4netns", "pasta".
	Mode string `json:"mode" key:"network.mode"`
	// Allow lists hostnames for mode "proxy".
	Allow []string `json:"allow" key:"network.allow"`
	// Ports are published ports, "[HOSTIP:]HOSTPORT:PORT[/tcp|udp]".
	Ports []string `json:"ports" key:"network.ports"`
	// HostLoopback lets the sandbox reach the host's 127.0.0.1.
	HostLoopback bool `json:"host_loopback" key:"network.host_loopback"`
	// Learn is learn mode's output file: mode "proxy" with every host
	// allowed and recorded; "" for none.
	Learn string `json:"learn,omitempty" key:"network.learn"`
}

// Env is the command's environment: cleared down to an allowlist.
type Env struct {
	// Keep lists names or glob patterns of host variables passed through on
	// top of the built-in allowlist.
	Keep []string `json:"keep" key:"env.keep"`
	// Set sets variables, after Keep.
	Set map[string]string `json:"set" key:"env.set"`
}

// Process is who and how the command runs.
type Process struct {
	// User is "self" (default: the caller's own uid and gid inside) or
	// "root" (uid and gid 0 inside, mapped to the caller outside).
	User string `json:"user" key:"process.user"`
	// IDMap is "auto" (default: the caller's whole /etc/subuid range through
	// newuidmap when available, else one id) or "single" (one id only).
	IDMap string `json:"idmap" key:"process.idmap"`
	// Hostname inside the sandbox; default "hutch".
	Hostname string `json:"hostname" key:"process.hostname"`
	// Timeout kills the whole sandbox after this long (exit status 124);
	// 0 means none.
	Timeout time.Duration `json:"timeout" key:"process.timeout"`
	// KillGrace is how long the command has to end after a forwarded
	// SIGINT, SIGTERM or SIGHUP, or a timeout's SIGTERM, before hutch
	// kills the whole sandbox (exit status 137); 0 means the default, 10s.
	KillGrace time.Duration `json:"kill_grace" key:"process.kill_grace"`
	// Shell is the command hutch shell runs; default the user's login shell
	// (with an image, /bin/sh).
	Shell []string `json:"shell" key:"process.shell"`
	// Dotfiles are files in your home, by their path relative to it, bound
	// read-only into the empty home (process.dotfiles). nil: the default set
	// (DefaultDotfiles) for hutch shell, none for hutch run.
	Dotfiles []string `json:"dotfiles" key:"process.dotfiles"`
	// Workdir is where the command starts; with an image root the project
	// is bound there instead of at its own path. Default: the caller's
	// working directory when it is visible inside.
	Workdir string `json:"workdir" key:"process.workdir"`
}

// Limits bound what the command may consume. Zero means no limit.
type Limits struct {
	// Memory in bytes (cgroup memory.max).
	Memory int64 `json:"memory" key:"limits.memory"`
	// Pids is the most processes and threads at once (cgroup pids.max).
	Pids int64 `json:"pids" key:"limits.pids"`
	// CPU is the share of CPUs, in CPUs (cgroup cpu.max): 1.5 = one and a half.
	CPU float64 `json:"cpu" key:"limits.cpu"`
	// Tmpfs is the one budget, in bytes, that /tmp, /var/tmp, the tmpfs
	// home and filesystem.tmpfs paths share; 0 means a quarter of RAM, or
	// Memory when that is smaller.
	Tmpfs int64 `json:"tmpfs" key:"limits.tmpfs"`
	// InotifyInstances and InotifyWatches bound the sandbox's inotify use
	// in its own user namespace; 0 means half of the host's limits.
	InotifyInstances int64 `json:"inotify_instances" key:"limits.inotify_instances"`
	InotifyWatches   int64 `json:"inotify_watches" key:"limits.inotify_watches"`
	// NoFile, NProc and FSize (bytes) are rlimits.
	NoFile int64 `json:"nofile" key:"limits.nofile"`
	NProc  int64 `json:"nproc" key:"limits.nproc"`
	FSize  int64 `json:"fsize" key:"limits.fsize"`
	// Required makes a limit that cannot be enforced (no delegated cgroup)
	// an error instead of a warning.
	Required bool `json:"required" key:"limits.required"`
	// Quiet drops the warning, printed once per boot, that memory and cpu
	// limits are not enforced where no cgroup is delegated.
	Quiet bool `json:"quiet" key:"limits.quiet"`
}

// Security holds the kernel-facing defences.
type Security struct {
	// Seccomp is "default", "off", or the path of an OCI/Docker seccomp
	// JSON profile.
	Seccomp string `json:"seccomp" key:"security.seccomp"`
	// Nested allows user namespaces inside (running hutch, bwrap or podman
	// within the sandbox).
	Nested bool `json:"nested" key:"security.nested"`
}

// Defaults and values for Spec fields.
const (
	DefaultHostname = "hutch"
	UserSelf        = "self"
	UserRoot        = "root"
	IDMapAuto       = "auto"
	IDMapSingle     = "single"
	NetworkNone     = model.NetworkNone
	NetworkHost     = model.NetworkHost
	NetworkProxy    = model.NetworkProxy
	NetworkSlirp    = model.NetworkSlirp
	NetworkPasta    = model.NetworkPasta
	GitProtect      = "protect"
	GitRW           = "rw"
)

// DefaultKillGrace is process.kill_grace's default.
const DefaultKillGrace = 10 * time.Second

// FieldError is a Spec value no plan can satisfy. Key is the profile key
// (filesystem.rw, network.mode, …) so that profiles can point at the line
// that set it and the CLI at the flag.
type FieldError struct {
	Key string
	Msg string
	// Unsupported marks a valid value whose feature has not landed yet.
	Unsupported bool
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Validate checks s and fills defaults. The error joins one *FieldError per
// problem.
func (s *Spec) Validate() error {
	s.fillDefaults()
	var c checks
	s.checkFilesystem(&c)
	s.checkNetwork(&c)
	s.checkEnv(&c)
	s.checkProcess(&c)
	s.checkLimits(&c)
	s.checkServices(&c)
	return errors.Join(c...)
}

// checks collects one *FieldError per problem, in the order found.
type checks []error

func (c *checks) bad(key, format string, args ...any) {
	*c = append(*c, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// oneOf reports v unless it is one of ok.
func (c *checks) oneOf(key, v string, ok ...string) bool {
	for _, o := range ok {
		if v == o {
			return true
		}
	}
	c.bad(key, "%q is not one of %s", v, strings.Join(ok, ", "))
	return false
}

// paths reports a path that is not absolute (or ~/...), or that covers /.
func (c *checks) paths(key string, ps []string) {
	for _, p := range ps {
		if !filepath.IsAbs(p) && p != "~" && !strings.HasPrefix(p, "~/") {
			c.bad(key, "path %q must be absolute (or start with ~/)", p)
		} else if filepath.Clean(p) == "/" && key != "filesystem.ro" {
			c.bad(key, "%q would cover the whole filesystem", p)
		}
	}
}

// fillDefaults sets what the spec leaves empty.
func (s *Spec) fillDefaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	fs, nw, pr := &s.Filesystem, &s.Network, &s.Process
	def(&fs.Root, "host")
	def(&fs.ProjectMode, "rw")
	def(&fs.Overlay, "auto")
	def(&fs.Home, "tmpfs")
	def(&fs.Git, GitProtect)
	def(&nw.Mode, NetworkNone)
	if nw.Learn != "" && nw.Mode == NetworkNone {
		nw.Mode = NetworkProxy // learn mode is the proxy, allowing everything
	}
	if !treeRoot(fs.Root) {
		// With an image the default is the image's own user.
		def(&pr.User, UserSelf)
	}
	def(&pr.IDMap, IDMapAuto)
	def(&pr.Hostname, DefaultHostname)
	def(&s.Security.Seccomp, "default")
	def(&s.TTY, "auto")
}

// checkFilesystem checks the filesystem keys and process.dotfiles.
func (s *Spec) checkFilesystem(c *checks) {
	fs := &s.Filesystem
	if ref, ok := strings.CutPrefix(fs.Root, "image:"); ok {
		if strings.TrimSpace(ref) == "" {
			c.bad("filesystem.root", "%q names no image: write image:REF, as in image:docker.io/library/alpine:3.20", fs.Root)
		}
	} else if dir, ok := strings.CutPrefix(fs.Root, "dir:"); ok {
		if !filepath.IsAbs(dir) || filepath.Clean(dir) == "/" {
			c.bad("filesystem.root", "%q: write dir:PATH with the absolute path of a root filesystem directory (not /)", fs.Root)
		}
	} else {
		c.oneOf("filesystem.root", fs.Root, "host", "image:REF", "dir:PATH")
	}
	c.oneOf("filesystem.project", fs.ProjectMode, "rw", "ro", "overlay")
	c.oneOf("filesystem.overlay", fs.Overlay, OverlayAuto, OverlayKernel, OverlayFuse)
	c.oneOf("filesystem.home", fs.Home, "tmpfs", "ro", "overlay")
	c.oneOf("filesystem.git", fs.Git, GitProtect, GitRW)
	if fs.Session != "" && !session.ValidName(fs.Session) {
		c.bad("filesystem.session", "%q is not a valid session name (letters, digits, '.', '_' and '-', at most 64, not starting with '.' or '-')", fs.Session)
	}
	c.paths("filesystem.rw", fs.RW)
	c.paths("filesystem.rw", fs.Create)
	c.paths("filesystem.ro", fs.RO)
	c.paths("filesystem.hide", fs.Hide)
	c.paths("filesystem.tmpfs", fs.Tmpfs)
	for _, d := range s.Process.Dotfiles {
		if d == "" || filepath.IsAbs(d) || strings.HasPrefix(d, "~") || filepath.Clean(d) != d || d == "." || strings.HasPrefix(d, "../") || d == ".." {
			c.bad("process.dotfiles", "%q: name a file by its path in your home, as in \".bashrc\" or \".config/starship.toml\"", d)
		}
	}
	c.paths("filesystem.sockets", fs.Sockets)
	checkBinds(c, fs.Binds)
	if fs.Project != "" {
		c.paths("filesystem.project_dir", []string{fs.Project})
	}
}

// checkNetwork checks the network keys.
func (s *Spec) checkNetwork(c *checks) {
	nw := &s.Network
	c.oneOf("network.mode", nw.Mode, NetworkNone, NetworkHost, NetworkProxy, NetworkSlirp, NetworkPasta)
	if len(nw.Allow) > 0 && nw.Mode != NetworkProxy {
		c.bad("network.allow", "only applies to mode = \"proxy\" (mode is %q)", nw.Mode)
	}
	if nw.Learn != "" && nw.Mode != NetworkProxy {
		c.bad("network.learn", "learn mode records what the proxy lets through: it needs mode \"proxy\" (or \"none\", which it turns into proxy), not %q", nw.Mode)
	}
	if len(nw.Allow) > 0 {
		if _, err := proxy.ParseAllow(nw.Allow); err != nil {
			c.bad("network.allow", "%v", err)
		}
	}
	if nw.HostLoopback && nw.Mode != NetworkProxy && nw.Mode != NetworkSlirp && nw.Mode != NetworkPasta {
		c.bad("network.host_loopback", "only applies to modes proxy, slirp4netns and pasta (mode is %q)", nw.Mode)
	}
	if len(nw.Ports) > 0 && nw.Mode == NetworkHost {
		c.bad("network.ports", "publishing ports makes no sense with the host's network: the command binds host ports itself")
	}
	seen := map[string]bool{}
	for _, ps := range nw.Ports {
		pm, err := ParsePort(ps)
		if err != nil {
			c.bad("network.ports", "%v", err)
			continue
		}
		key := fmt.Sprintf("%s:%d/%s", pm.HostIP, pm.HostPort, pm.Proto)
		if seen[key] {
			c.bad("network.ports", "host port %s is published twice", key)
		}
		seen[key] = true
	}
}

// checkEnv checks env.set and env.keep.
func (s *Spec) checkEnv(c *checks) {
	for k := range s.Env.Set {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			c.bad("env.set", "variable name %q is invalid", k)
		}
	}
	for _, pat := range s.Env.Keep {
		if _, err := filepath.Match(pat, ""); err != nil || pat == "" {
			c.bad("env.keep", "pattern %q is not a valid glob", pat)
		}
	}
}

// checkProcess checks the process keys, and defaults kill_grace.
func (s *Spec) checkProcess(c *checks) {
	fs, pr := &s.Filesystem, &s.Process
	switch {
	case pr.User == "" || pr.User == UserSelf || pr.User == UserRoot:
	case treeRoot(fs.Root):
		if !validUserSpec(pr.User) {
			c.bad("process.user", "%q is not self, root, or an image user as NAME, UID, NAME:GROUP or UID:GID", pr.User)
		}
	default:
		c.bad("process.user", "%q is not one of self, root (a user name or id needs an image root)", pr.User)
	}
	if pr.Workdir != "" && !filepath.IsAbs(pr.Workdir) {
		c.bad("process.workdir", "%q must be an absolute path inside the sandbox", pr.Workdir)
	} else if pr.Workdir != "" && filepath.Clean(pr.Workdir) == "/" && strings.HasPrefix(fs.Root, "image:") && s.Bundle == nil {
		c.bad("process.workdir", "the project cannot be bound over the image's /; pick a directory such as /src")
	}
	c.oneOf("process.idmap", pr.IDMap, IDMapAuto, IDMapSingle)
	if !validHostname(pr.Hostname) {
		c.bad("process.hostname", "%q is not a valid host name (letters, digits, '-' and '.', at most 64)", pr.Hostname)
	}
	if pr.Timeout < 0 {
		c.bad("process.timeout", "%v is negative", pr.Timeout)
	}
	if pr.KillGrace < 0 {
		c.bad("process.kill_grace", "%v is negative", pr.KillGrace)
	} else if pr.KillGrace == 0 {
		pr.KillGrace = DefaultKillGrace
	}
}

// checkLimits checks the limits, security.seccomp, preserve-fds and tty.
func (s *Spec) checkLimits(c *checks) {
	l := s.Limits
	for _, v := range []struct {
		key string
		n   int64
	}{{"limits.memory", l.Memory}, {"limits.pids", l.Pids}, {"limits.tmpfs", l.Tmpfs},
		{"limits.inotify_instances", l.InotifyInstances}, {"limits.inotify_watches", l.InotifyWatches}, {"limits.nofile", l.NoFile}, {"limits.nproc", l.NProc}, {"limits.fsize", l.FSize}} {
		if v.n < 0 {
			c.bad(v.key, "%d is negative", v.n)
		}
	}
	if l.CPU < 0 {
		c.bad("limits.cpu", "%v is negative", l.CPU)
	}
	if sc := s.Security.Seccomp; sc != "default" && sc != "off" && !filepath.IsAbs(sc) && !strings.HasPrefix(sc, "~/") {
		c.bad("security.seccomp", "%q is not \"default\", \"off\" or the absolute path of an OCI seccomp profile", sc)
	}

	if s.PreserveFDs < 0 || s.PreserveFDs > 1000 {
		c.bad("preserve-fds", "%d is out of range 0..1000", s.PreserveFDs)
	}
	c.oneOf("tty", s.TTY, "auto", "always", "never")
}

// validUserSpec accepts an image user as docker's --user takes it.
func validUserSpec(u string) bool {
	name, group, _ := strings.Cut(u, ":")
	ok := func(s string) bool {
		if s == "" || len(s) > 64 {
			return false
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
				return false
			}
		}
		return true
	}
	return ok(name) && (group == "" && !strings.HasSuffix(u, ":") || ok(group))
}

func validHostname(h string) bool {
	if h == "" || len(h) > 64 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return h[0] != '-' && h[0] != '.'
}

// Port is a published port (sandbox/model).
type Port = model.Port

// ParsePort parses "[HOSTIP:]HOSTPORT:PORT[/tcp|udp]"; HOSTIP defaults to
// 127.0.0.1, so a published port is not open to the network unless asked.
func ParsePort(s string) (Port, error) {
	p := Port{HostIP: "127.0.0.1", Proto: "tcp"}
	spec := s
	if i := strings.LastIndex(spec, "/"); i >= 0 {
		p.Proto, spec = strings.ToLower(spec[i+1:]), spec[:i]
	}
	switch p.Proto {
	case "tcp", "udp":
	default:
		return p, fmt.Errorf("port %q: protocol %q is not tcp or udp", s, p.Proto)
	}
	// An IPv6 host address is bracketed: [::1]:8080:80.
	if strings.HasPrefix(spec, "[") {
		end := strings.Index(spec, "]:")
		if end < 0 {
			return p, fmt.Errorf("port %q: unclosed [ in the host address", s)
		}
		p.HostIP, spec = spec[1:end], spec[end+2:]
	} else if parts := strings.Split(spec, ":"); len(parts) == 3 {
		p.HostIP, spec = parts[0], parts[1]+":"+parts[2]
	}
	hp, cp, ok := strings.Cut(spec, ":")
	if !ok {
		return p, fmt.Errorf("port %q is not [HOSTIP:]HOSTPORT:PORT[/tcp|udp]", s)
	}
	var err error
	if p.HostPort, err = portNumber(hp); err != nil {
		return p, fmt.Errorf("port %q: host port: %v", s, err)
	}
	if p.Port, err = portNumber(cp); err != nil {
		return p, fmt.Errorf("port %q: sandbox port: %v", s, err)
	}
	if net.ParseIP(p.HostIP) == nil {
		return p, fmt.Errorf("port %q: %q is not an IP address", s, p.HostIP)
	}
	return p, nil
}

func portNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number from 1 to 65535", s)
	}
	return n, nil
}
