package profiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/sandbox"
)

// SetFlag applies a command-line flag that stands for a profile key, over
// every profile: scalars are replaced (the last value wins), lists and
// env.set are added to. values are as typed: paths relative to the working
// directory, env.set entries as NAME=VALUE.
func (p *Profile) SetFlag(flag, key string, values ...string) error {
	info := schemaByKey[key]
	if info == nil {
		return fmt.Errorf("flag %s: %q is not a profile key", flag, key)
	}
	src := Source{Kind: FromFlag, Name: flag, layer: layerFlags}
	bad := func(msg, tip string) error { return &Error{Flag: flag, Key: key, Msg: msg, Tip: tip} }
	for _, v := range values {
		isPath := info.kind == kBinds || info.kind == kPaths || info.kind == kDir || info.kind == kSeccomp
		name := ""
		if info.kind == kEnvMap {
			name, _, _ = strings.Cut(v, "=")
		}
		if p := textProblem(name, true, false); p != "" {
			return bad(fmt.Sprintf("the name %s: %s", esc.Quote(name), p), hintText)
		}
		if p := textProblem(v, false, isPath); p != "" {
			return bad(fmt.Sprintf("the value %s: %s", esc.Quote(v), p), hintText)
		}
	}
	s := &setting{info: info, set: true, src: src}
	x := expander{home: p.home, project: p.projectDir, dir: p.cwd}
	flagPath := func(v string) (string, error) {
		if v == "" {
			return "", fmt.Errorf("empty path")
		}
		switch {
		case v == "~":
			return p.home, nil
		case strings.HasPrefix(v, "~/"):
			return filepath.Join(p.home, v[2:]), nil
		case filepath.IsAbs(v):
			return filepath.Clean(v), nil
		}
		return filepath.Join(x.dir, v), nil
	}
	switch k := info.kind; {
	case k == kTables:
		for _, v := range values {
			it, err := flagBind(v, flagPath)
			if err != nil {
				return bad(err.Error(), "write --bind SOURCE:TARGET[:ro|rw], as in --bind ~/datasets:/data:ro")
			}
			it.Src = src
			it.Value = bindValue(tilde(it.Abs, p.home), it.Target, it.Mode)
			s.items = append(s.items, it)
		}
	case k.isList():
		for _, v := range values {
			it := item{Raw: v, Value: v, Src: src}
			if k == kBinds || k == kPaths {
				abs, err := flagPath(v)
				if err != nil {
					return bad(err.Error(), "")
				}
				it.Abs, it.Value = abs, tilde(abs, p.home)
			}
			s.items = append(s.items, it)
		}
	case k == kEnvMap:
		s.env = map[string]item{}
		for _, v := range values {
			name, val, ok := strings.Cut(v, "=")
			if !ok {
				return bad(fmt.Sprintf("%q is not NAME=VALUE", v), "")
			}
			s.env[name] = item{Name: name, Value: val, Raw: val, Src: src}
		}
	case k == kDir:
		if len(values) == 0 {
			return nil
		}
		abs, err := flagPath(values[len(values)-1])
		if err != nil {
			return bad(err.Error(), "")
		}
		fi, err := os.Stat(abs)
		if err != nil || !fi.IsDir() {
			return bad(fmt.Sprintf("%s is not a directory", abs), "")
		}
		s.value = resolve(abs)
	case k == kArgv:
		if len(values) == 0 {
			return nil
		}
		argv, err := splitArgv(values[len(values)-1])
		if err != nil {
			return bad(err.Error(), "")
		}
		s.value = argv
	case k == kSeccomp:
		if len(values) == 0 {
			return nil
		}
		v := values[len(values)-1]
		if v != "default" && v != "off" {
			abs, err := flagPath(v)
			if err != nil {
				return bad(err.Error(), "")
			}
			v = tilde(abs, p.home)
		}
		s.value = v
	default:
		if len(values) == 0 {
			return nil
		}
		v, err := parseScalar(k, values[len(values)-1])
		if err != nil {
			ex := info.Example[strings.Index(info.Example, "= ")+2:]
			return bad(err.Error(), "for example: "+flag+" "+strings.Trim(ex, `"`))
		}
		s.value = v
	}
	merge(p.settings, map[string]*setting{key: s})
	if key == "filesystem.rw" || key == "filesystem.ro" || key == "filesystem.hide" || key == "filesystem.tmpfs" {
		p.flagWins(key, s.items)
	}
	return nil
}

