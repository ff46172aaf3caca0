package supervise

import (
	"os"
	"os/signal"

	"github.com/hutch-sandbox/hutch/sandbox/wire"
	"golang.org/x/sys/unix"
)

// isTerminal reports whether fd is a terminal.
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

func getWinsize(fd int) *wire.Winsize {
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return nil
	}
	return &wire.Winsize{Rows: ws.Row, Cols: ws.Col}
}

// makeRaw puts the terminal at fd in raw mode, as cfmakeraw(3) does, and
// returns a function that restores it.
func makeRaw(fd int) (restore func(), err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// saveTerminals records the modes of those of the caller's streams that
// are terminals and returns a function that puts back any that changed.
// The command may change them on a terminal it shares (--tty never: raw
// mode, echo off) and die before it restores them; hutch restores them on
// every way out of Launch, its own panic included (deferred calls run
// while a panic unwinds).
func saveTerminals(files ...*os.File) (restore func()) {
	type saved struct {
		fd int
		t  unix.Termios
	}
	var all []saved
	for _, f := range files {
		if f == nil {
			continue
		}
		if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			all = append(all, saved{int(f.Fd()), *t})
		}
	}
	return func() {
		for _, s := range all {
			cur, err := unix.IoctlGetTermios(s.fd, unix.TCGETS)
			if err != nil || *cur == s.t {
				continue
			}
			// From a background process group, changing the terminal
			// would stop hutch with SIGTTOU; ignored, it goes through.
			signal.Ignore(unix.SIGTTOU)
			unix.IoctlSetTermios(s.fd, unix.TCSETS, &s.t)
			signal.Reset(unix.SIGTTOU)
		}
	}
}
