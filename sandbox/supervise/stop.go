package supervise

import (
	"fmt"
	"time"

	"github.com/hutch-sandbox/hutch/sandbox"
	"golang.org/x/sys/unix"
)

// stopper is how the supervisor ends a sandbox that should stop: after the
// first SIGTERM (or SIGINT, SIGHUP) it forwards, the timeout's SIGTERM, or
// a helper's death, the command has process.kill_grace to end; then
// SIGKILL to init takes the whole sandbox (PID 1 gone, the kernel kills
// the rest of its pid namespace).
type stopper struct {
	pid   int
	grace time.Duration // 0: DefaultKillGrace
	timer <-chan time.Time
	sig   string // the signal the grace started with

	// killed: the grace ran out and the sandbox was killed.
	killed bool
	// died names the helper whose death stopped the sandbox.
	died string
}

// start begins the grace period, once.
func (s *stopper) start(sig unix.Signal) {
	if s.timer != nil {
		return
	}
	s.timer = time.After(s.period())
	s.sig = unix.SignalName(sig)
}

// helperDied stops the sandbox because helper died, unless the command
// had already ended.
func (s *stopper) helperDied(helper string, commandEnded bool) {
	if s.died != "" || commandEnded {
		return
	}
	s.died = helper
	unix.Kill(s.pid, unix.SIGTERM)
	s.start(unix.SIGTERM)
}

// expire is the end of the grace period.
func (s *stopper) expire() {
	s.killed = true
	unix.Kill(s.pid, unix.SIGKILL)
}

func (s *stopper) period() time.Duration {
	if s.grace > 0 {
		return s.grace
	}
	return sandbox.DefaultKillGrace
}

func (s *stopper) message() string {
	return fmt.Sprintf("the command did not end within process.kill_grace (%v) of %s; hutch killed the sandbox", s.period(), s.sig)
}

// exitedYet reports whether the child pid has exited, without reaping it
// (its waiter does that).
func exitedYet(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	// ECHILD: already reaped. Without a waitable child the kernel leaves
	// si_signo 0.
	return err != nil || info.Signo == int32(unix.SIGCHLD)
}