// flagWins removes from the other path lists the paths a flag just put in
// one: a flag overrides the profiles, so --rw X turns a profile's ro X into
// a writable bind rather than a conflict.
func (p *Profile) flagWins(key string, items []item) {
	for _, other := range []string{"filesystem.rw", "filesystem.ro", "filesystem.hide", "filesystem.tmpfs"} {
		s := p.settings[other]
		if other == key || s == nil {
			continue
		}
		kept := s.items[:0]
		for _, it := range s.items {
			drop := false
			for _, f := range items {
				if f.Abs == it.Abs && it.Src.Kind != FromFlag {
					drop = true
				}
			}
			if !drop {
				kept = append(kept, it)
			}
		}
		s.items = kept
	}
}

// Spec builds the sandbox.Spec. inv carries what is not a profile key (the
// command, --tty, --preserve-fds); everything else comes from the merged
// profile. It checks paths (existence, symlinks), conflicts and the Spec's
// own rules, each error located where the value was set; and, last, trust.
func (p *Profile) Spec(inv sandbox.Spec) (sandbox.Spec, error) {
	spec := sandbox.Spec{Args: inv.Args, TTY: inv.TTY, PreserveFDs: inv.PreserveFDs, Entrypoint: inv.Entrypoint, Shell: inv.Shell}
	var errs errList
	fill(&spec, p.settings, exists)
	if s := p.settings["filesystem.rw"]; s != nil {
		for _, it := range s.items {
			if it.Create {
				spec.Filesystem.Create = append(spec.Filesystem.Create, it.Value)
			}
		}
	}
	if s := p.settings["filesystem.project_dir"]; s == nil || !s.set {
		if p.projectFile != "" {
			spec.Filesystem.Project = p.projectDir
		}
	}
	p.dropMoot(&spec)
	p.checkProject(&errs)
	p.checkBinds(&errs)
	p.checkOwnState(&errs)
	spec.Services = p.services(&errs) // services.go
	if sc := p.settings["security.seccomp"]; sc != nil && sc.set {
		if v, _ := sc.value.(string); v != "default" && v != "off" && v != "" {
			abs := v
			if strings.HasPrefix(v, "~") {
				abs = filepath.Join(p.home, strings.TrimPrefix(strings.TrimPrefix(v, "~"), "/"))
			}
			if _, err := os.Stat(abs); err != nil {
				errs.add(sc.src.errorAt("security.seccomp", fmt.Sprintf("%s: %s", v, unwrapPathErr(err)),
					`give the path of an OCI/Docker seccomp JSON profile, or "default"`))
			}
		}
	}
	// hutch's own configuration (and so its trust records) is never visible
	// inside; NewPlan hides ~/.config/hutch, this covers XDG_CONFIG_HOME.
	if !within(filepath.Join(p.home, ".config", "hutch"), p.configDir) {
		spec.Filesystem.Hide = append(spec.Filesystem.Hide, tilde(p.configDir, p.home))
	}
	spec.Filesystem.Hide = p.hideTargets(spec.Filesystem.Hide)
	check := spec
	unsupported := map[string]bool{}
	for _, fe := range fieldErrors(check.Validate()) {
		unsupported[fe.Key] = unsupported[fe.Key] || fe.Unsupported
		if s := p.settings[fe.Key]; s != nil && s.set {
			errs.add(blame(s, fe))
			continue
		}
		if e := p.serviceFieldError(fe); e != nil {
			errs.add(e)
			continue
		}
		e := &Error{Key: fe.Key, Msg: fe.Msg, Unsupported: fe.Unsupported}
		switch fe.Key {
		case "tty", "preserve-fds":
			e.Flag, e.Key = "--"+fe.Key, ""
		}
		errs.add(e)
	}
	p.checkConflicts(&errs, unsupported)
	if err := errs.err(); err != nil {
		return spec, err
	}
	if err := p.trustError(); err != nil {
		return spec, err
	}
	return spec, nil
}

