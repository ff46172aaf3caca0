package profiles

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/sandbox"
)

// The ranks order a setting's values by how much they widen the sandbox.
var modeRank = map[string]int{"none": 0, "proxy": 1, "slirp4netns": 2, "pasta": 2, "host": 3}
var projectRank = map[string]int{"ro": 0, "overlay": 1, "rw": 2}
var homeRank = map[string]int{"tmpfs": 0, "overlay": 1, "ro": 1}

// widenings compares the effective settings with the base layer's: each
// step asks about one kind of widening, in the order the user reads them.
func (p *Profile) widenings() []Ask {
	if p.chosen {
		return nil
	}
	a := &asker{}
	p.fileWidenings(a)
	p.imageWidenings(a)
	p.placeWidenings(a)
	p.reachWidenings(a)
	p.secretWidenings(a)
	p.limitWidenings(a)
	p.serviceWidenings(a) // services.go
	return a.asks
}

// asker collects the project layer's widenings.
type asker struct{ asks []Ask }

// ask records a widening set by the project layer (mutate's trust-KEY
// switch drops it, to prove a test notices).
func (a *asker) ask(key, value, what string, src Source) {
	if src.layer != layerProject || mutate.Off("trust-"+key) {
		return
	}
	a.asks = append(a.asks, Ask{Key: key, Value: value, What: what, Src: src})
}

// settingStr is key's string in m and where it was set, else def.
func settingStr(m map[string]*setting, key, def string) (string, Source) {
	if s := m[key]; s != nil && s.set {
		if v, ok := s.value.(string); ok && v != "" {
			return v, s.src
		}
	}
	return def, Source{}
}

// settingBool is key's bool in m and where it was set.
func settingBool(m map[string]*setting, key string) (bool, Source) {
	if s := m[key]; s != nil && s.set {
		b, _ := s.value.(bool)
		return b, s.src
	}
	return false, Source{}
}

// hasItem reports whether the list key in m holds v.
func hasItem(m map[string]*setting, key, v string) bool {
	if s := m[key]; s != nil {
		for _, it := range s.items {
			if it.Value == v {
				return true
			}
		}
	}
	return false
}

// coveredBy reports whether a path of the lists keys in m holds abs.
func coveredBy(m map[string]*setting, keys []string, abs string) bool {
	for _, k := range keys {
		if s := m[k]; s != nil {
			for _, it := range s.items {
				if it.Abs != "" && within(it.Abs, abs) {
					return true
				}
			}
		}
	}
	return false
}

// fileWidenings asks about binds that reveal secrets, write or show
// outside the project, and tmpfs or masks over system paths.
func (p *Profile) fileWidenings(a *asker) {
	base, full := p.base, p.settings
	var hides []string
	if s := base["filesystem.hide"]; s != nil {
		for _, it := range s.items {
			hides = append(hides, it.Abs)
		}
	}
	baseProject, _ := settingStr(base, "filesystem.project", "rw")
	fsKeys := []string{"filesystem.rw", "filesystem.ro"}

	for _, key := range append(fsKeys, "filesystem.bind") {
		s := full[key]
		if s == nil {
			continue
		}
		for _, it := range s.items {
			// An optional path that does not exist binds nothing: asking
			// about it only teaches users to approve without reading.
			if hasItem(base, key, it.Value) || it.Optional && !exists(it.Abs) {
				continue
			}
			q := strconv.Quote(it.Value)
			sem := key // whose rules judge it
			if key == "filesystem.bind" {
				// A bind is judged as the rw or ro bind of its source would
				// be, and its target as a mount over a system path.
				if replaces("filesystem.tmpfs", it.Target) != "" {
					a.ask(key, q, "its target "+it.Target+" covers a system path with the bound source", it.Src)
					continue
				}
				sem = "filesystem." + it.Mode
			}
			switch sec := secretAt(it.Abs, p.home, hides); {
			case sec != "" || secretAt(it.Abs, p.realHome, hides) != "":
				if sec == "" {
					sec = secretAt(it.Abs, p.realHome, hides)
				}
				a.ask(key, q, "reveals the secret "+tilde(sec, p.home), it.Src)
			case sem == "filesystem.rw" && !within(p.projectDir, it.Abs) && !coveredBy(base, []string{"filesystem.rw"}, it.Abs):
				a.ask(key, q, "writable, outside the project"+also(exposes(it.Abs, p.home)), it.Src)
			case sem == "filesystem.rw" && within(p.projectDir, it.Abs) && baseProject != "rw" && !coveredBy(base, []string{"filesystem.rw"}, it.Abs):
				a.ask(key, q, fmt.Sprintf("writable, where your configuration makes the project %q", baseProject), it.Src)
			case sem == "filesystem.ro" && !within(p.projectDir, it.Abs) && !coveredBy(base, fsKeys, it.Abs):
				a.ask(key, q, "visible outside the project (read-only)"+also(exposes(it.Abs, p.home)), it.Src)
			}
		}
	}
	// A tmpfs or mask over a system path changes what every program in
	// the sandbox runs or reads.
	for _, key := range []string{"filesystem.tmpfs", "filesystem.hide"} {
		if s := full[key]; s != nil {
			for _, it := range s.items {
				if what := replaces(key, it.Abs); what != "" && !hasItem(base, key, it.Value) {
					a.ask(key, strconv.Quote(it.Value), what, it.Src)
				}
			}
		}
	}
}

