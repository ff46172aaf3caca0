package profiles

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/sandbox"
)

// Trust: a project's hutch.toml arrives with a cloned repository, so it is
// untrusted input. It may narrow anything; it may not widen what your own
// configuration allows until you approve that exact content, as direnv's
// `allow` does. Approval records the sha256 of the file, and of every file
// it extends by path, under your config directory; a changed file needs
// approval again.

// TrustState is whether the project's profile may run.
type TrustState int

const (
	// TrustNotNeeded: there is no project profile, or it asks for nothing
	// beyond your configuration, or you picked it by name with --profile.
	TrustNotNeeded TrustState = iota
	// Trusted: you approved this exact content with `hutch trust`.
	Trusted
	// TrustedByFlag: --trust or HUTCH_TRUST=1 approves it for this run.
	TrustedByFlag
	// Untrusted: it widens your configuration and was never approved.
	Untrusted
	// TrustChanged: you approved it once, and it has changed since.
	TrustChanged
)

func (t TrustState) String() string {
	return [...]string{"not needed", "trusted", "trusted for this run (--trust)", "not trusted", "changed since you trusted it"}[t]
}

// OK reports whether a sandbox may run with the profile.
func (t TrustState) OK() bool { return t <= TrustedByFlag }

// Ask is one thing a project profile asks for beyond your configuration.
type Ask struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// What says why it is a widening.
	What string `json:"what"`
	Src  Source `json:"origin"`
}

func (a Ask) String() string {
	return fmt.Sprintf("%s: %s %s: %s", a.Src.Where(), a.Key, a.Value, a.What)
}

// FormatAsks writes asks one per line, those that come from a profile the
// project extends grouped under the extends that brought them in.
func FormatAsks(asks []Ask) []string {
	anchor := func(a Ask) (int, int) {
		if a.Src.via != nil && a.Src.Kind != FromProject {
			return a.Src.via.Position()
		}
		return a.Src.Position()
	}
	asks = append([]Ask(nil), asks...)
	sort.SliceStable(asks, func(i, j int) bool {
		li, ci := anchor(asks[i])
		lj, cj := anchor(asks[j])
		return li < lj || li == lj && ci < cj
	})
	var out []string
	group := ""
	for _, a := range asks {
		if a.Src.via == nil || a.Src.Kind == FromProject {
			group = ""
			out = append(out, a.String())
			continue
		}
		name := a.Src.Name
		if a.Src.via.pos != nil && a.Src.via.pos.raw != "" {
			name = a.Src.via.pos.raw
		} else if name == "" {
			name = a.Src.File
		}
		g := fmt.Sprintf("%s: extends %q, which asks for:", a.Src.via.Where(), name)
		if g != group {
			out = append(out, g)
			group = g
		}
		out = append(out, fmt.Sprintf("    %s %s: %s", a.Key, a.Value, a.What))
	}
	return out
}

// Asks lists what the project's profile asks for beyond your
// configuration (empty when nothing, or when there is no project profile).
func (p *Profile) Asks() []Ask { return p.asks }

// TrustState says whether the project's profile may run.
func (p *Profile) TrustState() TrustState { return p.trust }

var modeRank = map[string]int{"none": 0, "proxy": 1, "slirp4netns": 2, "pasta": 2, "host": 3}
var projectRank = map[string]int{"ro": 0, "overlay": 1, "rw": 2}
var homeRank = map[string]int{"tmpfs": 0, "overlay": 1, "ro": 1}

