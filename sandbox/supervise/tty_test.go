package supervise

import (
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// TestTerminalRestoredOnPanic: Launch defers saveTerminals' restore, so a
// panic in hutch itself unwinds through it and the caller's terminal gets
// its modes back (TestTerminalRestored in cmd/hutch covers the other ways
// a run ends).
func TestTerminalRestoredOnPanic(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("no panic")
			}
		}()
		defer saveTerminals(tty)()
		if _, err := makeRaw(int(tty.Fd())); err != nil {
			t.Fatal(err)
		}
		panic("hutch panics with the terminal raw")
	}()
	after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Errorf("terminal modes not restored after a panic: lflag %#x -> %#x", before.Lflag, after.Lflag)
	}
}