// imageWidenings asks about an image root from outside the project or
// from a registry nothing of yours names.
func (p *Profile) imageWidenings(a *asker) {
	base, full := p.base, p.settings
	// An image from a local layout or archive shows that file's contents
	// inside: from outside the project it is a read-only bind of it.
	if v, src := settingStr(full, "filesystem.root", "host"); v != "host" {
		if bv, _ := settingStr(base, "filesystem.root", "host"); bv != v {
			if lp := localImagePath(v); lp != "" && !within(p.projectDir, lp) {
				what := "shows the image at "
				if strings.HasPrefix(v, "dir:") {
					what = "shows the root directory "
				}
				a.ask("filesystem.root", strconv.Quote(v), what+tilde(lp, p.home)+", outside the project", src)
			}
		}
	}
	// Pulling an image contacts its registry from the host, outside any
	// sandbox: a registry nothing of yours names is a widening.
	if v, src := settingStr(full, "filesystem.root", "host"); src.layer == layerProject {
		if reg := registryOf(v); reg != "" && !knownRegistry(reg, base) {
			a.ask("filesystem.root", strconv.Quote(v), "pulls from "+reg+", a registry neither hutch nor your configuration names (hutch contacts it from your machine, outside any sandbox)", src)
		}
	}
}

// placeWidenings asks about the project's, the home's and git's modes.
func (p *Profile) placeWidenings(a *asker) {
	base, full := p.base, p.settings
	baseProject, _ := settingStr(base, "filesystem.project", "rw")
	if v, src := settingStr(full, "filesystem.project", "rw"); projectRank[v] > projectRank[baseProject] {
		a.ask("filesystem.project", strconv.Quote(v), fmt.Sprintf("writes more than your configuration's %q", baseProject), src)
	}
	bh, _ := settingStr(base, "filesystem.home", "tmpfs")
	if v, src := settingStr(full, "filesystem.home", "tmpfs"); homeRank[v] > homeRank[bh] {
		a.ask("filesystem.home", strconv.Quote(v), "shows your home directory", src)
	}

	bg, _ := settingStr(base, "filesystem.git", sandbox.GitProtect)
	if v, src := settingStr(full, "filesystem.git", sandbox.GitProtect); v == sandbox.GitRW && bg != v {
		a.ask("filesystem.git", strconv.Quote(v), "lets the command change git's config and hooks, which git on your host runs", src)
	}
}

// reachWidenings asks about the network, host sockets, host loopback,
// nested namespaces and seccomp.
func (p *Profile) reachWidenings(a *asker) {
	base, full := p.base, p.settings
	bm, _ := settingStr(base, "network.mode", "none")
	if v, src := settingStr(full, "network.mode", "none"); modeRank[v] > modeRank[bm] {
		what := "network access beyond your configuration's " + strconv.Quote(bm)
		if v == "host" {
			what = "the host's network: every service listening on it, loopback included, and its abstract unix sockets (X11, D-Bus, others)"
		}
		a.ask("network.mode", strconv.Quote(v), what, src)
	}
	// Entries a later network.mode made moot (an npm profile's allow list
	// under mode "none") ask for nothing: the sandbox will not have them.
	var eff sandbox.Spec
	fill(&eff, full, exists)
	p.dropMoot(&eff)
	live := map[string]bool{}
	for _, v := range append(append([]string(nil), eff.Network.Allow...), eff.Network.Ports...) {
		live[v] = true
	}
	for _, key := range []string{"network.allow", "network.ports"} {
		if s := full[key]; s != nil {
			for _, it := range s.items {
				if !hasItem(base, key, it.Value) && live[it.Value] {
					what := "reaches a host your configuration does not allow"
					if key == "network.ports" {
						what = "publishes a port on the host"
					}
					a.ask(key, strconv.Quote(it.Value), what, it.Src)
				}
			}
		}
	}
	// Learn mode lets the command reach every host, and makes hutch write
	// a file: only yours to ask for.
	if v, src := settingStr(full, "network.learn", ""); v != "" {
		if bv, _ := settingStr(base, "network.learn", ""); bv != v {
			a.ask("network.learn", strconv.Quote(v), "learn mode: every host is reachable for the run (recorded), and hutch writes what was reached to "+v, src)
		}
	}
	if s := full["filesystem.sockets"]; s != nil {
		for _, it := range s.items {
			if !hasItem(base, "filesystem.sockets", it.Value) {
				a.ask("filesystem.sockets", strconv.Quote(it.Value), "connects to a program outside the sandbox", it.Src)
			}
		}
	}
	for _, b := range []struct{ key, what string }{
		{"network.host_loopback", "reaches services on the host's loopback"},
		{"security.nested", "allows user namespaces inside the sandbox"},
	} {
		was, _ := settingBool(base, b.key)
		if b.key == "network.host_loopback" && !eff.Network.HostLoopback {
			continue // moot under the effective mode
		}
		if now, src := settingBool(full, b.key); now && !was {
			a.ask(b.key, "true", b.what, src)
		}
	}
	bs, _ := settingStr(base, "security.seccomp", "default")
	if v, src := settingStr(full, "security.seccomp", "default"); v != bs && bs != "off" {
		what := "replaces the seccomp filter with a profile of its own"
		if v == "off" {
			what = "turns the seccomp filter off"
		} else if v == "default" {
			what = "replaces your seccomp profile with the default filter"
		}
		a.ask("security.seccomp", strconv.Quote(v), what, src)
	}
}

