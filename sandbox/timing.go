package sandbox

import (
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"
)

// timing prints start-up phases for --debug-timing. CLOCK_MONOTONIC is the
// same clock in every pid namespace, so supervisor and init can share an
// origin.
type timing struct {
	origin int64 // ns on CLOCK_MONOTONIC; 0 disables the trace
	who    string
	w      io.Writer
	last   int64
}

func monotonicNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func (t *timing) mark(phase string) { t.markAt(phase, 0) }

// markAt records a phase that ended at now (0: at this moment).
func (t *timing) markAt(phase string, now int64) {
	if t == nil || t.origin == 0 {
		return
	}
	if now == 0 {
		now = monotonicNow()
	}
	if t.last == 0 {
		t.last = t.origin
	}
	fmt.Fprintf(t.w, "hutch: timing: %-10s %-28s +%6.2fms  (at %6.2fms)\n", t.who, phase,
		float64(now-t.last)/float64(time.Millisecond), float64(now-t.origin)/float64(time.Millisecond))
	t.last = now
}
