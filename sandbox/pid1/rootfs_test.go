package pid1

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "run/systemd/resolve"), 0o755))
	must(os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf")))
	must(os.Symlink("/etc/loop2", filepath.Join(root, "etc/loop1")))
	must(os.Symlink("/etc/loop1", filepath.Join(root, "etc/loop2")))
	must(os.Symlink("/../../../../etc/passwd", filepath.Join(root, "etc/escape")))
	tests := []struct{ in, want string }{
		{"/etc/resolv.conf", "/run/systemd/resolve/stub-resolv.conf"},
		{"/etc/hosts", "/etc/hosts"},
		{"/etc/escape", "/etc/passwd"}, // stays inside root
		{"/etc/loop1", ""},
	}
	for _, tt := range tests {
		got, err := resolveIn(root, tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("%s: want an error, got %s", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
