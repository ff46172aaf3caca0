package pid1

import (
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/hint"
)

// serviceImageRoot mounts a service's image at root/merged and returns
// that path: the kernel's overlay of the image's stored layers (each
// opened once, as the command's are), read-only below an upper layer on
// the tmpfs at root, which goes with the service's mount namespace. The
// stored layers are never written: the store shares them between runs.
// It runs in hutch-service, in the service's own mount namespace.
func serviceImageRoot(root string, lowers []string) (string, error) {
	merged := filepath.Join(root, "merged")
	for _, d := range []string{"upper", "work", "merged"} {
		if err := unix.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			return "", fmt.Errorf("the service's image layer: %w", err)
		}
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, d := range lowers {
		fd, err := openHostDir(d)
		if err != nil {
			return "", fmt.Errorf("opening the image's layer %s: %w", d, err)
		}
		fds = append(fds, fd)
	}
	for _, d := range []string{"upper", "work", "merged"} {
		fd, err := unix.Open(filepath.Join(root, d), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", err
		}
		fds = append(fds, fd)
	}
	n := len(lowers)
	if err := kernelOverlay(fds[n+2], fds[:n], fds[n], fds[n+1]); err != nil {
		return "", hint.With(fmt.Errorf("mounting the service's image: %w", err),
			"a service's image needs the kernel's overlay in a user namespace (Linux 5.11+); fuse-overlayfs is not used for services (hutch doctor says what works here)")
	}
	return merged, nil
}
