package main

import (
	"testing"
	"time"
)

func TestParseAge(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration // 0: invalid
	}{
		{"30m", 30 * time.Minute}, {"12h", 12 * time.Hour}, {"7d", 7 * 24 * time.Hour},
		{"2w", 14 * 24 * time.Hour}, {"1.5d", 36 * time.Hour},
		{"", 0}, {"soon", 0}, {"-1d", 0}, {"0h", 0}, {"d", 0},
	} {
		got, err := parseAge(tc.in)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("parseAge(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 20441: "20,441", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestGroupOf(t *testing.T) {
	for _, tc := range []struct {
		p     string
		dir   bool
		group string
	}{
		{"node_modules", true, "node_modules/"}, {"node_modules/a/b.js", false, "node_modules/"},
		{"README", false, ""}, {"src/x", true, "src/"},
	} {
		if got := groupOf(tc.p, tc.dir); got != tc.group {
			t.Errorf("groupOf(%q, %v) = %q, want %q", tc.p, tc.dir, got, tc.group)
		}
	}
}
