package profiles

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSharedPlace: which directories are places shared with other
// programs (never the implicit project), by the rule in docs/cli.md.
func TestSharedPlace(t *testing.T) {
	base := t.TempDir() // private: 0700, ours, below /tmp
	// A home outside /tmp: /tmp as an ancestor of home is never bound,
	// and so never checked.
	home := "/home/hutch-test-nobody"
	xdg := filepath.Join(base, "xdg")
	tmpdir := filepath.Join(base, "tmpdir")
	mk := func(rel string, mode os.FileMode) string {
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, d := range []string{"proj", "xdg/sub", "tmpdir/mine"} {
		mk(d, 0o755)
	}
	open := mk("open", 0o777)
	mk("open/mine", 0o700)
	groupOwn := mk("group-own", 0o775) // our own primary group: fine
	sockets := mk("sockets", 0o700)
	deep := mk("deep/inner", 0o700)
	for _, s := range []string{filepath.Join(sockets, "agent.1"), filepath.Join(deep, "agent.2")} {
		l, err := net.Listen("unix", s)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
	}
	env := map[string]string{"XDG_RUNTIME_DIR": xdg, "TMPDIR": tmpdir}
	p := &Profile{home: home, realHome: home, lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	tests := []struct {
		dir  string
		want string // a substring of the reason; "" for a place of your own
	}{
		{"/tmp", "temporary directory shared"},
		{"/var/tmp", "temporary directory shared"},
		{"/dev/shm", "the kernel's view"},
		{"/run", "runtime state"},
		{"/run/user", "inside /run"},
		{"/proc/self", "inside /proc"},
		{"/sys", "the kernel's view"},
		{xdg, "runtime state"},
		{filepath.Join(xdg, "sub"), "inside " + xdg},
		{tmpdir, "temporary directory shared"},
		{filepath.Join(tmpdir, "mine"), ""},
		{base, ""},
		{filepath.Join(base, "proj"), ""},
		{home, ""}, // home and its ancestors: never bound, not checked here
		{"/home", ""},
		{open, "writable by everyone (mode 777)"},
		{filepath.Join(open, "mine"), open + ", below the shared /tmp, is writable by everyone"},
		{groupOwn, ""},
		{sockets, "holds the socket agent.1"},
		{filepath.Dir(deep), ""}, // top level only
	}
	for _, tt := range tests {
		got := p.sharedPlace(tt.dir)
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("sharedPlace(%s) = %q, want %q", tt.dir, got, tt.want)
		}
	}
}
