package ocispec

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// ownMounts are the destinations hutch always builds itself (its /proc
// with what runtimes mask, a minimal /dev, /sys of its own net namespace):
// a bundle's mount there is its usual boilerplate, logged with --debug.
var ownMounts = map[string]bool{
	"/proc": true, "/dev": true, "/dev/pts": true, "/dev/shm": true, "/dev/mqueue": true,
	"/sys": true, "/sys/fs/cgroup": true,
}

// mounts maps mounts: binds (any source, any destination), tmpfs, and
// hutch's own /proc, /dev and /sys.
func (m *mapper) mounts(c *config) error {
	fs := &m.b.Spec.Filesystem
	for i, mt := range c.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		if !filepath.IsAbs(mt.Destination) {
			return &Error{field, fmt.Sprintf("destination %q is not an absolute path", mt.Destination)}
		}
		dst := filepath.Clean(mt.Destination)
		if dst == "/" {
			return &Error{field, "a mount over / (use root.path)"}
		}
		if len(mt.UIDMappings)+len(mt.GIDMappings) > 0 {
			return &Error{field, "id-mapped mounts are not supported"}
		}
		opts := parseOptions(mt.Options)
		switch {
		case mt.Type == "bind" || opts.bind:
			if mt.Source == "" {
				return &Error{field, "a bind without a source"}
			}
			src := mt.Source
			if !filepath.IsAbs(src) {
				src = filepath.Join(m.bundle, src)
			}
			b := sandbox.Bind{Source: filepath.Clean(src), Target: dst, Mode: sandbox.BindRW, NoExec: opts.noexec}
			if opts.ro {
				b.Mode = sandbox.BindRO
			}
			if ownMounts[dst] {
				// runc's rootless spec binds the host's /sys at /sys: the
				// usual boilerplate, for which hutch has its own.
				if b.Source == dst {
					m.debug(field, "the host's %s: hutch's own instead", dst)
				} else {
					m.warn(field, "the bind of %s over %s is not applied: hutch builds %s itself", b.Source, dst, dst)
				}
				continue
			}
			fs.Binds = append(fs.Binds, b)
		case ownMounts[dst]:
			m.debug(field, "%s (%s) is hutch's own", dst, mt.Type)
			continue
		case mt.Type == "tmpfs":
			fs.Tmpfs = append(fs.Tmpfs, dst)
			if opts.ro || len(opts.data) > 0 {
				m.warn(field, "tmpfs %s: options %v not applied; it is a directory of the sandbox's one scratch tmpfs (limits.tmpfs)", dst, append(opts.data, map[bool]string{true: "ro"}[opts.ro]))
			}
		default:
			return &Error{field, fmt.Sprintf("a %q mount at %s is not supported (bind and tmpfs are; /proc, /dev and /sys are hutch's own)", mt.Type, dst)}
		}
		for _, o := range opts.unknown {
			m.warn(field, "option %q not supported; ignored", o)
		}
		if opts.loosen {
			m.debug(field, "suid, dev or exec options: hutch mounts binds nosuid and nodev always")
		}
	}
	return nil
}

type mountOptions struct {
	bind, ro, noexec, loosen bool
	data, unknown            []string
}

// parseOptions reads the options hutch honours (ro, noexec, bind,
// rbind), those it always sets or that change nothing for it (nosuid,
// nodev, rw, propagation), and data options (size=, mode=).
func parseOptions(opts []string) mountOptions {
	var o mountOptions
	for _, x := range opts {
		switch x {
		case "bind", "rbind":
			o.bind = true
		case "ro":
			o.ro = true
		case "rw":
			o.ro = false
		case "noexec":
			o.noexec = true
		case "nosuid", "nodev", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable",
			"relatime", "norelatime", "strictatime", "noatime", "atime", "nodiratime":
		case "suid", "dev", "exec":
			o.loosen = true
		default:
			if len(x) > 0 && (contains(x, '=')) {
				o.data = append(o.data, x)
			} else {
				o.unknown = append(o.unknown, x)
			}
		}
	}
	return o
}

