package main

import (
	"strings"
	"testing"
)

// TestRootWarning: hutch run warns when root starts it, and only then (the
// suite runs as an unprivileged user, so the branch is tested here).
func TestRootWarning(t *testing.T) {
	for _, tt := range []struct {
		euid int
		want string
	}{
		{0, "running as root: hutch is meant for unprivileged users"},
		{1000, ""},
		{65534, ""},
	} {
		got := rootWarning(tt.euid)
		if tt.want == "" && got != "" || tt.want != "" && !strings.HasPrefix(got, tt.want) {
			t.Errorf("rootWarning(%d) = %q, want %q", tt.euid, got, tt.want)
		}
	}
}
