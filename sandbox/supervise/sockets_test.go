package supervise

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestHostListeners: a socket bound on the host shows in /proc/net/unix by
// its path, spaces included.
func TestHostListeners(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a dir", "x.sock")
	os.MkdirAll(filepath.Dir(p), 0o755)
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := hostListeners(); !slices.Contains(got, p) {
		t.Errorf("hostListeners() = %q, want it to hold %s", got, p)
	}
}

// BenchmarkHostListeners times the supervisor's read of /proc/net/unix.
func BenchmarkHostListeners(b *testing.B) {
	for i := 0; i < b.N; i++ {
		hostListeners()
	}
}