// dropMoot drops network settings that a later profile's network.mode made
// moot: a project that narrows your "proxy" to "none", or a hutch.toml
// that extends "npm" and sets mode = "host", does not inherit an error for
// an allowlist it overrode. Settings in the same file as the mode, or a
// later one, stay and are checked by Spec.Validate.
func (p *Profile) dropMoot(spec *sandbox.Spec) {
	m := p.settings["network.mode"]
	if m == nil || !m.set {
		return
	}
	mode := spec.Network.Mode
	// Order by the file that set a value, in the order the files were
	// applied, so that a built-in a project extends counts as before the
	// project's own keys; flags come after every file.
	order := func(src Source) int {
		if src.layer == layerFlags {
			return len(p.files) + 1
		}
		if src.pos != nil {
			for i, f := range p.files {
				if f == src.pos.f {
					return i
				}
			}
		}
		return -1
	}
	earlier := func(src Source) bool { return order(src) < order(m.src) }
	keep := func(key string, ok bool) []string {
		var out []string
		if s := p.settings[key]; s != nil {
			for _, it := range s.items {
				if ok || !earlier(it.Src) {
					out = append(out, it.Value)
				}
			}
		}
		return out
	}
	spec.Network.Allow = keep("network.allow", mode == "proxy")
	spec.Network.Ports = keep("network.ports", mode != "host")
	if s := p.settings["network.host_loopback"]; s != nil && s.set && earlier(s.src) &&
		mode != "proxy" && mode != "slirp4netns" && mode != "pasta" {
		spec.Network.HostLoopback = false
	}
}

// checkBinds checks the sources of rw and ro binds: they must exist
// (unless optional), and must not be symlinks, whose target the profile's
// author, not you, decides; one that leads into a secret is refused
// outright.
func (p *Profile) checkBinds(errs *errList) {
	var hides []string
	if s := p.settings["filesystem.hide"]; s != nil {
		for _, it := range s.items {
			hides = append(hides, it.Abs)
		}
	}
	for _, key := range []string{"filesystem.rw", "filesystem.ro", "filesystem.bind"} {
		s := p.settings[key]
		if s == nil {
			continue
		}
		for _, it := range s.items {
			if it.Create && key != "filesystem.rw" {
				errs.add(it.Src.errorAt(key, fmt.Sprintf("%s: a leading + (create when missing) is for filesystem.rw", it.Raw),
					`write it as "?PATH" to skip it when missing`))
				continue
			}
			fi, err := os.Lstat(it.Abs)
			switch {
			case err != nil && it.Optional:
				continue
			case errors.Is(err, os.ErrNotExist) && it.Create:
				// Made before the run: where it will be, once made, must not
				// be a secret, whatever links lead there.
				if sec := createdSecret(it.Abs, p.realHome, p.home, hides); sec != "" {
					errs.add(it.Src.errorAt(key, fmt.Sprintf("%s would be made inside the secret %s", it.Value, tilde(sec, p.realHome)),
						"name a directory outside your secrets"))
				}
				continue
			case errors.Is(err, os.ErrNotExist):
				tip := fmt.Sprintf(hintOptional, it.Raw)
				if it.Src.Kind == FromFlag {
					tip = "create it first: a bind needs something to bind"
				}
				errs.add(it.Src.errorAt(key, fmt.Sprintf("%s does not exist", it.Value), tip))
				continue
			case err != nil:
				errs.add(it.Src.errorAt(key, fmt.Sprintf("%s: %s", it.Value, unwrapPathErr(err)), ""))
				continue
			}
			real, rerr := filepath.EvalSymlinks(it.Abs)
			if rerr != nil {
				errs.add(it.Src.errorAt(key, fmt.Sprintf("%s is a symlink that leads nowhere (%s)", it.Value, unwrapPathErr(rerr)), "bind an existing directory or file"))
				continue
			}
			sec := secretAt(real, p.realHome, hides)
			if sec == "" {
				sec = secretAt(real, p.home, hides)
			}
			isLink := fi.Mode()&os.ModeSymlink != 0
			switch {
			case sec != "" && real != it.Abs && !within(sec, it.Abs):
				msg := fmt.Sprintf("%s resolves to %s, inside the secret %s", it.Value, tilde(real, p.realHome), tilde(sec, p.realHome))
				if real == sec {
					msg = fmt.Sprintf("%s is a symlink to the secret %s", it.Value, tilde(sec, p.realHome))
				}
				errs.add(it.Src.errorAt(key, msg,
					"a symlink never reveals a secret; if you mean to share it, bind the secret's own path in your own config.toml"))
			case isLink:
				errs.add(it.Src.errorAt(key, fmt.Sprintf("%s is a symlink to %s", it.Value, tilde(real, p.realHome)),
					fmt.Sprintf("bind the target itself: %q", tilde(real, p.realHome))))
			}
		}
	}
}

