package profiles

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// Setting is one key's effective value and where it came from, for
// `hutch profile show`.
type Setting struct {
	Key string `json:"key"`
	// Value is the effective value, defaults filled in: strings, booleans,
	// bytes (sizes), counts, CPUs, durations (as "1h0m0s"), lists.
	Value any `json:"value"`
	// Origin is where a scalar was set; Kind "default" when nothing set it.
	// Lists and env.set have theirs per item.
	Origin *Source `json:"origin,omitempty"`
	// Items are the elements of a list, or env.set's entries, each with its
	// own origin.
	Items []SettingItem `json:"items,omitempty"`

	info *KeyInfo
}

// SettingItem is one element of a list setting.
type SettingItem struct {
	Name   string `json:"name,omitempty"` // env.set's variable
	Value  string `json:"value"`
	Origin Source `json:"origin"`
	// Skipped marks an optional path that does not exist.
	Skipped bool `json:"skipped,omitempty"`
}

// Settings returns every key's effective value, in schema order.
func (p *Profile) Settings() []Setting {
	var spec sandbox.Spec
	fill(&spec, p.settings, exists)
	if s := p.settings["filesystem.project_dir"]; s == nil || !s.set {
		spec.Filesystem.Project = p.projectDir
	}
	p.dropMoot(&spec)
	def := spec
	def.Validate() // fills defaults; errors are Spec's business
	var out []Setting
	for i := range schema {
		info := &schema[i]
		fv, _ := specField(&def, info.Key)
		st := Setting{Key: info.Key, Value: fv.Interface(), Origin: &Source{Kind: FromDefault}, info: info}
		if d, ok := st.Value.(time.Duration); ok {
			st.Value = d.String()
		}
		s := p.settings[info.Key]
		if s != nil && s.set {
			src := s.src
			st.Origin = &src
			for _, it := range s.items {
				st.Items = append(st.Items, SettingItem{Value: it.Value, Origin: it.Src, Skipped: it.Optional && !exists(it.Abs)})
			}
			for _, it := range sortedItems(s.env) {
				st.Items = append(st.Items, SettingItem{Name: it.Name, Value: it.Value, Origin: it.Src})
			}
		}
		if info.kind.isList() || info.kind == kEnvMap {
			st.Origin = nil
			if st.Items == nil {
				st.Items = []SettingItem{}
			}
		}
		out = append(out, st)
	}
	return out
}

// showJSON is the document `hutch profile show --json` prints.
type showJSON struct {
	ProjectDir  string     `json:"project_dir"`
	ProjectFile string     `json:"project_file,omitempty"`
	Files       []FileInfo `json:"files"`
	Trust       string     `json:"trust"`
	Asks        []Ask      `json:"asks,omitempty"`
	Settings    []Setting  `json:"settings"`
}

