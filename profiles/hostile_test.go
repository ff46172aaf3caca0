package profiles

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// loadBudget is what any profile up to maxFileSize may cost hutch to load
// and check, refused or not, and then to show (docs/security.md).
const loadBudget = 64 << 20

// hostileShape builds a shape of TOML text at about size bytes.
type hostileShape struct {
	name string
	gen  func(size int) string
	// refused: the limit hutch reports ("" when the file loads or fails
	// as TOML or schema, within budget).
	refused string
}

func repeatTo(size int, head, unit, tail string) string {
	n := (size - len(head) - len(tail)) / len(unit)
	if n < 0 {
		n = 0
	}
	return head + strings.Repeat(unit, n) + tail
}

func numbered(size int, head, format string) string {
	var b strings.Builder
	b.WriteString(head)
	for i := 0; ; i++ {
		s := fmt.Sprintf(format, i)
		if b.Len()+len(s) > size {
			break
		}
		b.WriteString(s)
	}
	return b.String()
}

var hostileShapes = []hostileShape{
	{"nested inline tables", func(n int) string {
		d := (n - 8) / 7
		return "a = " + strings.Repeat("{b = ", d) + "1" + strings.Repeat("}", d)
	}, "a key more than 8 levels deep"},
	{"nested arrays", func(n int) string {
		return "a = " + strings.Repeat("[", (n-5)/2) + "1" + strings.Repeat("]", (n-5)/2)
	}, "arrays and inline tables nested more than 8 deep"},
	{"long dotted key", func(n int) string { return repeatTo(n, "a", ".b", " = 1") }, "a key more than 8 levels deep"},
	{"deep table header", func(n int) string { return repeatTo(n, "[a", ".b", "]\n") }, "a key more than 8 levels deep"},
	{"header, inline and dotted depth", func(int) string { return "[a.b.c]\nd = { e.f = { g.h = { i = 1 } } }\n" },
		"a key more than 8 levels deep"},
	{"many keys", func(n int) string { return numbered(n, "", "k%d = 1\n") }, "more than 4096 keys and values"},
	{"many tables", func(n int) string { return numbered(n, "", "[t%d]\n") }, "more than 4096 keys and values"},
	{"arrays of tables", func(n int) string { return repeatTo(n, "", "[[a]]\n", "") }, "more than 4096 keys and values"},
	{"big array", func(n int) string { return repeatTo(n, "a = [", "1,", "]") }, "more than 4096 keys and values"},
	{"many keys in an inline table", func(n int) string { return numbered(n, "a = {", "k%d=1,") + "}" }, "more than 4096 keys and values"},
	{"hide list", func(n int) string { return numbered(n, "[filesystem]\nhide = [", "\"/x%d\",") + "]" }, "more than 4096 keys and values"},
	// Below the limits, the same shapes at their largest.
	{"hide list at the limit", func(int) string { return hideList(4090) }, ""},
	{"unknown keys at the limit", func(int) string { return lines(2040, "", "u%d = 1\n") }, ""},
	{"env.set at the limit", func(int) string { return lines(2040, "[env.set]\n", "V%d = \"x\"\n") }, ""},
	{"one long string", func(n int) string { return repeatTo(n, "[process]\nhostname = \"", "x", "\"\n") }, ""},
	{"one long multi-line string", func(n int) string { return repeatTo(n, "[process]\nhostname = \"\"\"", "[{\"\n", "\"\"\"\n") }, ""},
	{"comments", func(n int) string { return repeatTo(n, "", "# [[a]] {b = {c = \n", "") }, ""},
}

func lines(n int, head, format string) string {
	var b strings.Builder
	b.WriteString(head)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, format, i)
	}
	return b.String()
}

func hideList(n int) string {
	var b strings.Builder
	b.WriteString("[filesystem]\nhide = [\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "\"/x%d\",\n", i)
	}
	b.WriteString("]\n")
	return b.String()
}

// loadAll loads data as a project's hutch.toml and does what hutch run and
// hutch profile check would do with it; show, what hutch profile show
// would, when it loads.
func loadAll(t testing.TB, dir string, data []byte) (show func(), err error) {
	proj := filepath.Join(dir, "proj")
	os.MkdirAll(proj, 0o755)
	if err := os.WriteFile(filepath.Join(proj, "hutch.toml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(Options{Dir: proj, Home: dir, ConfigDir: filepath.Join(dir, "config"),
		LookupEnv: env("HOME=" + dir)})
	if err != nil {
		return func() {}, err
	}
	_, err = p.Spec(sandbox.Spec{Args: []string{"true"}})
	return func() {
		p.WriteTOML(io.Discard)
		p.WriteJSON(io.Discard)
	}, err
}

