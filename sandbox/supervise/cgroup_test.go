package supervise

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCgroup2Mount: the place found (by statfs, or in mountinfo) is a
// cgroup v2 mount, and one is found whenever mountinfo lists one.
func TestCgroup2Mount(t *testing.T) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	listed := strings.Contains(string(data), " - cgroup2 ")
	mnt, err := Cgroup2Mount()
	if !listed {
		if err == nil {
			t.Errorf("found cgroup v2 at %s, which mountinfo does not list", mnt)
		}
		return
	}
	if err != nil {
		t.Fatalf("mountinfo lists cgroup v2, Cgroup2Mount: %v", err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(mnt, &fs); err != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Errorf("%s is not a cgroup v2 mount (%v, type %#x)", mnt, err, fs.Type)
	}
}