// widenings compares the effective settings with the base layer's.
func (p *Profile) widenings() []Ask {
	if p.chosen {
		return nil
	}
	var asks []Ask
	ask := func(key, value, what string, src Source) {
		if src.layer != layerProject || mutate.Off("trust-"+key) {
			return
		}
		asks = append(asks, Ask{Key: key, Value: value, What: what, Src: src})
	}
	base, full := p.base, p.settings
	str := func(m map[string]*setting, key, def string) (string, Source) {
		if s := m[key]; s != nil && s.set {
			if v, ok := s.value.(string); ok && v != "" {
				return v, s.src
			}
		}
		return def, Source{}
	}
	in := func(m map[string]*setting, key, v string) bool {
		if s := m[key]; s != nil {
			for _, it := range s.items {
				if it.Value == v {
					return true
				}
			}
		}
		return false
	}
	covered := func(m map[string]*setting, keys []string, abs string) bool {
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
	var hides []string
	if s := base["filesystem.hide"]; s != nil {
		for _, it := range s.items {
			hides = append(hides, it.Abs)
		}
	}
	baseProject, _ := str(base, "filesystem.project", "rw")
	fsKeys := []string{"filesystem.rw", "filesystem.ro"}

	for _, key := range fsKeys {
		s := full[key]
		if s == nil {
			continue
		}
		for _, it := range s.items {
			// An optional path that does not exist binds nothing: asking
			// about it only teaches users to approve without reading.
			if in(base, key, it.Value) || it.Optional && !exists(it.Abs) {
				continue
			}
			q := strconv.Quote(it.Value)
			switch sec := secretAt(it.Abs, p.home, hides); {
			case sec != "" || secretAt(it.Abs, p.realHome, hides) != "":
				if sec == "" {
					sec = secretAt(it.Abs, p.realHome, hides)
				}
				ask(key, q, "reveals the secret "+tilde(sec, p.home), it.Src)
			case key == "filesystem.rw" && !within(p.projectDir, it.Abs) && !covered(base, []string{"filesystem.rw"}, it.Abs):
				ask(key, q, "writable, outside the project"+also(exposes(it.Abs, p.home)), it.Src)
			case key == "filesystem.rw" && within(p.projectDir, it.Abs) && baseProject != "rw" && !covered(base, []string{"filesystem.rw"}, it.Abs):
				ask(key, q, fmt.Sprintf("writable, where your configuration makes the project %q", baseProject), it.Src)
			case key == "filesystem.ro" && !within(p.projectDir, it.Abs) && !covered(base, fsKeys, it.Abs):
				ask(key, q, "visible outside the project (read-only)"+also(exposes(it.Abs, p.home)), it.Src)
			}
		}
	}
	// A tmpfs or mask over a system path changes what every program in
	// the sandbox runs or reads.
	for _, key := range []string{"filesystem.tmpfs", "filesystem.hide"} {
		if s := full[key]; s != nil {
			for _, it := range s.items {
				if what := replaces(key, it.Abs); what != "" && !in(base, key, it.Value) {
					ask(key, strconv.Quote(it.Value), what, it.Src)
				}
			}
		}
	}
	// An image from a local layout or archive shows that file's contents
	// inside: from outside the project it is a read-only bind of it.
	if v, src := str(full, "filesystem.root", "host"); v != "host" {
		if bv, _ := str(base, "filesystem.root", "host"); bv != v {
			if lp := localImagePath(v); lp != "" && !within(p.projectDir, lp) {
				ask("filesystem.root", strconv.Quote(v), "shows the image at "+tilde(lp, p.home)+", outside the project", src)
			}
		}
	}
	// Pulling an image contacts its registry from the host, outside any
	// sandbox: a registry nothing of yours names is a widening.
	if v, src := str(full, "filesystem.root", "host"); src.layer == layerProject {
		if reg := registryOf(v); reg != "" && !knownRegistry(reg, base) {
			ask("filesystem.root", strconv.Quote(v), "pulls from "+reg+", a registry neither hutch nor your configuration names (hutch contacts it from your machine, outside any sandbox)", src)
		}
	}
	if v, src := str(full, "filesystem.project", "rw"); projectRank[v] > projectRank[baseProject] {
		ask("filesystem.project", strconv.Quote(v), fmt.Sprintf("writes more than your configuration's %q", baseProject), src)
	}
	bh, _ := str(base, "filesystem.home", "tmpfs")
	if v, src := str(full, "filesystem.home", "tmpfs"); homeRank[v] > homeRank[bh] {
		ask("filesystem.home", strconv.Quote(v), "shows your home directory", src)
	}

	bg, _ := str(base, "filesystem.git", sandbox.GitProtect)
	if v, src := str(full, "filesystem.git", sandbox.GitProtect); v == sandbox.GitRW && bg != v {
		ask("filesystem.git", strconv.Quote(v), "lets the command change git's config and hooks, which git on your host runs", src)
	}

	bm, _ := str(base, "network.mode", "none")
	if v, src := str(full, "network.mode", "none"); modeRank[v] > modeRank[bm] {
		what := "network access beyond your configuration's " + strconv.Quote(bm)
		if v == "host" {
			what = "the host's network: every service listening on it, loopback included, and its abstract unix sockets (X11, D-Bus, others)"
		}
		ask("network.mode", strconv.Quote(v), what, src)
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
				if !in(base, key, it.Value) && live[it.Value] {
					what := "reaches a host your configuration does not allow"
					if key == "network.ports" {
						what = "publishes a port on the host"
					}
					ask(key, strconv.Quote(it.Value), what, it.Src)
				}
			}
		}
	}
	if s := full["filesystem.sockets"]; s != nil {
		for _, it := range s.items {
			if !in(base, "filesystem.sockets", it.Value) {
				ask("filesystem.sockets", strconv.Quote(it.Value), "connects to a program outside the sandbox", it.Src)
			}
		}
	}
	boolOf := func(m map[string]*setting, key string) (bool, Source) {
		if s := m[key]; s != nil && s.set {
			b, _ := s.value.(bool)
			return b, s.src
		}
		return false, Source{}
	}
	for _, b := range []struct{ key, what string }{
		{"network.host_loopback", "reaches services on the host's loopback"},
		{"security.nested", "allows user namespaces inside the sandbox"},
	} {
		was, _ := boolOf(base, b.key)
		if b.key == "network.host_loopback" && !eff.Network.HostLoopback {
			continue // moot under the effective mode
		}
		if now, src := boolOf(full, b.key); now && !was {
			ask(b.key, "true", b.what, src)
		}
	}
	bs, _ := str(base, "security.seccomp", "default")
	if v, src := str(full, "security.seccomp", "default"); v != bs && bs != "off" {
		what := "replaces the seccomp filter with a profile of its own"
		if v == "off" {
			what = "turns the seccomp filter off"
		} else if v == "default" {
			what = "replaces your seccomp profile with the default filter"
		}
		ask("security.seccomp", strconv.Quote(v), what, src)
	}

	// Secret variables: kept by name, or read by an expansion.
	// Dotfiles beyond hutch shell's own set show more of your home.
	if s := full["process.dotfiles"]; s != nil {
		for _, it := range s.items {
			if !slices.Contains(sandbox.DefaultDotfiles, it.Value) && !in(base, "process.dotfiles", it.Value) {
				ask("process.dotfiles", strconv.Quote(it.Value), "shows ~/"+it.Value+" from your home (read-only)", it.Src)
			}
		}
	}
	if s := full["env.keep"]; s != nil {
		for _, it := range s.items {
			if !isGlob(it.Value) && secretEnv(it.Value) && !in(base, "env.keep", it.Value) {
				ask("env.keep", strconv.Quote(it.Value), "passes the secret variable "+it.Value, it.Src)
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
					ask(info.Key, what, "reads the secret variable $"+r, src)
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
			ask(key, display(f.info, f.value), what, f.src)
		}
	}
	// Root inside holds CAP_SETGID with setgroups allowed (apt, su and
	// runuser need it): it can drop your supplementary groups and so read
	// a file a group of yours is denied. A project does not choose that.
	if u, src := str(full, "process.user", "self"); u == "root" && src.layer == layerProject {
		if bu, _ := str(base, "process.user", "self"); bu != "root" {
			ask("process.user", strconv.Quote(u), "root inside, who can drop your supplementary groups (a file denied to one of your groups becomes readable)", src)
		}
	}
	// Silencing the warning that limits are not enforced is yours to do.
	if q, src := boolOf(full, "limits.quiet"); q && src.layer == layerProject {
		if b, _ := boolOf(base, "limits.quiet"); !b {
			ask("limits.quiet", "true", "hides the warning that memory and cpu limits are not enforced", src)
		}
	}
	if b, _ := boolOf(base, "limits.required"); b {
		if f, src := boolOf(full, "limits.required"); !f && src.layer == layerProject {
			ask("limits.required", "false", "lets limits go unenforced where your configuration requires them", src)
		}
	}
	return asks
}

