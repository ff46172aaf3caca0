package userns

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Helper describes newuidmap or newgidmap on this machine.
type Helper struct {
	Path   string // "" when not found
	Setuid bool   // setuid root
	Caps   bool   // carries file capabilities
}

// Usable reports whether the helper exists and can act.
func (h Helper) Usable() bool { return h.Path != "" && (h.Setuid || h.Caps) }

// FindHelper looks for a newuidmap-like helper on PATH, then in /usr/bin,
// /bin and /usr/sbin, and says why it can act or not.
func FindHelper(name string) Helper {
	for _, dir := range append(filepath.SplitList(os.Getenv("PATH")), "/usr/bin", "/bin", "/usr/sbin") {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		h := Helper{Path: p, Setuid: st.Mode&unix.S_ISUID != 0 && st.Uid == 0}
		if sz, err := unix.Getxattr(p, "security.capability", nil); err == nil && sz > 0 {
			h.Caps = true
		}
		return h
	}
	return Helper{}
}