// checkConflicts reports settings that contradict each other.
func (p *Profile) checkConflicts(errs *errList, unsupported map[string]bool) {
	// One path in two of rw, ro, hide and tmpfs.
	type seen struct {
		key string
		it  item
	}
	first := map[string]seen{}
	for _, key := range []string{"filesystem.rw", "filesystem.ro", "filesystem.hide", "filesystem.tmpfs"} {
		s := p.settings[key]
		if s == nil {
			continue
		}
		for _, it := range s.items {
			if f, ok := first[it.Abs]; ok && f.key != key {
				errs.add(it.Src.errorAt(key, fmt.Sprintf("%s is also in %s (%s)", it.Value, f.key, f.it.Src.Where()),
					hintConflicts+"; a path is bound one way"))
				continue
			}
			first[it.Abs] = seen{key, it}
		}
	}
	str := func(key string) (string, Source) {
		if s := p.settings[key]; s != nil && s.set {
			v, _ := s.value.(string)
			return v, s.src
		}
		return "", Source{}
	}
	where := func(src Source) string {
		if src.Kind == "" {
			return "by default"
		}
		return "at " + src.Where()
	}
	if sess, src := str("filesystem.session"); sess != "" && !unsupported["filesystem.session"] {
		pm, _ := str("filesystem.project")
		hm, _ := str("filesystem.home")
		if pm != "overlay" && hm != "overlay" {
			errs.add(src.errorAt("filesystem.session", "a session keeps an overlay's changes, but neither filesystem.project nor filesystem.home is \"overlay\"",
				`set filesystem.project = "overlay"`))
		}
	}
	if pm, pmSrc := str("filesystem.project"); pm == "ro" || pm == "overlay" {
		if s := p.settings["filesystem.rw"]; s != nil {
			for _, it := range s.items {
				if it.Abs == p.projectDir {
					errs.add(it.Src.errorAt("filesystem.rw", fmt.Sprintf("%s is the project, which filesystem.project makes %q (%s)", it.Value, pm, where(pmSrc)),
						`set filesystem.project = "rw" instead`))
				}
			}
		}
	}
	if s := p.settings["limits.required"]; s != nil && s.set && s.value == true {
		any := false
		for _, k := range []string{"limits.memory", "limits.pids", "limits.cpu", "limits.nofile", "limits.nproc", "limits.fsize"} {
			// The default profile's own limits (pids) are not a choice
			// of the user's that could be required.
			if l := p.settings[k]; l != nil && l.set && number(l.value) > 0 && !(l.src.Kind == FromBuiltin && l.src.Name == "default") {
				any = true
			}
		}
		if !any {
			errs.add(s.src.errorAt("limits.required", "no limit is set, so there is nothing to require", "set a limit (limits.memory = \"4GiB\", …) or remove limits.required"))
		}
	}
}

// display formats a value for messages and `profile show`.
func display(info *KeyInfo, v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case []string:
		q := make([]string, len(x))
		for i, s := range x {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	switch info.kind {
	case kSize:
		return strconv.Quote(formatSize(v.(int64)))
	case kCount:
		if v.(int64) == 0 {
			return `"unlimited"`
		}
		return strconv.FormatInt(v.(int64), 10)
	case kCPU:
		if v.(float64) == 0 {
			return `"unlimited"`
		}
		return strconv.FormatFloat(v.(float64), 'f', -1, 64)
	case kDuration:
		return strconv.Quote(fmt.Sprint(v))
	}
	return fmt.Sprint(v)
}

// createdSecret is the secret a directory made at abs would be in: its
// nearest existing ancestor is resolved through symlinks, as the mkdir
// would follow them.
func createdSecret(abs, realHome, home string, hides []string) string {
	dir, rest := abs, ""
	for {
		if _, err := os.Lstat(dir); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = parent
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	target := filepath.Join(dir, rest)
	if sec := secretAt(target, realHome, hides); sec != "" {
		return sec
	}
	if sec := secretAt(abs, home, hides); sec != "" {
		return sec
	}
	return secretAt(target, home, hides)
}