// also appends a plain-words detail to a widening's description.
func also(detail string) string {
	if detail == "" {
		return ""
	}
	return ": " + detail
}

func number(v any) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case float64:
		return x
	case time.Duration:
		return float64(x)
	}
	return 0
}

// TrustError refuses to run a project profile that widens your
// configuration without your approval.
type TrustError struct {
	// File is the project profile as the user would name it; Path its
	// absolute path.
	File, Path string
	Changed    bool
	Asks       []Ask
}

func (e *TrustError) Error() string {
	var b strings.Builder
	if e.Changed {
		fmt.Fprintf(&b, "%s changed since you trusted it, and it asks for more than your configuration allows:", e.File)
	} else {
		fmt.Fprintf(&b, "%s is not trusted, and it asks for more than your configuration allows:", e.File)
	}
	for _, l := range FormatAsks(e.Asks) {
		b.WriteString("\n  " + l)
	}
	return b.String()
}

// Hint says how to approve the file.
func (e *TrustError) Hint() string {
	return fmt.Sprintf("read %s, then approve this exact content with: hutch trust %s\nor approve it for one run with --trust (HUTCH_TRUST=1 in CI)", e.File, shellQuote(e.File))
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./~:+@%=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// trustError is the refusal for p, or nil when it may run.
func (p *Profile) trustError() error {
	if p.trust.OK() {
		return nil
	}
	root := p.trustFiles[0]
	return &TrustError{File: root.display, Path: root.path, Changed: p.trust == TrustChanged, Asks: p.asks}
}

// trustRecord is the text hutch stores for an approved profile: one line
// per file, as sha256sum(1) prints them, the project's profile first.
func trustRecord(files []*file) string {
	var b strings.Builder
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), f.path)
	}
	return b.String()
}

