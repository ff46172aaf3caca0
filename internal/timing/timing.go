// Package timing prints the start-up phases of a run for --debug-timing,
// on both sides of it (supervisor, init, stage2) against one origin on
// CLOCK_MONOTONIC. A leaf: it writes to the writer it is given, nothing
// else.
package timing

import (
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"
)

// Timing prints start-up phases for --debug-timing. CLOCK_MONOTONIC is the
// same clock in every pid namespace, so supervisor and init can share an
// origin.
type Timing struct {
	Origin int64 // ns on CLOCK_MONOTONIC; 0 disables the trace
	Who    string
	W      io.Writer
	last   int64
}

func Now() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func (t *Timing) Mark(phase string) { t.MarkAt(phase, 0) }

// MarkAt records a phase that ended at now (0: at this moment).
func (t *Timing) MarkAt(phase string, now int64) {
	if t == nil || t.Origin == 0 {
		return
	}
	if now == 0 {
		now = Now()
	}
	if t.last == 0 {
		t.last = t.Origin
	}
	fmt.Fprintf(t.W, "hutch: timing: %-10s %-28s +%6.2fms  (at %6.2fms)\n", t.Who, phase,
		float64(now-t.last)/float64(time.Millisecond), float64(now-t.Origin)/float64(time.Millisecond))
	t.last = now
}