// WriteJSON prints the effective profile as JSON.
func (p *Profile) WriteJSON(w io.Writer) error {
	doc := showJSON{ProjectDir: p.projectDir, ProjectFile: p.projectFile, Files: p.Files(),
		Trust: p.trust.String(), Asks: p.asks, Settings: p.Settings()}
	if doc.Files == nil {
		doc.Files = []FileInfo{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// WriteTOML prints the effective profile as TOML, each value followed by
// where it came from. The output is itself a valid profile.
func (p *Profile) WriteTOML(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# The effective profile: each value, and the profile or flag that set it.\n")
	b.WriteString("# Applied in order:\n")
	for _, f := range p.Files() {
		switch {
		case f.Kind == FromBuiltin:
			fmt.Fprintf(&b, "#   built-in %s\n", f.Name)
		case f.Project && f.Kind == FromProject && f.Path == p.projectFile:
			fmt.Fprintf(&b, "#   %s (project; %s)\n", f.File, p.trustLabel())
		default:
			fmt.Fprintf(&b, "#   %s\n", f.File)
		}
	}
	flags := false
	for _, s := range p.settings {
		if s.src.Kind == FromFlag {
			flags = true
		}
		for _, it := range s.items {
			flags = flags || it.Src.Kind == FromFlag
		}
		for _, it := range s.env {
			flags = flags || it.Src.Kind == FromFlag
		}
	}
	if flags {
		b.WriteString("#   command-line flags\n")
	}
	fmt.Fprintf(&b, "# Project directory: %s\n", p.projectDir)
	if len(p.asks) > 0 && len(p.trustFiles) > 0 {
		root := p.trustFiles[0].display
		fmt.Fprintf(&b, "#\n# %s asks for more than your configuration allows (%s):\n", root, p.trust)
		for _, l := range FormatAsks(p.asks) {
			fmt.Fprintf(&b, "#   %s\n", l)
		}
		if !p.trust.OK() {
			fmt.Fprintf(&b, "# hutch run refuses it until you approve it: hutch trust %s\n", shellQuote(root))
		}
	}

	section := ""
	var envSet *Setting
	for _, st := range p.Settings() {
		st := st
		sec, leaf, _ := strings.Cut(st.Key, ".")
		if st.info.FlagOnly {
			continue
		}
		if sec != section {
			if section == "env" && envSet != nil {
				writeEnvSet(&b, envSet)
				envSet = nil
			}
			fmt.Fprintf(&b, "\n[%s]\n", sec)
			section = sec
		}
		switch k := st.info.kind; {
		case k == kEnvMap:
			envSet = &st
		case k.isList():
			if len(st.Items) == 0 {
				line(&b, leaf+" = []", "")
				continue
			}
			b.WriteString(leaf + " = [\n")
			for _, it := range st.Items {
				v := "  " + quote(it.Value) + ","
				if it.Skipped {
					line(&b, "  # "+quote(it.Value)+" (missing: skipped)", it.Origin.String())
					continue
				}
				line(&b, v, it.Origin.String())
			}
			b.WriteString("]\n")
		default:
			origin := st.Origin.String()
			if st.Origin.Kind == FromDefault && isZero(st.Value) && st.info.kind != kBool && !strings.HasPrefix(st.info.Default, `"`) {
				line(&b, "# "+leaf+": "+st.info.Default, "")
				continue
			}
			line(&b, leaf+" = "+display(st.info, value(st)), origin)
		}
	}
	if envSet != nil {
		writeEnvSet(&b, envSet)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (p *Profile) trustLabel() string {
	switch {
	case len(p.asks) == 0:
		return "narrows only; no trust needed"
	case p.chosen:
		return "picked with --profile"
	}
	return p.trust.String()
}

func writeEnvSet(b *strings.Builder, st *Setting) {
	if len(st.Items) == 0 {
		line(b, "set = {}", "")
		return
	}
	b.WriteString("\n[env.set]\n")
	for _, it := range st.Items {
		line(b, quoteKey(it.Name)+" = "+quote(it.Value), it.Origin.String())
	}
}

// value converts a Setting's JSON-friendly value back for display.
func value(st Setting) any {
	if st.info.kind == kDuration {
		d, _ := time.ParseDuration(st.Value.(string))
		return d
	}
	return st.Value
}

func isZero(v any) bool {
	switch x := v.(type) {
	case int64:
		return x == 0
	case float64:
		return x == 0
	case string:
		return x == "" || x == "0s"
	case []string:
		return len(x) == 0
	case bool:
		return !x
	}
	return v == nil
}

// line writes text, then the origin as a comment in a column.
func line(b *strings.Builder, text, origin string) {
	b.WriteString(text)
	if origin != "" {
		pad := 34 - len(text)
		if pad < 1 {
			pad = 1
		}
		b.WriteString(strings.Repeat(" ", pad) + "# " + origin)
	}
	b.WriteString("\n")
}

func quote(s string) string {
	// TOML basic strings escape like Go's, for the characters paths hold.
	return fmt.Sprintf("%q", s)
}

func quoteKey(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

// ProfileInfo describes a profile `hutch profile list` shows.
type ProfileInfo struct {
	Name        string     `json:"name"`
	Kind        SourceKind `json:"kind"`
	File        string     `json:"file,omitempty"`
	Description string     `json:"description"`
	// Shadows marks a user profile with a built-in's name.
	Shadows bool `json:"shadows,omitempty"`
}

// List returns the built-in profiles and yours.
func List(opts Options) []ProfileInfo {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = lookupEnv
	}
	home := opts.Home
	if home == "" {
		home, _ = lookup("HOME")
	}
	dir := opts.ConfigDir
	if dir == "" {
		dir = DefaultConfigDir(lookup, home)
	}
	var out []ProfileInfo
	for _, n := range builtinNames {
		out = append(out, ProfileInfo{Name: n, Kind: FromBuiltin, Description: description(builtins[n])})
	}
	for _, n := range userProfileNames(dir) {
		path := dir + "/profiles/" + n + ".toml"
		data, _ := readSmall(path)
		out = append(out, ProfileInfo{Name: n, Kind: FromUser, File: tilde(path, home), Description: description(data), Shadows: builtins[n] != nil})
	}
	return out
}