// trustPath is where the approval of the profile at path is kept: one file
// per project profile, named by the hash of its path.
func trustPath(configDir, path string) string {
	sum := sha256.Sum256([]byte(path))
	return filepath.Join(configDir, "trust", hex.EncodeToString(sum[:16]))
}

func checkTrust(configDir string, files []*file) TrustState {
	have, err := os.ReadFile(trustPath(configDir, files[0].path))
	if err != nil {
		return Untrusted
	}
	if bytes.Equal(have, []byte(trustRecord(files))) {
		return Trusted
	}
	return TrustChanged
}

// Digest is the sha256 of the project's profile, as `hutch trust` records it.
func (p *Profile) Digest() string {
	if len(p.trustFiles) == 0 {
		return ""
	}
	sum := sha256.Sum256(p.trustFiles[0].data)
	return hex.EncodeToString(sum[:])
}

// TrustFiles lists the files an approval covers: the project's profile and
// the files it extends by path (absolute paths).
func (p *Profile) TrustFiles() []string {
	var out []string
	for _, f := range p.trustFiles {
		out = append(out, f.path)
	}
	return out
}

// Trust records your approval of the project's profile as it is now.
func (p *Profile) Trust() error {
	if len(p.trustFiles) == 0 {
		return errors.New("there is no project profile to trust")
	}
	dst := trustPath(p.configDir, p.trustFiles[0].path)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".trust-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(trustRecord(p.trustFiles)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	p.trust = TrustNotNeeded
	if len(p.asks) > 0 {
		p.trust = Trusted
	}
	return nil
}

// Revoke forgets the approval of the profile at path (a file, or a
// directory holding hutch.toml). It reports whether there was one.
func Revoke(configDir, path string) (bool, error) {
	err := os.Remove(trustPath(configDir, canonicalProjectFile("", path)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// readTrustRecord parses a record (for tests and `hutch trust` output).
func readTrustRecord(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if ok {
			out[path] = sum
		}
	}
	return out
}

// canonicalProjectFile is the absolute, symlink-free path trust records are
// keyed by; a directory stands for its hutch.toml.
func canonicalProjectFile(dir, path string) string {
	if dir == "" {
		dir, _ = os.Getwd()
	}
	abs := absFrom(resolve(dir), path)
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		abs = filepath.Join(abs, projectFileNames[0])
	}
	return resolve(abs)
}