// budget loads data, then shows it, each within loadBudget (and, with
// timeBudget > 0, within it).
func budget(t testing.TB, data []byte, timeBudget time.Duration) error {
	var err error
	var show func()
	dir := t.TempDir()
	for _, step := range []struct {
		name string
		f    func()
	}{
		{"load", func() { show, err = loadAll(t, dir, data) }},
		{"show", func() { show() }},
	} {
		alloc, took := measure(step.f)
		if _, ok := t.(*testing.T); ok && timeBudget == 0 {
			t.Logf("%s %d bytes: %v, %.1f MiB", step.name, len(data), took.Round(time.Millisecond), float64(alloc)/(1<<20))
		}
		if alloc > loadBudget {
			t.Errorf("%s: %d bytes allocated %d, over the budget of %d", step.name, len(data), alloc, loadBudget)
		}
		if timeBudget > 0 && took > timeBudget {
			t.Errorf("%s: %d bytes took %v, over the budget of %v", step.name, len(data), took, timeBudget)
		}
	}
	return err
}

// measure runs f and returns what it allocated and how long it took.
func measure(f func()) (alloc uint64, took time.Duration) {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	start := time.Now()
	f()
	took = time.Since(start)
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc, took
}

// TestHostileProfileShapes loads each shape at the size cap: it is refused
// at the place it crosses a limit, or loads, and either way costs less
// than loadBudget. (Its time is logged, not asserted: FuzzLoadBudget
// holds the time bound.)
func TestHostileProfileShapes(t *testing.T) {
	for _, sh := range hostileShapes {
		t.Run(sh.name, func(t *testing.T) {
			data := []byte(sh.gen(maxFileSize))
			if len(data) > maxFileSize {
				t.Fatalf("shape is %d bytes, over the cap", len(data))
			}
			err := budget(t, data, 0)
			var e *Error
			switch {
			case sh.refused != "" && !errors.As(err, &e):
				t.Fatalf("not refused: %v", err)
			case sh.refused != "":
				if !strings.HasPrefix(e.Msg, sh.refused) || e.Line == 0 || e.Col == 0 || e.File != "hutch.toml" {
					t.Errorf("error %q (line %d col %d), want %q at a position", e, e.Line, e.Col, sh.refused)
				}
			case errors.As(err, &e) && strings.Contains(e.Msg, "more than"):
				t.Errorf("refused: %v", err)
			}
		})
	}
}

// TestPrescan pins where each limit is reported, and that valid TOML with
// brackets, quotes and dots inside strings and comments is not miscounted.
func TestPrescan(t *testing.T) {
	tests := []struct {
		name, data string
		want       string // "" for no refusal; else "LINE:COL: message"
	}{
		{"builtin-like", "extends = [\"npm\"]\n[env]\nset = { A = \"1\", B.C = \"2\" }\n", ""},
		{"depth 8 is fine", "a = [[[[[[[[1]]]]]]]]\n", ""},
		{"depth 9", "a = [[[[[[[[[1]]]]]]]]]\n", "1:13: arrays and inline tables nested more than 8 deep"},
		{"second line", "x = 1\ny = {a = {b = {c = {d = {e = {f = {g = {h = {i = 1}}}}}}}}}", "2:41: a key more than 8 levels deep"},
		{"nesting counts without keys", "x = [[[[{a = [[[[[1]]]]]}]]]]", "1:17: arrays and inline tables nested more than 8 deep"},
		{"key of 8", "a.b.c.d.e.f.g.h = 1", ""},
		{"key of 9", "a.b.c.d.e.f.g.h.i = 1", "1:17: a key more than 8 levels deep"},
		{"quoted parts count", "a.\"b\".'c'.d.e.f.g.h.\"i\" = 1", "1:21: a key more than 8 levels deep"},
		{"header counts", "[a.b.c.d]\ne.f.g.h = 1\ni.j.k.l.m = 2", "3:9: a key more than 8 levels deep"},
		{"header ends at its line", "[a.b.c.d.e.f.g]\n[x]\ny.z = 1", ""},
		{"inline keys count", "[a.b]\nc = { d = { e.f = { g.h = { i = 1 } } } }", "2:29: a key more than 8 levels deep"},
		{"array of tables header", "[[a.b.c.d.e.f.g.h.i]]", "1:19: a key more than 8 levels deep"},
		{"brackets in strings", "a = \"[[[[[[[[[[[{{{{{{{{{{\"\nb = '[[[[[[[[[[[['\nc = \"\"\"\n[[[[[[[[[[[[[[\n\"\"\"\nd = '''[[[[[[[[[[[['''", ""},
		{"escaped quotes", `a = "\"[[[[[[[[[[[[" ` + "\n" + `b = """ \""" [[[[[[[[[[[[ """`, ""},
		{"quotes closing a multi-line string", "a = \"\"\"x\"\"\"\"\"\nb = [[[[[[[[[[1]]]]]]]]]]", "2:13: arrays and inline tables nested more than 8 deep"},
		{"brackets in comments", "# [[[[[[[[[[[[[[[\na = 1 # {{{{{{{{{{{{{{{", ""},
		{"dots in values are not keys", "a.b.c.d.e.f.g = 1.5e3\nh = 1979-05-27T07:32:00.999Z", ""},
		{"keys in arrays of inline tables", "a.b.c.d.e.f = [{g = [{h = 1}]}]", ""},
		{"arrays do not deepen keys", "a.b.c.d.e.f.g = [[[[{h = 1}]]]]", ""},
		{"and inline tables do", "a.b.c.d.e.f.g = [[[[{h = {i = 1}}]]]]", "1:27: a key more than 8 levels deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := prescan([]byte(tt.data))
			got := ""
			var lim *limitError
			if errors.As(err, &lim) {
				l, c := lineCol([]byte(tt.data), lim.off)
				got = fmt.Sprintf("%d:%d: %s", l, c, lim.msg)
			}
			if got != tt.want {
				t.Errorf("prescan = %q, want %q", got, tt.want)
			}
		})
	}
	// Every built-in profile passes.
	for name, data := range builtins {
		if err := prescan(data); err != nil {
			t.Errorf("builtin:%s: %v", name, err)
		}
	}
}

