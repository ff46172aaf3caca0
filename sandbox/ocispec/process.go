package ocispec

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// process maps process: the command, its environment and place, its ids,
// capabilities and rlimits.
func (m *mapper) process(c *config) error {
	p := c.Process
	if p == nil || len(p.Args) == 0 {
		return &Error{"process.args", "missing: the bundle names no command"}
	}
	spec, bs := &m.b.Spec, m.bundleSettings()
	spec.Args = p.Args
	for i, kv := range p.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			return &Error{fmt.Sprintf("process.env[%d]", i), fmt.Sprintf("%q is not NAME=VALUE", kv)}
		}
	}
	bs.Env = p.Env
	if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
		return &Error{"process.cwd", fmt.Sprintf("%q is not an absolute path", p.Cwd)}
	}
	spec.Process.Workdir = filepath.Clean(p.Cwd)
	m.b.Terminal = p.Terminal
	if p.ConsoleSize != nil && !p.Terminal {
		m.warn("process.consoleSize", "ignored without process.terminal")
	}
	bs.UID, bs.GID, bs.Groups = p.User.UID, p.User.GID, p.User.AdditionalGids
	if p.User.Umask != nil {
		m.warn("process.user.umask", "not supported; the umask is the caller's")
	}
	if p.User.Username != "" {
		m.warn("process.user.username", "ignored (a Windows field); uid and gid apply")
	}
	m.capabilities(p)
	if !p.NoNewPrivileges {
		m.debug("process.noNewPrivileges", "false, but hutch always sets no_new_privs")
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"apparmorProfile", p.ApparmorProfile != ""}, {"selinuxLabel", p.SelinuxLabel != ""}, {"oomScoreAdj", p.OOMScoreAdj != nil}} {
		if f.set {
			m.warn("process."+f.name, "not supported; ignored")
		}
	}
	return m.rlimits(p.Rlimits)
}

// defaultCaps is hutch's set for root inside (sandbox's defaultCaps): the
// most a bundle's command keeps.
var defaultCaps = map[string]bool{
	"CAP_CHOWN": true, "CAP_DAC_OVERRIDE": true, "CAP_FOWNER": true, "CAP_FSETID": true, "CAP_KILL": true,
	"CAP_SETGID": true, "CAP_SETUID": true, "CAP_SETPCAP": true, "CAP_NET_BIND_SERVICE": true, "CAP_SYS_CHROOT": true, "CAP_SETFCAP": true,
}

// capabilities keeps, of the bundle's bounding set (else its permitted
// or effective set), what hutch's default for root allows, and names
// the rest. A command that is not root inside holds none.
func (m *mapper) capabilities(p *process) {
	bs := m.bundleSettings()
	bs.Caps = []string{}
	if p.Capabilities == nil {
		return
	}
	asked := p.Capabilities.Bounding
	if asked == nil {
		asked = append(append([]string(nil), p.Capabilities.Permitted...), p.Capabilities.Effective...)
	}
	var refused []string
	seen := map[string]bool{}
	for _, c := range asked {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if seen[c] {
			continue
		}
		seen[c] = true
		if defaultCaps[c] {
			bs.Caps = append(bs.Caps, c)
		} else {
			refused = append(refused, c)
		}
	}
	if len(refused) > 0 {
		m.warn("process.capabilities", "not granted (hutch's most for root is %s): %s", strings.Join(sortedCaps(), " "), strings.Join(refused, " "))
	}
	if p.User.UID != 0 && len(p.Capabilities.Effective)+len(p.Capabilities.Permitted)+len(p.Capabilities.Ambient) > 0 {
		m.warn("process.capabilities", "a command that is not root inside (uid %d) holds no capability in hutch", p.User.UID)
	}
}

func sortedCaps() []string {
	var out []string
	for c := range defaultCaps {
		out = append(out, c)
	}
	sortStrings(out)
	return out
}

// rlimitNames are the rlimits hutch sets, by their OCI names.
var rlimitNames = map[string]bool{
	"CORE": true, "NOFILE": true, "NPROC": true, "FSIZE": true, "CPU": true, "AS": true, "DATA": true,
	"STACK": true, "MEMLOCK": true, "LOCKS": true, "SIGPENDING": true, "MSGQUEUE": true, "NICE": true,
	"RTPRIO": true, "RTTIME": true, "RSS": true,
}

// rlimits maps process.rlimits: NOFILE, NPROC and FSIZE to limits.*
// (where a profile's own bound still applies: the tighter one wins),
// the others as they are. An unprivileged process cannot raise a hard
// limit: init lowers one above its own to it.
func (m *mapper) rlimits(rs []rlimit) error {
	spec, bs := &m.b.Spec, m.bundleSettings()
	seen := map[string]bool{}
	for i, r := range rs {
		name, ok := strings.CutPrefix(r.Type, "RLIMIT_")
		field := fmt.Sprintf("process.rlimits[%d]", i)
		if !ok || !rlimitNames[name] {
			return &Error{field, fmt.Sprintf("%q is not an rlimit hutch knows", r.Type)}
		}
		if r.Soft > r.Hard {
			return &Error{field, fmt.Sprintf("%s: soft limit %d is above the hard limit %d", r.Type, r.Soft, r.Hard)}
		}
		if seen[name] {
			return &Error{field, r.Type + " is given twice"}
		}
		seen[name] = true
		// These three are profile keys, so that a site profile's bound is
		// compared with the bundle's (the tighter wins); they are set soft
		// and hard alike, at the hard limit.
		v := int64(min(r.Hard, 1<<62))
		switch name {
		case "NOFILE":
			spec.Limits.NoFile = v
		case "NPROC":
			spec.Limits.NProc = v
		case "FSIZE":
			spec.Limits.FSize = v
		default:
			bs.Rlimits = append(bs.Rlimits, sandbox.Rlimit{Resource: name, Soft: r.Soft, Hard: r.Hard})
		}
	}
	return nil
}
