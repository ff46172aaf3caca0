package layers

import "testing"

func TestMergeText(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		base, ours, theirs, want string
		conflicts                int
	}{
		{"disjoint", "a\nb\nc\nd\ne\n", "A\nb\nc\nd\ne\n", "a\nb\nc\nd\nE\n", "A\nb\nc\nd\nE\n", 0},
		{"same edit", "a\nb\n", "a\nX\n", "a\nX\n", "a\nX\n", 0},
		{"only theirs", "a\nb\n", "a\nb\n", "a\nb\nc\n", "a\nb\nc\n", 0},
		{"only ours", "a\nb\n", "z\na\nb\n", "a\nb\n", "z\na\nb\n", 0},
		{"both append", "a\n", "a\nours\n", "a\ntheirs\n",
			"a\n<<<<<<< host\nours\n=======\ntheirs\n>>>>>>> session\n", 1},
		{"same line", "x\ny\nz\n", "x\nY1\nz\n", "x\nY2\nz\n",
			"x\n<<<<<<< host\nY1\n=======\nY2\n>>>>>>> session\nz\n", 1},
		{"no final newline", "a\nb", "a\nB1", "a\nB2",
			"a\n<<<<<<< host\nB1\n=======\nB2\n>>>>>>> session\n", 1},
		{"delete and edit elsewhere", "1\n2\n3\n4\n5\n6\n", "1\n3\n4\n5\n6\n", "1\n2\n3\n4\n5\nsix\n", "1\n3\n4\n5\nsix\n", 0},
		{"empty base", "", "h\n", "s\n", "<<<<<<< host\nh\n=======\ns\n>>>>>>> session\n", 1},
	} {
		got, n := MergeText([]byte(tc.base), []byte(tc.ours), []byte(tc.theirs), "host", "session")
		if string(got) != tc.want || n != tc.conflicts {
			t.Errorf("%s: got %q (%d conflicts), want %q (%d)", tc.name, got, n, tc.want, tc.conflicts)
		}
	}
}

func TestExclude(t *testing.T) {
	dir := &Entry{Type: TypeDir}
	file := &Entry{Type: TypeFile}
	cs := []Change{
		{Path: "node_modules", Kind: Added, New: dir},
		{Path: "node_modules/a.js", Kind: Added, New: file},
		{Path: "src/x.log", Kind: Added, New: file},
		{Path: "src/main.go", Kind: Modified, Old: file, New: file},
		{Path: "build", Kind: Deleted, Old: dir},
		{Path: "build/keep.o", Kind: Deleted, Old: file},
		{Path: "build/other.o", Kind: Deleted, Old: file},
	}
	for _, tc := range []struct {
		globs []string
		want  []string
	}{
		{nil, []string{"node_modules", "node_modules/a.js", "src/x.log", "src/main.go", "build", "build/keep.o", "build/other.o"}},
		{[]string{"node_modules"}, []string{"src/x.log", "src/main.go", "build", "build/keep.o", "build/other.o"}},
		{[]string{"node_modules/"}, []string{"src/x.log", "src/main.go", "build", "build/keep.o", "build/other.o"}},
		{[]string{"*.log"}, []string{"node_modules", "node_modules/a.js", "src/main.go", "build", "build/keep.o", "build/other.o"}},
		{[]string{"src/*.go"}, []string{"node_modules", "node_modules/a.js", "src/x.log", "build", "build/keep.o", "build/other.o"}},
		// A deleted directory holding an excluded path is not deleted whole.
		{[]string{"build/keep.o"}, []string{"node_modules", "node_modules/a.js", "src/x.log", "src/main.go", "build/other.o"}},
	} {
		var got []string
		for _, c := range Exclude(cs, tc.globs) {
			got = append(got, c.Path)
		}
		if !equalLines(got, tc.want) {
			t.Errorf("Exclude(%q) = %q, want %q", tc.globs, got, tc.want)
		}
	}
	for _, g := range []string{"", "/abs", "[bad"} {
		if CheckGlob(g) == nil {
			t.Errorf("CheckGlob(%q) accepted", g)
		}
	}
}
