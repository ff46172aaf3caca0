package layers

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// tree spec: "path" → content; "path/" a directory; "path@" → symlink
// target; "path!" a whiteout in the layer's format; "path/*" marks the
// directory opaque.
type fsSpec map[string]string

func build(t *testing.T, root string, f Format, spec fsSpec) {
	t.Helper()
	keys := make([]string, 0, len(spec))
	for k := range spec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(root, 0o755))
	for _, k := range keys {
		v := spec[k]
		switch {
		case strings.HasSuffix(k, "/*"):
			d := filepath.Join(root, strings.TrimSuffix(k, "/*"))
			must(os.MkdirAll(d, 0o755))
			l := &Layer{Upper: root, Format: f}
			must(l.setOpaque(strings.TrimSuffix(k, "/*")))
			_ = d
		case strings.HasSuffix(k, "/"):
			must(os.MkdirAll(filepath.Join(root, k), 0o755))
		case strings.HasSuffix(k, "@"):
			p := filepath.Join(root, strings.TrimSuffix(k, "@"))
			must(os.MkdirAll(filepath.Dir(p), 0o755))
			must(os.Symlink(v, p))
		case strings.HasSuffix(k, "!"):
			p := filepath.Join(root, strings.TrimSuffix(k, "!"))
			must(os.MkdirAll(filepath.Dir(p), 0o755))
			if f == FormatFuse && v == "wh-file" {
				must(os.WriteFile(filepath.Join(filepath.Dir(p), ".wh."+filepath.Base(p)), nil, 0o600))
			} else {
				must(unix.Mknod(p, unix.S_IFCHR, 0))
			}
		default:
			p := filepath.Join(root, k)
			must(os.MkdirAll(filepath.Dir(p), 0o755))
			must(os.WriteFile(p, []byte(v), 0o644))
		}
	}
}

func summary(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(string(c.Kind) + " " + c.Path + "\n")
	}
	return b.String()
}

var lowerSpec = fsSpec{
	"old":           "old\n",
	"kept":          "kept\n",
	"same":          "same\n",
	"touched":       "touched\n",
	"script.sh":     "#!/bin/sh\n",
	"dir/f":         "f\n",
	"dir/sub/s":     "s\n",
	"odir/g":        "g\n",
	"odir/keep":     "keep\n",
	"becomes-dir":   "file\n",
	"becomes-file/": "",
	"link@":         "same",
	".wh.notmine":   "a kernel session's file",
}

func upperSpec(f Format) fsSpec {
	s := fsSpec{
		"new":                "x\n",
		"old!":               "",
		"kept":               "kept\nmore\n",
		"touched":            "touched\n",
		"script.sh":          "#!/bin/sh\n",
		"dir!":               "",
		"odir/*":             "",
		"odir/n":             "n\n",
		"odir/keep":          "keep\n",
		"newdir/z":           "z\n",
		"evil@":              "/home/someone/.bashrc",
		"becomes-dir/inside": "i\n",
		"becomes-file":       "now a file\n",
		"link@":              "kept",
	}
	if f == FormatFuse {
		s["old!"] = "wh-file"
	}
	return s
}

func setup(t *testing.T, f Format) (*Layer, string) {
	dir := t.TempDir()
	l := &Layer{Lower: filepath.Join(dir, "lower"), Upper: filepath.Join(dir, "upper"), Format: f}
	build(t, l.Lower, f, lowerSpec)
	base, err := TakeBaseline(l.Lower)
	if err != nil {
		t.Fatal(err)
	}
	build(t, l.Upper, f, upperSpec(f))
	os.Chmod(filepath.Join(l.Upper, "script.sh"), 0o4755)
	// becomes-dir: a file in the lower, a directory in the upper.
	if err := base.Save(filepath.Join(dir, "baseline")); err != nil {
		t.Fatal(err)
	}
	return l, filepath.Join(dir, "baseline")
}

func TestDiff(t *testing.T) {
	want := `type-changed becomes-dir
added becomes-dir/inside
type-changed becomes-file
deleted dir
deleted dir/f
deleted dir/sub
deleted dir/sub/s
added evil
modified kept
modified link
added new
added newdir
added newdir/z
deleted odir/g
added odir/n
deleted old
mode-changed script.sh
`
	for _, f := range []Format{FormatKernel, FormatFuse} {
		t.Run(f.String(), func(t *testing.T) {
			l, _ := setup(t, f)
			cs, err := l.Diff()
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(cs); got != want {
				t.Errorf("diff:\n%s\nwant:\n%s", got, want)
			}
			if c := Count(cs).String(); c != "6 added, 2 modified, 6 deleted, 2 type-changed, 1 mode-changed" {
				t.Errorf("counts: %s", c)
			}
		})
	}
}

