// Package fds holds the file-descriptor hygiene both sides of a run need
// before they exec: nothing but the descriptors meant for a child may
// cross an exec. A leaf.
package fds

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// CloexecFrom sets close-on-exec on every fd from first up.
func CloexecFrom(first int) {
	if unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscanf(e.Name(), "%d", &fd); err == nil && fd >= first {
			unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
}
