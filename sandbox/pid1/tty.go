package pid1

import (
	"os"

	"github.com/hutch-sandbox/hutch/sandbox/wire"
	"golang.org/x/sys/unix"
)

// openPTY allocates a pty in the sandbox's own devpts instance, so the
// command's terminal is a device of the sandbox, not the caller's.
func openPTY(ws *wire.Winsize) (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, nil, err
	}
	// TIOCGPTPEER opens the peer through the master itself, with no path
	// lookup that could be raced.
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		unix.Close(mfd)
		return nil, nil, errno
	}
	if ws != nil && ws.Rows > 0 {
		unix.IoctlSetWinsize(int(sfd), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Rows, Col: ws.Cols})
	}
	return os.NewFile(uintptr(mfd), "ptmx"), os.NewFile(sfd, "pty"), nil
}
