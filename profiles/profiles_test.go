package profiles

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// env is a fake environment for LookupEnv.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// world is a home with a project in it and files written from a map.
type world struct {
	t    *testing.T
	home string
	proj string
	env  []string
}

func newWorld(t *testing.T, files map[string]string) *world {
	t.Helper()
	home := resolve(t.TempDir())
	w := &world{t: t, home: home, proj: filepath.Join(home, "proj")}
	os.MkdirAll(w.proj, 0o755)
	os.MkdirAll(filepath.Join(home, ".config/hutch/profiles"), 0o755)
	for name, data := range files {
		w.write(name, data)
	}
	return w
}

func (w *world) write(name, data string) {
	p := filepath.Join(w.home, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) opts() Options {
	return Options{Dir: w.proj, Home: w.home, ConfigDir: filepath.Join(w.home, ".config/hutch"),
		LookupEnv: env(append([]string{"HOME=" + w.home}, w.env...)...)}
}

func (w *world) load(o Options) *Profile {
	w.t.Helper()
	p, err := Load(o)
	if err != nil {
		w.t.Fatalf("Load: %v", err)
	}
	return p
}

func (w *world) spec(p *Profile) sandbox.Spec {
	w.t.Helper()
	s, err := p.Spec(sandbox.Spec{Args: []string{"true"}})
	if err != nil {
		w.t.Fatalf("Spec: %v", err)
	}
	return s
}

// TestSchemaMatchesSpec: every `key` tag of sandbox.Spec is a profile key
// of the Go type its field has, and every profile key is a tag.
func TestSchemaMatchesSpec(t *testing.T) {
	tags := map[string]reflect.Type{}
	walkSpec(reflect.ValueOf(&sandbox.Spec{}).Elem(), func(k string, v reflect.Value) { tags[k] = v.Type() })
	for key, typ := range tags {
		info := schemaByKey[key]
		if info == nil {
			t.Errorf("sandbox.Spec has key %q, which profiles do not know: add it to schema", key)
			continue
		}
		if got := info.kind.goType(); got != typ {
			t.Errorf("%s: profiles produce %v, the Spec field is %v", key, got, typ)
		}
	}
	for _, info := range schema {
		if _, ok := tags[info.Key]; !ok {
			t.Errorf("profile key %q is not a `key` tag of sandbox.Spec", info.Key)
		}
		if info.Doc == "" || info.Type == "" || info.Default == "" || (!info.FlagOnly && info.Example == "") {
			t.Errorf("%s: undocumented", info.Key)
		}
	}
}

// TestParse: each kind of value, as written, and what the Spec gets.
func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		toml  string
		env   []string
		check func(w *world, s sandbox.Spec) string
	}{
		{"sizes", "[limits]\nmemory = \"4GiB\"\nfsize = 1048576", nil, func(w *world, s sandbox.Spec) string {
			if s.Limits.Memory != 4<<30 || s.Limits.FSize != 1<<20 {
				return "sizes"
			}
			return ""
		}},
		{"docker and SI sizes", "[limits]\nmemory = \"512m\"\nfsize = \"2GB\"", nil, func(w *world, s sandbox.Spec) string {
			if s.Limits.Memory != 512<<20 || s.Limits.FSize != 2e9 {
				return "sizes"
			}
			return ""
		}},
		{"unlimited", "[limits]\nmemory = \"unlimited\"\npids = \"unlimited\"", nil, func(w *world, s sandbox.Spec) string {
			if s.Limits.Memory != 0 || s.Limits.Pids != 0 {
				return "unlimited"
			}
			return ""
		}},
		{"cpu percent", "[limits]\ncpu = \"150%\"", nil, func(w *world, s sandbox.Spec) string {
			if s.Limits.CPU != 1.5 {
				return "cpu"
			}
			return ""
		}},
		{"cpu integer", "[limits]\ncpu = 2", nil, func(w *world, s sandbox.Spec) string {
			if s.Limits.CPU != 2 {
				return "cpu"
			}
			return ""
		}},
		{"duration", "[process]\ntimeout = \"1h30m\"", nil, func(w *world, s sandbox.Spec) string {
			if s.Process.Timeout != 90*time.Minute {
				return "timeout"
			}
			return ""
		}},
		{"shell string", "[process]\nshell = \"bash --norc -c 'echo hi'\"", nil, func(w *world, s sandbox.Spec) string {
			if !reflect.DeepEqual(s.Process.Shell, []string{"bash", "--norc", "-c", "echo hi"}) {
				return "shell"
			}
			return ""
		}},
		{"shell array", "[process]\nshell = [\"zsh\", \"-l\"]", nil, func(w *world, s sandbox.Spec) string {
			if !reflect.DeepEqual(s.Process.Shell, []string{"zsh", "-l"}) {
				return "shell"
			}
			return ""
		}},
		{"paths", `[filesystem]
hide = ["~/.x", "${HOME}/.y", "${PROJECT}/.env", "./rel", "$DATA/d", "${NOPE:-/opt}/n", "~"]
tmpfs = ["/tmp/$$x"]`, []string{"DATA=/srv"}, func(w *world, s sandbox.Spec) string {
			want := []string{"~/.x", "~/.y", "~/proj/.env", "~/proj/rel", "/srv/d", "/opt/n", "~"}
			if !reflect.DeepEqual(s.Filesystem.Hide, want) {
				return "hide"
			}
			if !reflect.DeepEqual(s.Filesystem.Tmpfs, []string{"/tmp/$x"}) {
				return "tmpfs"
			}
			return ""
		}},
		{"optional binds", "[filesystem]\nrw = [\"?~/.cache/missing\", \"?${PROJECT}\"]", nil, func(w *world, s sandbox.Spec) string {
			if !reflect.DeepEqual(s.Filesystem.RW, []string{"~/proj"}) {
				return "rw"
			}
			return ""
		}},
		{"env", "[env]\nkeep = [\"NODE_*\", \"LANG\"]\nset = { A = \"${HOME}/a\", PORT = 3000, DEBUG = true }", nil, func(w *world, s sandbox.Spec) string {
			if !reflect.DeepEqual(s.Env.Keep, []string{"NODE_*", "LANG"}) {
				return "keep"
			}
			if !reflect.DeepEqual(s.Env.Set, map[string]string{"A": w.home + "/a", "PORT": "3000", "DEBUG": "true"}) {
				return "set"
			}
			return ""
		}},
		{"env.set table", "[env.set]\nNODE_ENV = \"development\"", nil, func(w *world, s sandbox.Spec) string {
			if s.Env.Set["NODE_ENV"] != "development" {
				return "set"
			}
			return ""
		}},
		{"project", "", nil, func(w *world, s sandbox.Spec) string {
			if s.Filesystem.Project != w.proj {
				return "project_dir " + s.Filesystem.Project
			}
			return ""
		}},
		{"dotted keys", "filesystem.project = \"ro\"\nnetwork.mode = \"none\"", nil, func(w *world, s sandbox.Spec) string {
			if s.Filesystem.ProjectMode != "ro" {
				return "project"
			}
			return ""
		}},
		{"seccomp path", "[security]\nseccomp = \"./seccomp.json\"", nil, func(w *world, s sandbox.Spec) string {
			if s.Security.Seccomp != "~/proj/seccomp.json" {
				return "seccomp " + s.Security.Seccomp
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, map[string]string{"proj/hutch.toml": tt.toml, "proj/seccomp.json": "{}"})
			w.env = tt.env
			o := w.opts()
			o.Trust = true
			s := w.spec(w.load(o))
			if what := tt.check(w, s); what != "" {
				t.Errorf("wrong %s: %+v", what, s)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[any]int64{
		int64(100): 100, "0": 0, "1k": 1024, "1K": 1024, "1KiB": 1024, "1kB": 1000, "1.5GiB": 3 << 29,
		"2 MiB": 2 << 20, "1t": 1 << 40, "7b": 7, "unlimited": 0,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%v) = %v, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []any{"", "x", "4 gigs", "1.2.3G", int64(-1), "-5M", true, 1.5, "1e30TiB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%v) = %v, want an error", in, got)
		}
	}
}

func TestParseCPU(t *testing.T) {
	for in, want := range map[any]float64{int64(2): 2, 1.5: 1.5, "150%": 1.5, "0.5": 0.5, "unlimited": 0} {
		got, err := parseCPU(in)
		if err != nil || got != want {
			t.Errorf("parseCPU(%v) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []any{"lots", "-1", -0.5, int64(-1), "%", true} {
		if _, err := parseCPU(in); err == nil {
			t.Errorf("parseCPU(%v): want an error", in)
		}
	}
}

func TestSplitArgv(t *testing.T) {
	for in, want := range map[string][]string{
		"bash":               {"bash"},
		"  zsh   -l ":        {"zsh", "-l"},
		`sh -c 'echo "a b"'`: {"sh", "-c", `echo "a b"`},
		`a "b \"c\"" d\ e`:   {"a", `b "c"`, "d e"},
		`''`:                 {""},
		"":                   nil,
	} {
		got, err := splitArgv(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitArgv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`'open`, `"open`, `trailing\`} {
		if _, err := splitArgv(in); err == nil {
			t.Errorf("splitArgv(%q): want an error", in)
		}
	}
}

func TestExpand(t *testing.T) {
	x := &expander{lookup: env("A=1", "EMPTY=", "SECRET_TOKEN=t"), home: "/h", project: "/h/p", dir: "/h/p/sub"}
	tests := []struct {
		in, want string
		refs     []string
		path     bool
	}{
		{"$A", "1", []string{"A"}, false},
		{"${A}x", "1x", []string{"A"}, false},
		{"${EMPTY:-d}", "d", []string{"EMPTY"}, false},
		{"${NOPE:-${A}/x}", "1/x", []string{"NOPE", "A"}, false},
		{"$$A", "$A", nil, false},
		{"${HOME}/${PROJECT}", "/h//h/p", []string{"HOME", "PROJECT"}, false},
		{"~", "/h", nil, true},
		{"~/a/../b", "/h/b", nil, true},
		{"rel/x", "/h/p/sub/rel/x", nil, true},
		{"../x", "/h/p/x", nil, true},
		{"${PROJECT}/node_modules", "/h/p/node_modules", []string{"PROJECT"}, true},
		{"${NOPE:-~/c}/x", "/h/c/x", []string{"NOPE"}, true},
		{"/a/$SECRET_TOKEN", "/a/t", []string{"SECRET_TOKEN"}, true},
	}
	for _, tt := range tests {
		var got string
		var refs []string
		var err error
		if tt.path {
			got, refs, err = x.path(tt.in)
		} else {
			got, refs, err = x.vars(tt.in)
		}
		if err != nil || got != tt.want || !reflect.DeepEqual(refs, tt.refs) {
			t.Errorf("expand(%q) = %q %q %v; want %q %q", tt.in, got, refs, err, tt.want, tt.refs)
		}
	}
	for _, in := range []string{"$NOPE", "${NOPE}", "${", "${A", "${1x}", "a$", "$ x", "~other/x", ""} {
		if _, _, err := x.path(in); err == nil {
			t.Errorf("expand(%q): want an error", in)
		}
	}
}

// TestMerge: extends apply in order before the file; lists append, env.set
// merges by name, scalars override; a profile applies once; user profiles
// shadow built-ins; builtin:NAME reaches the built-in.
func TestMerge(t *testing.T) {
	w := newWorld(t, map[string]string{
		".config/hutch/config.toml":          "[process]\nhostname = \"mine\"\n[env]\nkeep = [\"USER_A\"]\nset = { A = \"user\", B = \"user\" }",
		".config/hutch/profiles/web.toml":    "extends = [\"builtin:strict\", \"./shared.toml\"]\n[env]\nkeep = [\"WEB\"]\n[process]\nhostname = \"web\"",
		".config/hutch/profiles/shared.toml": "extends = [\"builtin:strict\"]\n[env]\nkeep = [\"SHARED\"]",
		".config/hutch/profiles/strict.toml": "extends = [\"builtin:strict\"]\n[env]\nkeep = [\"MY_STRICT\"]",
		"proj/hutch.toml":                    "extends = [\"web\", \"strict\"]\n[env]\nkeep = [\"PROJ\", \"USER_A\"]\nset = { B = \"proj\" }\n[filesystem]\nproject = \"rw\"",
	})
	p := w.load(w.opts())
	s := w.spec(p)
	if want := []string{"USER_A", "SHARED", "WEB", "MY_STRICT", "PROJ"}; !reflect.DeepEqual(s.Env.Keep, want) {
		t.Errorf("env.keep = %q, want %q", s.Env.Keep, want)
	}
	if want := map[string]string{"A": "user", "B": "proj"}; !reflect.DeepEqual(s.Env.Set, want) {
		t.Errorf("env.set = %v, want %v", s.Env.Set, want)
	}
	if s.Process.Hostname != "web" || s.Filesystem.ProjectMode != "rw" || s.Process.IDMap != "single" {
		t.Errorf("scalars: %+v", s.Process)
	}
	var order []string
	for _, f := range p.Files() {
		n := f.Name
		if n == "" {
			n = filepath.Base(f.Path)
		}
		order = append(order, string(f.Kind)+":"+n)
	}
	want := []string{"built-in:default", "user:config.toml", "built-in:strict", "user:shared", "user:web", "user:strict", "project:hutch.toml"}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("applied %q, want %q", order, want)
	}
}

// TestFlags: flags override scalars, add to lists, and win a path
// conflict with a profile.
func TestFlags(t *testing.T) {
	w := newWorld(t, map[string]string{
		"proj/hutch.toml": "[filesystem]\nro = [\"${PROJECT}/data\"]\n[process]\nhostname = \"a\"\n[env]\nset = { X = \"1\" }",
		"proj/data/.keep": "",
	})
	p := w.load(w.opts())
	for _, f := range []struct{ flag, key, v string }{
		{"--hostname", "process.hostname", "b"}, {"--rw", "filesystem.rw", "data"},
		{"--env", "env.set", "Y=2"}, {"--memory", "limits.memory", "1GiB"}, {"--nested", "security.nested", "true"},
		{"--timeout", "process.timeout", "5s"},
	} {
		if err := p.SetFlag(f.flag, f.key, f.v); err != nil {
			t.Fatal(err)
		}
	}
	s := w.spec(p)
	if s.Process.Hostname != "b" || s.Limits.Memory != 1<<30 || !s.Security.Nested || s.Process.Timeout != 5*time.Second {
		t.Errorf("scalars: %+v", s)
	}
	if len(s.Filesystem.RO) != 0 || !reflect.DeepEqual(s.Filesystem.RW, []string{"~/proj/data"}) {
		t.Errorf("ro %q rw %q: the flag should win", s.Filesystem.RO, s.Filesystem.RW)
	}
	if !reflect.DeepEqual(s.Env.Set, map[string]string{"X": "1", "Y": "2"}) {
		t.Errorf("env.set = %v", s.Env.Set)
	}
	for _, st := range p.Settings() {
		if st.Key == "process.hostname" && (st.Origin.Kind != FromFlag || st.Origin.Name != "--hostname") {
			t.Errorf("hostname origin = %+v", st.Origin)
		}
	}
}

// TestNarrowingMootsNetwork: a project that narrows your network mode does
// not inherit errors for your proxy's allowlist.
func TestNarrowingMootsNetwork(t *testing.T) {
	w := newWorld(t, map[string]string{
		".config/hutch/config.toml": "[network]\nmode = \"proxy\"\nallow = [\"example.com\"]",
		"proj/hutch.toml":           "[network]\nmode = \"none\"",
	})
	p := w.load(w.opts())
	s, err := p.Spec(sandbox.Spec{})
	var fe *Error
	if errors.As(err, &fe) && fe.Key == "network.allow" {
		t.Fatalf("narrowing to none still checks your allowlist: %v", err)
	}
	if len(s.Network.Allow) != 0 || s.Network.Mode != "none" {
		t.Errorf("network: %+v", s.Network)
	}
}

func TestDiscover(t *testing.T) {
	home := resolve(t.TempDir())
	deep := filepath.Join(home, "a/b/c")
	os.MkdirAll(deep, 0o755)
	os.WriteFile(filepath.Join(home, "hutch.toml"), nil, 0o644) // in home itself: ignored
	if got, _ := Discover(deep, home); got != "" {
		t.Errorf("found %q in home", got)
	}
	os.WriteFile(filepath.Join(home, "a/.hutch.toml"), nil, 0o644)
	if got, _ := Discover(deep, home); got != filepath.Join(home, "a/.hutch.toml") {
		t.Errorf("got %q", got)
	}
	os.WriteFile(filepath.Join(home, "a/b/hutch.toml"), nil, 0o644)
	if got, _ := Discover(deep, home); got != filepath.Join(home, "a/b/hutch.toml") {
		t.Errorf("got %q: the nearest wins", got)
	}
	os.WriteFile(filepath.Join(home, "a/b/.hutch.toml"), nil, 0o644)
	if _, err := Discover(deep, home); err == nil {
		t.Error("both hutch.toml and .hutch.toml: want an error")
	}
	// Outside home, the walk stops before /.
	if got, err := Discover("/", home); got != "" || err != nil {
		t.Errorf("Discover(/) = %q, %v", got, err)
	}
}

func TestPositions(t *testing.T) {
	data := []byte(`extends = ["npm"]
[filesystem]
  rw = [
    "a",
    'b',
  ]
"ro" = ['x']
home = """
tmpfs"""
[env]
set = { A = "1", "B.C" = 2 }
[env.set2]
[process]
timeout.x = 3
`)
	for _, tt := range []struct {
		key       []string
		raw       string
		line, col int
	}{
		{[]string{"extends"}, "", 1, 1},
		{[]string{"extends"}, "npm", 1, 12},
		{[]string{"filesystem"}, "", 2, 2},
		{[]string{"filesystem", "rw"}, "", 3, 3},
		{[]string{"filesystem", "rw"}, "b", 5, 5},
		{[]string{"filesystem", "ro"}, "", 7, 1},
		{[]string{"filesystem", "home"}, "", 8, 1},
		{[]string{"env", "set"}, "", 11, 1},
		{[]string{"env", "set", "A"}, "", 11, 9},
		{[]string{"env", "set", "B.C"}, "", 11, 18},
		{[]string{"process", "timeout", "x"}, "", 14, 1},
	} {
		f := &file{data: data}
		s := f.source(tt.key, tt.raw)
		if l, c := s.Position(); l != tt.line || c != tt.col {
			t.Errorf("%q %q at %d:%d, want %d:%d", tt.key, tt.raw, l, c, tt.line, tt.col)
		}
	}
}

// TestTrust: which files need approval, what they ask for, and how
// approval follows the content.
// trustTests are TestTrust's rows: a user configuration, a project file,
// and the widenings hutch must ask about. TestTrustCoversKeys checks that
// every key that can widen has a row.
var trustTests = []struct {
	name   string
	config string
	proj   string
	files  map[string]string
	asks   []string // "key what-prefix"
}{
	{"narrowing only", "", "[filesystem]\nproject = \"ro\"\nhide = [\"${PROJECT}/.env\"]\n[network]\nmode = \"none\"\n[limits]\nmemory = \"1GiB\"", nil, nil},
	{"binds inside the project", "", "[filesystem]\nrw = [\"${PROJECT}/out\"]\nro = [\"./src\"]", map[string]string{"proj/out/.k": "", "proj/src/.k": ""}, nil},
	{"writable outside", "", "[filesystem]\nrw = [\"~/cache\"]", map[string]string{"cache/.k": ""}, []string{"filesystem.rw writable, outside the project"}},
	{"allowed by your config", "[filesystem]\nrw = [\"~/cache\"]", "[filesystem]\nrw = [\"~/cache/sub\"]", map[string]string{"cache/sub/.k": ""}, nil},
	{"visible outside", "", "[filesystem]\nro = [\"/srv\"]", nil, []string{"filesystem.ro visible outside the project"}},
	{"root directory outside", "", "[filesystem]\nroot = \"dir:/srv/rootfs\"", nil, []string{"filesystem.root shows the root directory /srv/rootfs, outside the project"}},
	{"bind outside", "", "[[filesystem.bind]]\nsource = \"/srv\"\ntarget = \"/data\"", nil, []string{"filesystem.bind visible outside the project"}},
	{"bind rw outside", "", "[[filesystem.bind]]\nsource = \"~/out\"\ntarget = \"/out\"\nmode = \"rw\"", map[string]string{"out/x": ""}, []string{"filesystem.bind writable, outside the project"}},
	{"bind of a secret", "", "[[filesystem.bind]]\nsource = \"~/.ssh\"\ntarget = \"/keys\"", map[string]string{".ssh/id": ""}, []string{"filesystem.bind reveals the secret ~/.ssh"}},
	{"bind over a system path", "", "[[filesystem.bind]]\nsource = \"${PROJECT}/bin\"\ntarget = \"/usr/bin\"", map[string]string{"proj/bin/x": ""}, []string{"filesystem.bind its target /usr/bin covers a system path"}},
	{"secret", "", "[filesystem]\nro = [\"~/.aws/config\"]", map[string]string{".aws/config": ""}, []string{"filesystem.ro reveals the secret ~/.aws"}},
	{"your own hide is a secret", "[filesystem]\nhide = [\"~/private\"]", "[filesystem]\nro = [\"~/private/x\"]", map[string]string{"private/x": ""}, []string{"filesystem.ro reveals the secret ~/private"}},
	{"project rw over your ro", "[filesystem]\nproject = \"ro\"", "[filesystem]\nproject = \"rw\"\nrw = [\"${PROJECT}/out\"]", map[string]string{"proj/out/.k": ""},
		[]string{"filesystem.rw writable, where your configuration", "filesystem.project writes more"}},
	{"home", "", "[filesystem]\nhome = \"ro\"", nil, []string{"filesystem.home shows your home"}},
	{"git rw", "", "[filesystem]\ngit = \"rw\"", nil, []string{"filesystem.git lets the command change git's config"}},
	{"git rw allowed", "[filesystem]\ngit = \"rw\"", "[filesystem]\ngit = \"rw\"", nil, nil},
	{"git protect", "", "[filesystem]\ngit = \"protect\"", nil, nil},
	{"host socket", "", "[filesystem]\nsockets = [\"${PROJECT}/agent.sock\"]", nil, []string{"filesystem.sockets connects to a program outside the sandbox"}},
	{"host socket allowed", "[filesystem]\nsockets = [\"~/proj/agent.sock\"]", "[filesystem]\nsockets = [\"~/proj/agent.sock\"]", nil, nil},
	{"host network", "", "[network]\nmode = \"host\"", nil, []string{"network.mode the host's network: every service listening on it, loopback included, and its abstract unix sockets (X11, D-Bus, others)"}},
	{"host network allowed", "[network]\nmode = \"host\"", "[network]\nmode = \"host\"", nil, nil},
	{"nested, seccomp", "", "[security]\nnested = true\nseccomp = \"off\"", nil, []string{"security.seccomp turns the seccomp filter off", "security.nested allows"}},
	{"secret env", "", "[env]\nkeep = [\"GITHUB_TOKEN\", \"*_TOKEN\", \"MY_VAR\"]\nset = { T = \"${AWS_SECRET_ACCESS_KEY:-}\" }", nil,
		[]string{"env.keep passes the secret variable GITHUB_TOKEN", "env.set reads the secret variable $AWS_SECRET_ACCESS_KEY"}},
	{"limits", "[limits]\nmemory = \"1GiB\"\npids = 100\nrequired = true\n[process]\ntimeout = \"10m\"",
		"[limits]\nmemory = \"2GiB\"\npids = 50\nrequired = false\n[process]\ntimeout = \"0\"", nil,
		[]string{"limits.memory raises", "process.timeout removes", "limits.required lets"}},
	// Optional paths that do not exist (~/.rustup) bind nothing and are
	// not asked about; caches made when missing (~/.cargo/git) are.
	{"built-in caches", "", "extends = [\"cargo\"]", map[string]string{".cargo/registry/.k": "", ".cargo/bin/cargo": ""},
		[]string{"filesystem.rw writable, outside the project", "filesystem.rw writable, outside the project",
			"filesystem.ro visible outside the project",
			"network.mode network access beyond your configuration's \"none\"",
			"network.allow reaches a host", "network.allow reaches a host", "network.allow reaches a host"}},
	{"dotfiles beyond hutch shell's set", "", "[process]\ndotfiles = [\".bashrc\", \".vimrc\"]", nil,
		[]string{"process.dotfiles shows ~/.vimrc from your home"}},
	{"image from the registry", "", "[filesystem]\nroot = \"image:docker.io/library/node:22\"", nil, nil},
	{"image from the project", "", "[filesystem]\nroot = \"image:oci-layout:./build/layout:v1\"", nil, nil},
	{"image from outside the project", "", "[filesystem]\nroot = \"image:docker-archive:~/other/app.tar\"", nil,
		[]string{"filesystem.root shows the image at ~/other/app.tar, outside the project"}},
	{"published port", "[network]\nmode = \"slirp4netns\"", "[network]\nports = [\"127.0.0.1:3000:3000/tcp\"]", nil,
		[]string{"network.ports publishes a port on the host"}},
	{"host loopback", "[network]\nmode = \"slirp4netns\"", "[network]\nhost_loopback = true", nil,
		[]string{"network.host_loopback reaches services on the host's loopback"}},
	// Learn mode reaches every host: only yours to turn on, even over
	// your own proxy mode and allow list.
	{"learn mode", "[network]\nmode = \"proxy\"\nallow = [\"a.example\"]", "[network]\nlearn = \"learned.toml\"", nil,
		[]string{"network.learn learn mode: every host is reachable"}},
	{"learn mode, yours", "[network]\nlearn = \"learned.toml\"", "[network]\nlearn = \"learned.toml\"", nil, nil},
	{"seccomp profile", "", "[security]\nseccomp = \"./seccomp.json\"", map[string]string{"proj/seccomp.json": "{}"},
		[]string{"security.seccomp replaces the seccomp filter"}},
	{"every limit raised", "[limits]\npids = 100\ncpu = 1\nnofile = 100\nnproc = 100\nfsize = \"1MiB\"\ntmpfs = \"64MiB\"\ninotify_instances = 8\ninotify_watches = 100\n[process]\nkill_grace = \"5s\"",
		"[limits]\npids = 200\ncpu = 2\nnofile = 200\nnproc = 200\nfsize = \"2MiB\"\ntmpfs = \"128MiB\"\ninotify_instances = 16\ninotify_watches = 200\n[process]\nkill_grace = \"1m\"", nil,
		[]string{"limits.pids raises", "limits.cpu raises", "limits.nofile raises", "limits.nproc raises", "limits.fsize raises",
			"limits.tmpfs raises", "limits.inotify_instances raises", "limits.inotify_watches raises", "process.kill_grace raises"}},
	{"root inside", "", "[process]\nuser = \"root\"", nil, []string{"process.user root inside, who can drop your supplementary groups"}},
	{"root inside, yours", "[process]\nuser = \"root\"", "[process]\nuser = \"root\"", nil, nil},
	{"limits warning silenced", "", "[limits]\nquiet = true", nil,
		[]string{"limits.quiet hides the warning"}},
	{"built-in in your config", "extends = [\"cargo\"]", "extends = [\"cargo\"]", map[string]string{".cargo/registry/.k": ""}, nil},
	// Bindings name what they show; anything replacing a system path
	// asks, its destination cleaned first.
	{"host /proc", "", "[filesystem]\nro = [\"/proc\"]", nil, []string{"filesystem.ro visible outside the project (read-only): every host process"}},
	{"host /proc/1", "", "[filesystem]\nro = [\"/proc/1\"]", nil, []string{"filesystem.ro visible outside the project (read-only): every host process"}},
	{"host /run, cleaned", "", "[filesystem]\nro = [\"/tmp/../run\"]", nil, []string{"filesystem.ro visible outside the project (read-only): the host's runtime sockets"}},
	{"tmpfs over /etc, cleaned", "", "[filesystem]\ntmpfs = [\"/work/../../etc\"]", nil, []string{"filesystem.tmpfs a system path (/etc: system configuration"}},
	{"tmpfs over /proc", "", "[filesystem]\ntmpfs = [\"/proc\", \"/usr/local\"]", nil,
		[]string{"filesystem.tmpfs a system path (/proc: ", "filesystem.tmpfs a system path (/usr: "}},
	{"hide /dev/null", "", "[filesystem]\nhide = [\"/dev/null\"]", nil, []string{"filesystem.hide a system path (/dev: devices"}},
	{"tmpfs and hide elsewhere", "", "[filesystem]\ntmpfs = [\"/tmp/x\", \"/opt/cache\"]\nhide = [\"${PROJECT}/.env\"]", nil, nil},
	{"system tmpfs in your config", "[filesystem]\ntmpfs = [\"/usr/local\"]", "[filesystem]\ntmpfs = [\"/usr/local\"]", nil, nil},
	// A registry only the project names is contacted from the host.
	{"image from another registry", "", "[filesystem]\nroot = \"image:evil.example:5000/app:1\"", nil,
		[]string{"filesystem.root pulls from evil.example:5000, a registry neither hutch nor your configuration names"}},
	{"image from localhost", "", "[filesystem]\nroot = \"image:localhost/app\"", nil, []string{"filesystem.root pulls from localhost"}},
	{"image from a built-in registry", "", "[filesystem]\nroot = \"image:ghcr.io/org/app:1\"", nil, nil},
	{"image short name", "", "[filesystem]\nroot = \"image:alpine:3.20\"", nil, nil},
	{"registry in your config", "[network]\nmode = \"proxy\"\nallow = [\"registry.corp.example\"]", "[filesystem]\nroot = \"image:registry.corp.example/app:1\"", nil, nil},
	{"service, narrowing", "", "[services.db]\ncommand = \"postgres\"\nready = \"tcp:5432\"\nready_timeout = \"5m\"\nafter = [\"cache\"]\ndata = \"./pg\"\n[services.cache]\ncommand = [\"redis-server\"]",
		map[string]string{"proj/pg/.k": ""}, nil},
	{"service data, project read-only", "", "[filesystem]\nproject = \"ro\"\n[services.db]\ncommand = \"postgres\"\ndata = \"./pg\"",
		map[string]string{"proj/pg/.k": ""}, []string{"services.db.data writable in the project, which is \"ro\""}},
	{"service data outside", "", "[services.db]\ncommand = \"postgres\"\ndata = \"~/pg\"",
		map[string]string{"pg/.k": ""}, []string{"services.db.data writable, outside the project"}},
	{"service data outside, yours", "[services.db]\ncommand = \"postgres\"\ndata = \"~/pg\"", "",
		map[string]string{"pg/.k": ""}, nil},
	{"service image and secret env", "", "[services.db]\ncommand = \"postgres\"\nimage = \"docker.io/library/postgres:16\"\nenv = { P = \"${DB_PASSWORD:-x}\", Q = \"plain\" }", nil,
		[]string{"services.db.image pulls an image", "services.db.env reads the secret variable $DB_PASSWORD"}},
	{"service image from a layout in the project", "", "[services.web]\nimage = \"oci-layout:./layout:v1\"", nil, nil},
	{"service image from a layout outside", "", "[services.web]\nimage = \"oci-archive:/srv/web.tar\"", nil,
		[]string{"services.web.image shows the image at /srv/web.tar, outside the project"}},
	{"service image by a stored name", "", "[services.web]\nimage = \"web:1\"", nil, []string{"services.web.image pulls an image"}},
	{"registry of your root", "[filesystem]\nroot = \"image:registry.corp.example/base:1\"", "[filesystem]\nroot = \"image:registry.corp.example/app:1\"", nil, nil},
}

func TestTrust(t *testing.T) {
	tests := trustTests
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{".config/hutch/config.toml": tt.config, "proj/hutch.toml": tt.proj}
			for k, v := range tt.files {
				files[k] = v
			}
			w := newWorld(t, files)
			p := w.load(w.opts())
			var got []string
			for _, a := range p.Asks() {
				got = append(got, a.Key+" "+a.What)
			}
			if len(got) != len(tt.asks) {
				t.Fatalf("asks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.asks, "\n"))
			}
			sort.Strings(got)
			want := append([]string(nil), tt.asks...)
			sort.Strings(want)
			for i := range want {
				if !strings.HasPrefix(got[i], want[i]) {
					t.Errorf("ask %q, want %q...", got[i], want[i])
				}
			}
			wantState := TrustNotNeeded
			if len(tt.asks) > 0 {
				wantState = Untrusted
			}
			if p.TrustState() != wantState {
				t.Errorf("trust = %v, want %v", p.TrustState(), wantState)
			}
		})
	}
}

// TestTrustLifecycle: refused, trusted, changed, trusted again, a change
// in an extended file, --trust, --profile NAME, revoke.
func TestTrustLifecycle(t *testing.T) {
	w := newWorld(t, map[string]string{
		"proj/hutch.toml": "extends = [\"./base.toml\"]\n[network]\nmode = \"host\"",
		"proj/base.toml":  "[process]\nhostname = \"x\"",
	})
	state := func(o Options) (TrustState, error) {
		p := w.load(o)
		_, err := p.Spec(sandbox.Spec{})
		return p.TrustState(), err
	}
	var te *TrustError
	if st, err := state(w.opts()); st != Untrusted || !errors.As(err, &te) || te.Changed {
		t.Fatalf("fresh: %v %v", st, err)
	}
	if err := w.load(w.opts()).Trust(); err != nil {
		t.Fatal(err)
	}
	rec, _ := os.ReadFile(trustPath(w.opts().ConfigDir, filepath.Join(w.proj, "hutch.toml")))
	if got := readTrustRecord(rec); len(got) != 2 {
		t.Errorf("record covers %v, want hutch.toml and base.toml", got)
	}
	if st, err := state(w.opts()); st != Trusted || err != nil {
		t.Fatalf("trusted: %v %v", st, err)
	}
	w.write("proj/base.toml", "[process]\nhostname = \"y\"")
	if st, err := state(w.opts()); st != TrustChanged || !errors.As(err, &te) || !te.Changed {
		t.Fatalf("extended file changed: %v %v", st, err)
	}
	w.load(w.opts()).Trust()
	w.write("proj/hutch.toml", "extends = [\"./base.toml\"]\n[network]\nmode = \"host\"\n# edited")
	if st, _ := state(w.opts()); st != TrustChanged {
		t.Fatalf("project file changed: %v", st)
	}
	o := w.opts()
	o.Trust = true
	if st, err := state(o); st != TrustedByFlag || err != nil {
		t.Fatalf("--trust: %v %v", st, err)
	}
	o = w.opts()
	o.Profile = "strict"
	if st, err := state(o); st != TrustNotNeeded || err != nil {
		t.Fatalf("--profile strict: %v %v", st, err)
	}
	o = w.opts()
	o.Profile = "./hutch.toml"
	if st, _ := state(o); st != TrustChanged {
		t.Fatalf("--profile PATH is the project's file: %v", st)
	}
	w.load(w.opts()).Trust()
	had, err := Revoke(w.opts().ConfigDir, filepath.Join(w.proj, "hutch.toml"))
	if !had || err != nil {
		t.Fatalf("revoke: %v %v", had, err)
	}
	if st, _ := state(w.opts()); st != Untrusted {
		t.Fatalf("revoked: %v", st)
	}
}

// TestBuiltinsRunToday: every built-in profile loads and makes a Spec that
// hutch accepts now, with no feature that has not landed.
func TestBuiltinsRunToday(t *testing.T) {
	for _, name := range builtinNames {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, nil)
			o := w.opts()
			o.Profile = name
			p := w.load(o)
			if _, err := p.Spec(sandbox.Spec{Args: []string{"true"}}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if description(builtins[name]) == "" {
				t.Errorf("%s has no description (its first comment line)", name)
			}
			host := &sandbox.Host{UID: 1000, GID: 1000, Home: w.home, Cwd: w.proj, RuntimeDir: "/run/user/1000/hutch"}
			spec, _ := p.Spec(sandbox.Spec{Args: []string{"true"}})
			if _, err := sandbox.NewPlan(spec, host); err != nil {
				t.Errorf("NewPlan: %v", err)
			}
		})
	}
}

// TestSecretsMatchSandbox: the secret paths profiles know are the ones
// sandbox.NewPlan masks, and the secret variable names agree.
func TestSecretsMatchSandbox(t *testing.T) {
	host := &sandbox.Host{UID: 1000, GID: 1000, Home: "/h", Cwd: "/h", RuntimeDir: "/run/user/1000/hutch",
		Env: []string{"PATH=/bin"}}
	spec := sandbox.Spec{Args: []string{"true"}, Filesystem: sandbox.Filesystem{Home: "ro"}}
	plan, err := sandbox.NewPlan(spec, host)
	if err != nil {
		t.Fatal(err)
	}
	var masked []string
	for _, m := range plan.Mounts {
		if m.Kind == sandbox.MountHide && strings.HasPrefix(m.Dst, "/h/") {
			masked = append(masked, strings.TrimPrefix(m.Dst, "/h/"))
		}
	}
	want := append([]string(nil), secretPaths...)
	sort.Strings(masked)
	sort.Strings(want)
	if !reflect.DeepEqual(masked, want) {
		t.Errorf("sandbox masks %q\nprofiles know %q", masked, want)
	}

	names := []string{"GITHUB_TOKEN", "NPM_TOKEN", "MY_SECRET", "A_SECRET_B", "DB_PASSWORD", "X_PASSWD", "SSH_KEY", "OPENAI_API_KEY",
		"AWS_REGION", "AWS_SECRET_ACCESS_KEY", "SSH_AUTH_SOCK", "GPG_AGENT_INFO", "GOOGLE_APPLICATION_CREDENTIALS", "NPM_CONFIG__AUTH",
		"NPM_CONFIG__AUTHTOKEN", "npm_config__auth", "npm_config__authToken", "PATH", "HOME", "TOKEN", "KEYBOARD", "SECRET", "NODE_ENV", "MY_TOKENS", "npm_config_registry"}
	host.Env = nil
	for _, n := range names {
		host.Env = append(host.Env, n+"=v")
	}
	spec = sandbox.Spec{Args: []string{"true"}, Env: sandbox.Env{Keep: []string{"*"}}}
	plan, err = sandbox.NewPlan(spec, host)
	if err != nil {
		t.Fatal(err)
	}
	passed := map[string]bool{}
	for _, kv := range plan.Env {
		k, _, _ := strings.Cut(kv, "=")
		passed[k] = true
	}
	for _, n := range names {
		if secretEnv(n) == passed[n] {
			t.Errorf("%s: profiles say secret=%v, the sandbox passes it=%v", n, secretEnv(n), passed[n])
		}
	}
}

// TestShow: the effective profile printed as TOML is itself a profile that
// loads to the same Spec.
func TestShow(t *testing.T) {
	w := newWorld(t, map[string]string{
		"proj/hutch.toml": "extends = [\"strict\"]\n[filesystem]\nhide = [\"${PROJECT}/.env\"]\n[limits]\nmemory = \"2GiB\"\ncpu = 1.5\n[process]\ntimeout = \"90s\"\nshell = [\"bash\", \"-l\"]\n[env]\nset = { \"A.B\" = \"x\", C = \"y\" }",
	})
	p := w.load(w.opts())
	p.SetFlag("--hostname", "process.hostname", "flagged")
	want := w.spec(p)
	var b strings.Builder
	if err := p.WriteTOML(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{"hostname = \"flagged\"", "# --hostname", "memory = \"2GiB\"", "# hutch.toml:", "# built-in strict", "idmap = \"single\"", "[env.set]", "\"A.B\" = \"x\""} {
		if !strings.Contains(out, s) {
			t.Errorf("show lacks %q:\n%s", s, out)
		}
	}
	w.write("proj/hutch.toml", out)
	got := w.spec(w.load(w.opts()))
	got.Filesystem.Project, want.Filesystem.Project = "", ""
	// Defaults are filled the same either way (show prints them).
	got.Validate()
	want.Validate()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("show's output loads to\n%+v\nwant\n%+v\n%s", got, want, out)
	}
	b.Reset()
	if err := p.WriteJSON(&b); err != nil || !strings.Contains(b.String(), `"kind": "flag"`) {
		t.Errorf("json: %v\n%s", err, b.String())
	}
}

// TestStarter: the starter file for each detected tool loads cleanly and
// lists every key.
func TestStarter(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"package.json", "go.mod", "requirements.txt", "Cargo.toml"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	det := Detect(dir)
	var names []string
	for _, d := range det {
		names = append(names, d.Profile)
	}
	if want := []string{"npm", "pip", "go", "cargo"}; !reflect.DeepEqual(names, want) {
		t.Errorf("detected %q, want %q", names, want)
	}
	for _, ext := range [][]string{nil, {"npm"}, names} {
		text := Starter(ext, det)
		for _, k := range schema {
			leaf := k.Key[strings.LastIndex(k.Key, ".")+1:]
			if !k.FlagOnly && !strings.Contains(text, "\n#"+leaf+" = ") {
				t.Errorf("starter lacks %s", k.Key)
			}
		}
		w := newWorld(t, map[string]string{"proj/hutch.toml": text})
		o := w.opts()
		o.Trust = true
		w.spec(w.load(o))
	}
}

// TestDidYouMean covers the suggestions for unknown keys.
func TestDidYouMean(t *testing.T) {
	for in, want := range map[string]string{
		"filesystem.projekt": "filesystem.project", "network.rw": "filesystem.rw", "mode": "network.mode",
		"extend": "extends", "netwrk": "network", "include": "extends", "limits.memroy": "limits.memory",
		"process.publish": "network.ports", "zzzzzz": "",
	} {
		if got := didYouMean(in); got != want {
			t.Errorf("didYouMean(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzLoad: no input makes the loader panic; errors are fine.
func FuzzLoad(f *testing.F) {
	for _, n := range builtinNames {
		f.Add(string(builtins[n]))
	}
	files, _ := filepath.Glob("../testdata/profiles/errors/*.txtar")
	for _, p := range files {
		data, _ := os.ReadFile(p)
		f.Add(string(data))
	}
	f.Add("[filesystem]\nrw = [\"?${PROJECT}\", \"~\"]\n[env]\nset = { A = \"${B:-${C:-x}}\" }\nextends = [\"./hutch.toml\"]")
	home := resolve(f.TempDir())
	proj := filepath.Join(home, "proj")
	os.MkdirAll(proj, 0o755)
	o := Options{Dir: proj, Home: home, ConfigDir: filepath.Join(home, ".config/hutch"), LookupEnv: env("HOME="+home, "A=1")}
	f.Fuzz(func(t *testing.T, data string) {
		if err := os.WriteFile(filepath.Join(proj, "hutch.toml"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := Load(o)
		if err != nil {
			_ = err.Error()
			var e *Error
			errors.As(err, &e)
			return
		}
		p.Spec(sandbox.Spec{})
		p.Settings()
		var b strings.Builder
		p.WriteTOML(&b)
		p.WriteJSON(&b)
		FormatAsks(p.Asks())
	})
}

// TestDocs: docs/profiles.md lists every key with its type and default, and
// explains every built-in profile.
func TestDocs(t *testing.T) {
	data, err := os.ReadFile("../docs/profiles.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, k := range append(Keys(), serviceKeys...) {
		if !strings.Contains(doc, "| `"+k.Key+"` | "+k.Type+" | ") {
			t.Errorf("docs/profiles.md has no row for %s (with its type %q); regenerate the tables from the schema", k.Key, k.Type)
		}
	}
	for _, n := range builtinNames {
		if !strings.Contains(doc, "\n### "+n+"\n") {
			t.Errorf("docs/profiles.md does not explain the built-in profile %s", n)
		}
	}
}

// TestTrustMootAllow: allow entries (and host_loopback) that a later
// network.mode made moot are not asked for: the sandbox will not have them.
func TestTrustMootAllow(t *testing.T) {
	w := newWorld(t, map[string]string{
		".config/hutch/config.toml": "",
		"proj/hutch.toml":           "extends = [\"go\"]\n[network]\nmode = \"none\"\n",
		"go/pkg/mod/.k":             "",
	})
	p := w.load(w.opts())
	for _, a := range p.Asks() {
		if strings.HasPrefix(a.Key, "network.") {
			t.Errorf("asks for %s %s (%s), which mode none makes moot", a.Key, a.Value, a.What)
		}
	}
	if len(p.Asks()) == 0 {
		t.Error("no asks at all: the go profile's binds outside the project still need trust")
	}
}

// narrowingOnly are the profile keys that cannot widen what your own
// configuration allows, so trust never asks about them: where the project
// lives, how its overlay is driven, more hiding, more tmpfs, a named
// session, and who and where the command runs inside its namespaces.
var narrowingOnly = []string{"filesystem.project_dir", "filesystem.overlay",
	"filesystem.session", "process.idmap", "process.hostname", "process.shell", "process.workdir",
	// A service's command, readiness and order: it runs in a sandbox of
	// its own, with the command's restrictions and network.
	"services.NAME.command", "services.NAME.ready", "services.NAME.ready_timeout", "services.NAME.after"}

// TestTrustCoversKeys: every profile key is narrowing-only, or a TestTrust
// row shows that trust asks about its widening.
func TestTrustCoversKeys(t *testing.T) {
	asked := map[string]bool{}
	for _, tt := range trustTests {
		for _, a := range tt.asks {
			key, _, _ := strings.Cut(a, " ")
			if parts := strings.SplitN(key, ".", 3); len(parts) == 3 && parts[0] == "services" {
				key = "services.NAME." + parts[2] // a service's key, whatever its name
			}
			asked[key] = true
		}
	}
	for _, info := range append(append([]KeyInfo(nil), schema...), serviceKeys...) {
		if slices.Contains(narrowingOnly, info.Key) {
			if asked[info.Key] {
				t.Errorf("%s is listed as narrowing-only, but a TestTrust row asks about it", info.Key)
			}
			continue
		}
		if !asked[info.Key] {
			t.Errorf("%s: no TestTrust row asks about it; add one, or list it in narrowingOnly with the reason", info.Key)
		}
	}
}