// secretWidenings asks about dotfiles, secret variables kept by name, and
// settings that read a secret variable.
func (p *Profile) secretWidenings(a *asker) {
	base, full := p.base, p.settings
	// Secret variables: kept by name, or read by an expansion.
	// Dotfiles beyond hutch shell's own set show more of your home.
	if s := full["process.dotfiles"]; s != nil {
		for _, it := range s.items {
			if !slices.Contains(sandbox.DefaultDotfiles, it.Value) && !hasItem(base, "process.dotfiles", it.Value) {
				a.ask("process.dotfiles", strconv.Quote(it.Value), "shows ~/"+it.Value+" from your home (read-only)", it.Src)
			}
		}
	}
	if s := full["env.keep"]; s != nil {
		for _, it := range s.items {
			if !isGlob(it.Value) && secretEnv(it.Value) && !hasItem(base, "env.keep", it.Value) {
				a.ask("env.keep", strconv.Quote(it.Value), "passes the secret variable "+it.Value, it.Src)
			}
		}
	}
	for _, info := range schema {
		s := full[info.Key]
		if s == nil {
			continue
		}
		check := func(refs []string, src Source, what string) {
			for _, r := range refs {
				if secretEnv(r) {
					a.ask(info.Key, what, "reads the secret variable $"+r, src)
					return
				}
			}
		}
		check(s.refs, s.src, fmt.Sprint(s.value))
		for _, it := range s.items {
			check(it.refs, it.Src, strconv.Quote(it.Raw))
		}
		for _, it := range sortedItems(s.env) {
			check(it.refs, it.Src, "{ "+it.Name+" = "+strconv.Quote(it.Raw)+" }")
		}
	}
}

// limitWidenings asks about raised or removed limits, root inside, and
// the limits warning and requirement.
func (p *Profile) limitWidenings(a *asker) {
	base, full := p.base, p.settings
	// Limits: raising or removing one your configuration sets.
	for _, key := range []string{"limits.memory", "limits.pids", "limits.cpu", "limits.nofile", "limits.nproc", "limits.fsize",
		"limits.tmpfs", "limits.inotify_instances", "limits.inotify_watches", "process.timeout", "process.kill_grace"} {
		b, f := base[key], full[key]
		if b == nil || !b.set || f == nil || f.src.layer != layerProject {
			continue
		}
		bv, fv := number(b.value), number(f.value)
		if bv > 0 && (fv == 0 || fv > bv) {
			what := fmt.Sprintf("raises your configuration's limit of %s", display(b.info, b.value))
			if fv == 0 {
				what = fmt.Sprintf("removes your configuration's limit of %s", display(b.info, b.value))
			}
			a.ask(key, display(f.info, f.value), what, f.src)
		}
	}
	// Root inside holds CAP_SETGID with setgroups allowed (apt, su and
	// runuser need it): it can drop your supplementary groups and so read
	// a file a group of yours is denied. A project does not choose that.
	if u, src := settingStr(full, "process.user", "self"); u == "root" && src.layer == layerProject {
		if bu, _ := settingStr(base, "process.user", "self"); bu != "root" {
			a.ask("process.user", strconv.Quote(u), "root inside, who can drop your supplementary groups (a file denied to one of your groups becomes readable)", src)
		}
	}
	// Silencing the warning that limits are not enforced is yours to do.
	if q, src := settingBool(full, "limits.quiet"); q && src.layer == layerProject {
		if b, _ := settingBool(base, "limits.quiet"); !b {
			a.ask("limits.quiet", "true", "hides the warning that memory and cpu limits are not enforced", src)
		}
	}
	if b, _ := settingBool(base, "limits.required"); b {
		if f, src := settingBool(full, "limits.required"); !f && src.layer == layerProject {
			a.ask("limits.required", "false", "lets limits go unenforced where your configuration requires them", src)
		}
	}
}
