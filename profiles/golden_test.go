package profiles

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/hutch-sandbox/hutch/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/profiles")

// fixture is a txtar archive unpacked into a temporary directory laid out
// as $WORK/home (the home, with .config/hutch) and $WORK/home/proj (the
// working directory). Special files, not written:
//
//	env       NAME=VALUE lines: the environment
//	flags     "--flag key value" lines, applied with SetFlag
//	symlinks  "LINK TARGET" lines, both relative to $WORK ($WORK expands)
//	options   "profile NAME", "no-project", "trust", "project-file PATH"
//	want      the golden output
type fixture struct {
	work    string
	ar      *txtar.Archive
	special map[string]string
}

func loadFixture(t *testing.T, path string) *fixture {
	t.Helper()
	ar, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{work: t.TempDir(), ar: ar, special: map[string]string{}}
	for _, d := range []string{"home/proj", "home/.config/hutch"} {
		os.MkdirAll(filepath.Join(fx.work, d), 0o755)
	}
	for _, f := range ar.Files {
		switch f.Name {
		case "env", "flags", "symlinks", "options", "want":
			fx.special[f.Name] = string(f.Data)
			continue
		}
		p := filepath.Join(fx.work, f.Name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range fx.lines("symlinks") {
		link, target, _ := strings.Cut(l, " ")
		target = strings.ReplaceAll(target, "$WORK", fx.work)
		if err := os.Symlink(target, filepath.Join(fx.work, link)); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

func (fx *fixture) lines(name string) []string {
	var out []string
	for _, l := range strings.Split(fx.special[name], "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func (fx *fixture) options() Options {
	env := map[string]string{"HOME": filepath.Join(fx.work, "home")}
	for _, l := range fx.lines("env") {
		k, v, _ := strings.Cut(l, "=")
		env[k] = strings.ReplaceAll(v, "$WORK", fx.work)
	}
	o := Options{
		Dir:       filepath.Join(fx.work, "home/proj"),
		Home:      filepath.Join(fx.work, "home"),
		ConfigDir: filepath.Join(fx.work, "home/.config/hutch"),
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}
	for _, l := range fx.lines("options") {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "profile":
			o.Profile = v
		case "no-project":
			o.NoProject = true
		case "trust":
			o.Trust = true
		case "project-file":
			o.ProjectFile = strings.ReplaceAll(v, "$WORK", fx.work)
		}
	}
	return o
}

// run loads the fixture's profiles, applies its flags and builds the Spec.
func (fx *fixture) run() (*Profile, sandbox.Spec, error) {
	p, err := Load(fx.options())
	if err != nil {
		return nil, sandbox.Spec{}, err
	}
	for _, l := range fx.lines("flags") {
		f := strings.SplitN(l, " ", 3)
		if len(f) < 3 {
			f = append(f, "")
		}
		if err := p.SetFlag(f[0], f[1], f[2]); err != nil {
			return p, sandbox.Spec{}, err
		}
	}
	spec, err := p.Spec(sandbox.Spec{Args: []string{"true"}})
	return p, spec, err
}

// formatErr prints err as the CLI does, one error and its hints at a time.
func formatErr(err error, work string) string {
	var b strings.Builder
	errs := []error{err}
	var multi interface{ Unwrap() []error }
	if errors.As(err, &multi) {
		errs = multi.Unwrap()
	}
	for _, e := range errs {
		b.WriteString("error: " + e.Error() + "\n")
		var h interface{ Hint() string }
		if errors.As(e, &h) && h.Hint() != "" {
			for _, l := range strings.Split(h.Hint(), "\n") {
				b.WriteString("hint: " + l + "\n")
			}
		}
	}
	return strings.ReplaceAll(b.String(), work, "$WORK")
}

// checkGolden compares got with the fixture's want, or rewrites it.
func checkGolden(t *testing.T, path string, fx *fixture, got string) {
	t.Helper()
	want := fx.special["want"]
	if got == want {
		return
	}
	if *update {
		for i, f := range fx.ar.Files {
			if f.Name == "want" {
				fx.ar.Files[i].Data = []byte(got)
			}
		}
		if _, ok := fx.special["want"]; !ok {
			fx.ar.Files = append(fx.ar.Files, txtar.File{Name: "want", Data: []byte(got)})
		}
		if err := os.WriteFile(path, txtar.Format(fx.ar), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: got:\n%s\nwant:\n%s", path, got, want)
}

// TestErrorGolden: every kind of profile error, with its location, message
// and hint, exactly as the user sees them.
func TestErrorGolden(t *testing.T) {
	files, _ := filepath.Glob("../testdata/profiles/errors/*.txtar")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			fx := loadFixture(t, path)
			_, _, err := fx.run()
			if err == nil {
				t.Fatalf("%s: no error", path)
			}
			checkGolden(t, path, fx, formatErr(err, fx.work))
		})
	}
}

// TestBuiltinGolden: what a built-in profile makes of a real job's
// environment, as the Spec's sections it yields (JSON, $WORK for the
// fixture's directory). Refresh with -update after changing a built-in.
func TestBuiltinGolden(t *testing.T) {
	files, _ := filepath.Glob("../testdata/profiles/builtins/*.txtar")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			fx := loadFixture(t, path)
			_, spec, err := fx.run()
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			// The sections a profile sets, not the whole Spec: a field
			// added elsewhere need not churn this file.
			data, err := json.MarshalIndent(map[string]any{
				"filesystem": spec.Filesystem, "network": spec.Network, "env": spec.Env,
				"process": spec.Process, "limits": spec.Limits,
			}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, path, fx, strings.ReplaceAll(string(data), fx.work, "$WORK")+"\n")
		})
	}
}