func TestUnified(t *testing.T) {
	l, _ := setup(t, FormatKernel)
	cs, err := l.Diff()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := l.WriteUnified(&b, Select(cs, []string{"kept", "new", "old", "script.sh"})); err != nil {
		t.Fatal(err)
	}
	want := `diff --git a/kept b/kept
--- a/kept
+++ b/kept
@@ -1 +1,2 @@
 kept
+more
diff --git a/new b/new
new file mode 100644
--- /dev/null
+++ b/new
@@ -0,0 +1 @@
+x
diff --git a/old b/old
deleted file mode 100644
--- a/old
+++ /dev/null
@@ -1 +0,0 @@
-old
diff --git a/script.sh b/script.sh
old mode 100644
new mode 100755
`
	if b.String() != want {
		t.Errorf("unified:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestLineDiff(t *testing.T) {
	a := splitLines([]byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n"))
	b := splitLines([]byte("a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl"))
	var out bytes.Buffer
	writeHunks(&out, a, b)
	want := "@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n@@ -9,3 +9,4 @@\n i\n j\n k\n+l\n\\ No newline at end of file\n"
	if out.String() != want {
		t.Errorf("hunks:\n%q\nwant:\n%q", out.String(), want)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func TestApply(t *testing.T) {
	for _, f := range []Format{FormatKernel, FormatFuse} {
		t.Run(f.String(), func(t *testing.T) {
			l, bfile := setup(t, f)
			base, err := LoadBaseline(bfile)
			if err != nil {
				t.Fatal(err)
			}
			// The host changes one file the session also changed.
			os.WriteFile(filepath.Join(l.Lower, "kept"), []byte("edited on the host\n"), 0o644)
			cs, err := l.Diff()
			if err != nil {
				t.Fatal(err)
			}
			var progress []string
			var rep *Report
			_, err = l.Apply(l.Lower, cs, ApplyOptions{Baseline: base, Progress: func(r Result) {
				if r.Under == "" {
					progress = append(progress, string(r.Outcome)+" "+r.Path)
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(progress, "\n")
			want := strings.Join([]string{
				"applied becomes-dir", "applied becomes-dir/inside", "applied becomes-file", "applied dir",
				"refused evil", "applied link", "applied new", "applied newdir", "applied newdir/z",
				"applied odir/g", "applied odir/n", "applied old", "applied script.sh",
			}, "\n")
			// kept: modified in the session, and on the host since the
			// baseline; "link" was modified... as a symlink.
			if !strings.Contains(got, "conflict kept") {
				t.Errorf("kept should conflict:\n%s", got)
			}
			got = strings.Replace(got, "conflict kept\n", "", 1)
			if got != want {
				t.Errorf("apply:\n%s\nwant:\n%s", got, want)
			}
			for p, want := range map[string]string{
				"new": "x\n", "kept": "edited on the host\n", "odir/n": "n\n", "odir/g": "<open " + filepath.Join(l.Lower, "odir/g") + ": no such file or directory>",
				"becomes-dir/inside": "i\n", "becomes-file": "now a file\n", "newdir/z": "z\n",
			} {
				if got := read(t, filepath.Join(l.Lower, p)); got != want {
					t.Errorf("%s = %q, want %q", p, got, want)
				}
			}
			for _, gone := range []string{"old", "dir", "evil"} {
				if _, err := os.Lstat(filepath.Join(l.Lower, gone)); err == nil {
					t.Errorf("%s should not exist on the host", gone)
				}
			}
			fi, _ := os.Stat(filepath.Join(l.Lower, "script.sh"))
			if fi.Mode()&os.ModeSetuid != 0 || fi.Mode().Perm() != 0o755 {
				t.Errorf("script.sh mode %v: setuid must be stripped, 0755 kept", fi.Mode())
			}
			if tgt, _ := os.Readlink(filepath.Join(l.Lower, "link")); tgt != "kept" {
				t.Errorf("link -> %q", tgt)
			}
			// Applied paths leave the session: only the conflict and the
			// refused link remain.
			if err := l.Prune(nil); err != nil {
				t.Fatal(err)
			}
			cs, err = l.Diff()
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(cs); got != "added evil\nmodified kept\n" {
				t.Errorf("after apply, diff:\n%s", got)
			}
			var left []string
			filepath.Walk(l.Upper, func(p string, fi os.FileInfo, err error) error {
				if p != l.Upper {
					rel, _ := filepath.Rel(l.Upper, p)
					left = append(left, rel)
				}
				return nil
			})
			if strings.Join(left, " ") != "evil kept" {
				t.Errorf("upper still holds %v", left)
			}
			// --force applies over the conflict.
			rep, err = l.Apply(l.Lower, Select(cs, []string{"kept"}), ApplyOptions{Force: true, Baseline: base})
			if err != nil || rep.Counts[Applied] != 1 {
				t.Fatalf("force: %v %+v", err, rep)
			}
			if got := read(t, filepath.Join(l.Lower, "kept")); got != "kept\nmore\n" {
				t.Errorf("forced kept = %q", got)
			}
		})
	}
}

// A symlink the host grew since the baseline is never written through.
func TestApplyNoFollow(t *testing.T) {
	dir := t.TempDir()
	l := &Layer{Lower: filepath.Join(dir, "lower"), Upper: filepath.Join(dir, "upper"), Format: FormatKernel}
	build(t, l.Lower, l.Format, fsSpec{"sub/f": "f\n"})
	build(t, l.Upper, l.Format, fsSpec{"sub/f": "new\n", "sub/g": "g\n"})
	outside := filepath.Join(dir, "outside")
	os.Mkdir(outside, 0o755)
	base, _ := TakeBaseline(l.Lower)
	cs, err := l.Diff()
	if err != nil {
		t.Fatal(err)
	}
	// Between diff and apply, sub becomes a link out of the tree.
	os.RemoveAll(filepath.Join(l.Lower, "sub"))
	os.Symlink(outside, filepath.Join(l.Lower, "sub"))
	for _, force := range []bool{false, true} {
		rep, err := l.Apply(l.Lower, cs, ApplyOptions{Baseline: base, Force: force})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Counts[Applied] != 0 {
			t.Errorf("force=%v: applied through a symlink: %+v", force, rep.Results)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("force=%v: wrote outside the tree: %v", force, ents)
		}
	}
}

// A write that fails (here: over the file size limit) leaves the old file
// whole and no temporary file behind.
func TestApplyAtomic(t *testing.T) {
	dir := t.TempDir()
	l := &Layer{Lower: filepath.Join(dir, "lower"), Upper: filepath.Join(dir, "upper"), Format: FormatKernel}
	big := strings.Repeat("x", 1<<20)
	build(t, l.Lower, l.Format, fsSpec{"a": "old a\n", "b": "old b\n"})
	build(t, l.Upper, l.Format, fsSpec{"a": big, "b": "new b\n"})
	base, _ := TakeBaseline(l.Lower)
	cs, _ := l.Diff()
	// Fail the first write by making the destination directory refuse
	// new files for a moment: the copy cannot even start.
	var old unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_FSIZE, &old)
	lim := unix.Rlimit{Cur: 4096, Max: old.Max}
	// Lowering a soft limit cannot be refused: a failure here is a bug,
	// never a reason to skip (a skip would bypass HUTCH_TEST_STRICT).
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Apply(l.Lower, cs, ApplyOptions{Baseline: base})
	unix.Setrlimit(unix.RLIMIT_FSIZE, &old)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Results[0].Outcome != Failed || rep.Results[1].Outcome != Skipped || rep.Stopped == "" {
		t.Errorf("results: %+v", rep)
	}
	if got := read(t, filepath.Join(l.Lower, "a")); got != "old a\n" {
		t.Errorf("a = %q", got)
	}
	ents, _ := os.ReadDir(l.Lower)
	if len(ents) != 2 {
		t.Errorf("left behind: %v", ents)
	}
}

func TestBaselineRoundTrip(t *testing.T) {
	dir := t.TempDir()
	build(t, filepath.Join(dir, "t"), FormatKernel, fsSpec{"a b": "1", "d/\"q\"": "2", "l@": "x"})
	b, err := TakeBaseline(filepath.Join(dir, "t"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Save(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	c, err := LoadBaseline(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Entries) != 4 {
		t.Fatalf("entries: %v", c.Entries)
	}
	for p, s := range b.Entries {
		if c.Entries[p] != s {
			t.Errorf("%s: %+v != %+v", p, c.Entries[p], s)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct {
		cwd, p, want string
		ok           bool
	}{
		{"/p", "a/b", "a/b", true},
		{"/p/a", "b", "a/b", true},
		{"/p", "/p/x/", "x", true},
		{"/p", ".", "", true},
		{"/p", "../q", "", false},
		{"/p", "/etc/passwd", "", false},
	} {
		got, ok := CleanPath("/p", tc.cwd, tc.p)
		if got != tc.want || ok != tc.ok {
			t.Errorf("CleanPath(%q, %q) = %q, %v", tc.cwd, tc.p, got, ok)
		}
	}
}

// Refresh re-records what the session has not touched, and keeps the
// session-start stamps of what it has.
func TestTouchedRefresh(t *testing.T) {
	for _, f := range []Format{FormatKernel, FormatFuse} {
		t.Run(f.String(), func(t *testing.T) {
			l, bfile := setup(t, f)
			base, _ := LoadBaseline(bfile)
			touched, err := l.Touched()
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string]bool{
				"kept": true, "old": true, "dir": true, "dir/sub/s": true, "odir": true, "odir/g": true,
				"new": true, "same": false, "link": true, "becomes-file": true, ".wh.notmine": false,
			} {
				if got := touched(p); got != want {
					t.Errorf("touched(%q) = %v, want %v", p, got, want)
				}
			}
			// The host edits a file the session never touched, and one it did.
			os.WriteFile(filepath.Join(l.Lower, "same"), []byte("host\n"), 0o644)
			os.WriteFile(filepath.Join(l.Lower, "kept"), []byte("host\n"), 0o644)
			os.WriteFile(filepath.Join(l.Lower, "host-new"), []byte("host\n"), 0o644)
			before := base.Entries["kept"]
			if err := base.Refresh(l.Lower, touched); err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			unix.Lstat(filepath.Join(l.Lower, "same"), &st)
			if !base.Entries["same"].Same(stampOf(&st)) {
				t.Error("same: not refreshed")
			}
			if _, ok := base.Entries["host-new"]; !ok {
				t.Error("host-new: not recorded")
			}
			if base.Entries["kept"] != before {
				t.Error("kept: refreshed, though the session changed it")
			}
		})
	}
}

// TestDiffSeveralLowers: an image session's upper against the merged view
// of the image's layers, whose whiteouts and opaque directories hide what
// is below them.
func TestDiffSeveralLowers(t *testing.T) {
	dir := t.TempDir()
	top, bottom := filepath.Join(dir, "l1"), filepath.Join(dir, "l2")
	build(t, bottom, FormatKernel, fsSpec{
		"a/x": "x1\n", "a/y": "y\n", "b/z": "z\n", "c": "c\n", "d/old": "old\n", "f/kept": "k\n",
	})
	build(t, top, FormatKernel, fsSpec{
		"a/x": "x2\n", "b/z!": "", "d/*": "", "d/new": "new\n",
	})
	for _, f := range []Format{FormatKernel, FormatFuse} {
		t.Run(fmt.Sprint(f), func(t *testing.T) {
			up := filepath.Join(dir, fmt.Sprint("upper-", int(f)))
			build(t, up, f, fsSpec{
				"a/x": "x3\n", "a/y": "y2\n", "b/z": "back\n", "c!": "", "d/new!": "", "e": "e\n",
			})
			l := &Layer{Lowers: []string{top, bottom}, Upper: up, Format: f}
			cs, err := l.Diff()
			if err != nil {
				t.Fatal(err)
			}
			want := "modified a/x\nmodified a/y\nadded b/z\ndeleted c\ndeleted d/new\nadded e\n"
			if got := summary(cs); got != want {
				t.Errorf("diff:\n%s\nwant:\n%s", got, want)
			}
			var b bytes.Buffer
			if err := l.WriteUnified(&b, cs[:1]); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), "-x2\n+x3\n") {
				t.Errorf("a/x is not compared with the top layer's version:\n%s", b.String())
			}
		})
	}
	l := &Layer{Lowers: []string{top, bottom}}
	for rel, want := range map[string]string{"a/x": top, "a/y": bottom, "b/z": "", "d/old": "", "d/new": top, "f/kept": bottom, "nothing": ""} {
		got := l.lowerPath(rel)
		if want != "" {
			want = filepath.Join(want, rel)
		}
		if got != want {
			t.Errorf("lowerPath(%s) = %q, want %q", rel, got, want)
		}
	}
	names, _ := l.lowerNames("d")
	if strings.Join(names, ",") != "new" {
		t.Errorf("d merges to %v, want only new (opaque)", names)
	}
	names, _ = l.lowerNames("b")
	if len(names) != 0 {
		t.Errorf("b merges to %v, want nothing (z whited out)", names)
	}
}