func contains(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// linux maps linux: namespaces, id maps, resources, seccomp, masked and
// read-only paths.
func (m *mapper) linux(c *config) error {
	l := c.Linux
	if l == nil {
		m.b.HostNetwork = true
		return nil
	}
	if err := m.namespaces(l.Namespaces); err != nil {
		return err
	}
	bs := m.bundleSettings()
	var err error
	if bs.UIDMap, err = toMappings("linux.uidMappings", l.UIDMappings); err != nil {
		return err
	}
	if bs.GIDMap, err = toMappings("linux.gidMappings", l.GIDMappings); err != nil {
		return err
	}
	m.resources(l.Resources)
	if l.Seccomp != nil {
		raw, _ := json.Marshal(l.Seccomp)
		m.b.Seccomp = raw
	}
	for i, p := range l.MaskedPaths {
		if !filepath.IsAbs(p) {
			return &Error{fmt.Sprintf("linux.maskedPaths[%d]", i), fmt.Sprintf("%q is not absolute", p)}
		}
		m.b.Spec.Filesystem.Hide = append(m.b.Spec.Filesystem.Hide, filepath.Clean(p))
	}
	for i, p := range l.ReadonlyPaths {
		if !filepath.IsAbs(p) {
			return &Error{fmt.Sprintf("linux.readonlyPaths[%d]", i), fmt.Sprintf("%q is not absolute", p)}
		}
		bs.ReadOnlyPaths = append(bs.ReadOnlyPaths, filepath.Clean(p))
	}
	if len(l.Devices) > 0 {
		m.warn("linux.devices", "not supported: /dev holds null, zero, full, random, urandom, tty and a pty of its own")
	}
	if len(l.Sysctl) > 0 {
		keys := make([]string, 0, len(l.Sysctl))
		for k := range l.Sysctl {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		m.warn("linux.sysctl", "not supported; not set: %v", keys)
	}
	if l.CgroupsPath != "" {
		m.debug("linux.cgroupsPath", "hutch makes its own cgroup, a child of yours, when limits need one")
	}
	return nil
}

// namespaces: hutch always makes user, mount, pid, ipc, uts, net (unless
// the profile says host) and cgroup namespaces of its own. Joining one by
// path is refused.
func (m *mapper) namespaces(ns []namespace) error {
	have := map[string]bool{}
	for i, n := range ns {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		if n.Path != "" {
			return &Error{field, fmt.Sprintf("joining the %s namespace at %s is refused: hutch always makes namespaces of its own", n.Type, n.Path)}
		}
		switch n.Type {
		case "pid", "network", "mount", "ipc", "uts", "user", "cgroup":
			have[n.Type] = true
		case "time":
			m.warn(field, "a time namespace is not supported; the clocks are the host's")
		default:
			return &Error{field, fmt.Sprintf("%q is not a namespace type", n.Type)}
		}
	}
	if !have["network"] {
		m.b.HostNetwork = true
	}
	for _, t := range []string{"pid", "mount", "ipc", "uts", "user"} {
		if !have[t] {
			m.debug("linux.namespaces", "no %s namespace asked for; hutch makes one anyway", t)
		}
	}
	return nil
}

func (m *mapper) resources(r *resources) {
	if r == nil {
		return
	}
	if r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit > 0 {
		m.b.Memory = *r.Memory.Limit
	}
	if r.Pids != nil && r.Pids.Limit > 0 {
		m.b.Pids = r.Pids.Limit
	}
	if r.CPU != nil && r.CPU.Quota != nil && *r.CPU.Quota > 0 {
		period := uint64(100000)
		if r.CPU.Period != nil && *r.CPU.Period > 0 {
			period = *r.CPU.Period
		}
		m.b.CPU = float64(*r.CPU.Quota) / float64(period)
	}
}

func sortStrings(s []string) { sort.Strings(s) }
