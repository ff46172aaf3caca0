package esc

import "testing"

func TestText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain name.txt", "plain name.txt"},
		{"héllo wörld ✓ 日本", "héllo wörld ✓ 日本"},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\a`},
		{"\x1b[2J", `\x1b[2J`},
		{"a\nb\r\tc", `a\nb\r\tc`},
		{"evil\u202etxt.exe", `evil\u202etxt.exe`},
		{"\u2066x\u2069\u200b\u2028\u2029", `\u2066x\u2069\u200b\u2028\u2029`},
		{"\x7f\u0085\u009b", `\x7f\u0085\u009b`},
		{"bad\xff\xfeutf8", `bad\xff\xfeutf8`},
		{`back\slash`, `back\\slash`},
		{"\x00", `\x00`},
	} {
		if got := Text(tt.in); got != tt.want {
			t.Errorf("Text(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestFirst(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{"fine ✓", -1}, {"a\nb", 1}, {"ab\u202e", 2}, {"x\xff", 1}, {"\x00", 0}, {"tab\t", 3}, {`back\slash`, -1},
	} {
		if got := First(tt.in); got != tt.want {
			t.Errorf("First(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestLines(t *testing.T) {
	in := "hutch.toml:1:1: \"a\\nb\" then\n\tmore \x1b[2J \u202e \xff ✓"
	want := "hutch.toml:1:1: \"a\\nb\" then\n\tmore \\x1b[2J \\u202e \\xff ✓"
	if got := Lines(in); got != want {
		t.Errorf("Lines(%q) = %q, want %q", in, got, want)
	}
}
