package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestOfflineHint: the profile named for each registry, the fix without
// one, nothing on success or without lookups, names escaped.
func TestOfflineHint(t *testing.T) {
	tests := []struct {
		names []string
		code  int
		want  string // "" for no line
	}{
		{[]string{"proxy.golang.org"}, 1, "run with --profile go, or --network proxy --allow proxy.golang.org"},
		{[]string{"github.com", "files.pythonhosted.org"}, 1, "looked up github.com, files.pythonhosted.org with the network off (network = \"none\"): run with --profile pip, or --network proxy --allow github.com --allow files.pythonhosted.org"},
		{[]string{"Static.Crates.IO"}, 101, "--profile cargo,"},
		{[]string{"a", "b", "c", "d"}, 1, "looked up a, b, c, … with"},
		{[]string{"x\u202etxt.example"}, 1, `looked up x\u202etxt.example with the network off (network = "none"): run with --network proxy --allow "x\u202etxt.example"`},
		{[]string{"registry.npmjs.org"}, 0, ""},
		{nil, 1, ""},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		reportOfflineLookups(&b, tt.names, tt.code)
		out := b.String()
		if tt.want == "" {
			if out != "" {
				t.Errorf("%q exit %d: want no hint, got %q", tt.names, tt.code, out)
			}
			continue
		}
		if !strings.HasPrefix(out, "hutch: hint: ") || strings.Count(out, "\n") != 1 || !strings.Contains(out, tt.want) {
			t.Errorf("%q exit %d: got %q, want one hint line with %q", tt.names, tt.code, out, tt.want)
		}
		if strings.ContainsRune(out, '\u202e') {
			t.Errorf("ESCAPED: a bidi override printed raw: %q", out)
		}
	}
}