// FuzzLoadBudget fails on any input that costs more than the budget to
// load: memory (loadBudget) and time (generous, for a loaded machine:
// a fuzzer finding the quadratic cases would find seconds, not this).
func FuzzLoadBudget(f *testing.F) {
	for _, sh := range hostileShapes {
		f.Add([]byte(sh.gen(64 << 10)))
	}
	for _, data := range builtins {
		f.Add(data)
	}
	// The time budget holds only while fuzzing: the seeds also run in every
	// go test, where a loaded machine must not fail them (no timed
	// assertions in regular tests).
	timeBudget := time.Duration(0)
	if fl := flag.Lookup("test.fuzz"); fl != nil && fl.Value.String() != "" {
		timeBudget = 2 * time.Second
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFileSize {
			return
		}
		budget(t, data, timeBudget)
	})
}

// TestFlagText: flags carrying profile values are held to the same rule
// as the file (exit 2 in the CLI), except that a path may be any bytes.
func TestFlagText(t *testing.T) {
	w := newWorld(t, nil)
	for _, tt := range []struct {
		flag, key, value string
		want             string // "" for accepted
	}{
		{"--env", "env.set", "A=x\x00y", `--env: the value "A=x\x00y": byte 3 is U+0000 (NUL)`},
		{"--env", "env.set", "A\nB=1", `--env: the name "A\nB": byte 1 is U+000A (a newline)`},
		{"--hostname", "process.hostname", "a\u202eb", `--hostname: the value "a\u202eb": byte 1 is U+202E, a bidirectional control`},
		{"--allow", "network.allow", "x.test\x1b[2J", `--allow: the value "x.test\x1b[2J": byte 6 is U+001B, a control character`},
		{"--hide", "filesystem.hide", "/tmp/sec\xff", ""},
		{"--hide", "filesystem.hide", "/tmp/sec\n", `--hide: the value "/tmp/sec\n": byte 8 is U+000A (a newline)`},
		{"--hostname", "process.hostname", "h\xff", `--hostname: the value "h\xff": byte 1 is not UTF-8`},
		{"--env", "env.set", "A=tab\there", ""},
	} {
		p := w.load(w.opts())
		err := p.SetFlag(tt.flag, tt.key, tt.value)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s %q: %q, want %q", tt.flag, tt.value, got, tt.want)
		}
	}
}

// BenchmarkLoadHostile measures each hostile shape at the size cap: load
// and check, then show (the numbers in docs/security.md).
func BenchmarkLoadHostile(b *testing.B) {
	for _, sh := range hostileShapes {
		data := []byte(sh.gen(maxFileSize))
		b.Run(strings.ReplaceAll(sh.name, " ", "_"), func(b *testing.B) {
			dir := b.TempDir()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				show, _ := loadAll(b, dir, data)
				show()
			}
		})
	}
}
