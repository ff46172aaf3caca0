package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/bytesjson"
	"github.com/hutch-sandbox/hutch/internal/timing"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// supervisor is a running sandbox seen from the caller's side: init's
// process, the caller's terminal, and the network supervisor.
type supervisor struct {
	pid   int
	cmd   *exec.Cmd
	stdio Stdio
	cfg   *wire.Config

	tm      *timing.Timing
	warn    func(string)
	net     *netSupervisor
	logs    *serviceLogs // nil without services
	master  *os.File
	relayWG sync.WaitGroup
	restore func()

	// cfgW is init's config pipe; hold, created and started are
	// LaunchOptions'.
	cfgW             *os.File
	hold             <-chan struct{}
	created, started func(pid int)
}

type recvd struct {
	msg wire.Status
	fd  int
	err error
}

func (s *supervisor) run(ctx context.Context, status *os.File, exited <-chan error) (*Result, error) {
	msgs := make(chan recvd, 8)
	go readStatus(status, msgs)

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH)
	defer signal.Stop(sigs)
	defer s.closeTTY()

	var (
		res      *Result
		initErr  error
		stops    int
		waitErr  error
		initDone bool
	)
	// process.timeout: SIGTERM to the command's group, SIGKILL to the whole
	// sandbox after a grace period, and status 124 as timeout(1) gives.
	var timeout <-chan time.Time
	timedOut := false
	if t := s.cfg.Plan.Timeout; t > 0 {
		tm := time.NewTimer(t)
		defer tm.Stop()
		timeout = tm.C
	}
	st := &stopper{pid: s.pid, grace: s.cfg.Plan.KillGrace} // stop.go
	helper, helperDone := s.net.helperDone()

	for !initDone {
		select {
		case r := <-msgs:
			if r.err != nil {
				msgs = nil // the socket closed: init is exiting
			} else if err := s.onStatus(r, st, &res); err != nil {
				initErr = err
			}
		case sig := <-sigs:
			s.forwardSignal(sig, &stops, st)
		case <-s.hold:
			s.hold = nil
			wire.WriteFrame(s.cfgW, wire.NetFrame{Start: true})
		case <-ctx.Done():
			unix.Kill(s.pid, unix.SIGKILL)
			ctx = context.Background()
		case <-timeout:
			timedOut = true
			unix.Kill(s.pid, unix.SIGTERM)
			st.start(unix.SIGTERM)
		case <-st.timer:
			st.expire()
		case <-helperDone:
			helperDone = nil
			// A helper may also end because the sandbox did (pasta quits
			// once the namespace is gone): only a live init means that it
			// died under a running command.
			if !exitedYet(s.pid) {
				st.helperDied(helper, res != nil)
			}
		case waitErr = <-exited:
			initDone = true
			s.tm.Mark("init reaped")
			if s.tm.Origin != 0 && s.cmd.ProcessState != nil {
				ru := s.cmd.ProcessState.SysUsage().(*syscall.Rusage)
				fmt.Fprintf(s.stdio.Stderr, "hutch: timing: init and command used %.2fms user, %.2fms system\n",
					float64(ru.Utime.Nano())/1e6, float64(ru.Stime.Nano())/1e6)
			}
		}
	}
	// Collect what init sent before it exited.
	for r := range drain(msgs) {
		if r.msg.Service != nil {
			s.logs.record(r.msg.Service)
		}
		if r.msg.Exit != nil && res == nil {
			res = exitResult(r.msg.Exit)
		}
		if r.msg.Error != nil && initErr == nil {
			initErr = r.msg.Error.Err()
		}
	}
	s.finishTTY()
	return s.outcome(res, initErr, waitErr, timedOut, st)
}

// onStatus acts on one message from init: the pty, the proxy's listener,
// a connected port, a helper's death, the command's start and exit (into
// res). An error is init's setup failing; init is then killed or exiting.
func (s *supervisor) onStatus(r recvd, st *stopper, res **Result) error {
	switch {
	case r.msg.Error != nil:
		return r.msg.Error.Err()
	case r.msg.PTY:
		if r.fd < 0 {
			unix.Kill(s.pid, unix.SIGKILL)
			return errors.New("hutch-init sent no pty")
		}
		if err := s.startTTY(os.NewFile(uintptr(r.fd), "ptmx")); err != nil {
			unix.Kill(s.pid, unix.SIGKILL)
			return err
		}
	case r.msg.ProxyListener:
		if r.fd < 0 || s.net == nil || s.net.proxy == nil {
			break
		}
		if err := s.net.serveProxy(r.fd); err != nil {
			unix.Kill(s.pid, unix.SIGKILL)
			return err
		}
	case r.msg.DNSSocket:
		if r.fd < 0 || s.net == nil {
			break
		}
		if err := s.net.serveDNS(r.fd); err != nil {
			unix.Kill(s.pid, unix.SIGKILL)
			return err
		}
	case r.msg.DNSListener:
		if r.fd < 0 || s.net == nil {
			break
		}
		if err := s.net.serveDNSTCP(r.fd); err != nil {
			unix.Kill(s.pid, unix.SIGKILL)
			return err
		}
	case r.msg.Redirect != nil:
		if s.net != nil {
			s.redirected(r.msg.Redirect, r.fd)
		} else if r.fd >= 0 {
			unix.Close(r.fd)
		}
	case r.msg.Conn != nil:
		if s.net != nil {
			s.net.connected(r.msg.Conn, r.fd)
		}
	case r.msg.Service != nil:
		s.logs.record(r.msg.Service)
	case r.msg.HelperDied != "":
		st.helperDied(r.msg.HelperDied, *res != nil)
	case r.msg.Held:
		if s.created != nil {
			s.created(s.pid)
		}
	case r.msg.Started != 0:
		s.tm.Mark("command started")
		if s.started != nil {
			s.started(s.pid)
		}
	case r.msg.Exit != nil:
		s.tm.Mark("command exited")
		*res = exitResult(r.msg.Exit)
	}
	return nil
}

// exitResult is the command's exit as init reported it.
func exitResult(ex *wire.ExitInfo) *Result {
	return &Result{ExitCode: ex.Code, Signal: ex.Signal, HomeWrites: ex.Home, Usage: ex.Usage}
}

// forwardSignal passes a signal the supervisor caught on to init: a
// second SIGINT or SIGTERM kills the sandbox; SIGWINCH resizes the pty.
func (s *supervisor) forwardSignal(sig os.Signal, stops *int, st *stopper) {
	switch sig {
	case unix.SIGWINCH:
		s.resize()
	case unix.SIGINT, unix.SIGTERM:
		*stops++
		if *stops > 1 {
			unix.Kill(s.pid, unix.SIGKILL)
			break
		}
		unix.Kill(s.pid, sig.(syscall.Signal))
		st.start(sig.(syscall.Signal))
	case unix.SIGHUP:
		unix.Kill(s.pid, unix.SIGHUP)
		st.start(unix.SIGHUP)
	default:
		unix.Kill(s.pid, sig.(syscall.Signal))
	}
}

// outcome is how the run ended, for Launch: a helper's death, init's
// error, the timeout, a kill from outside, or the command's exit status.
func (s *supervisor) outcome(res *Result, initErr, waitErr error, timedOut bool, st *stopper) (*Result, error) {
	if st.died != "" {
		return nil, &sandbox.HelperDiedError{Helper: st.died}
	}
	if initErr != nil {
		return nil, initErr
	}
	if timedOut {
		if s.warn != nil {
			s.warn(fmt.Sprintf("the command ran longer than its timeout (%v) and was stopped", s.cfg.Plan.Timeout))
		}
		// The command's usage and signal when it ended on the SIGTERM; none when
		// the grace ran out and the sandbox was killed.
		out := &Result{ExitCode: 124, TimedOut: true}
		if res != nil {
			out.Signal, out.Usage = res.Signal, res.Usage
		}
		return out, nil
	}
	if st.killed && s.warn != nil {
		s.warn(st.message())
	}
	if res == nil {
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				// Killed from outside (or by our own escalation).
				return &Result{ExitCode: 128 + int(ws.Signal()), Signal: int(ws.Signal())}, nil
			}
		}
		return nil, fmt.Errorf("hutch-init ended without reporting the command's status (%v)", waitErr)
	}
	return res, nil
}

// drain returns what is left in msgs without blocking for long: init has
// exited, so its socket is closed and the reader ends.
func drain(msgs chan recvd) chan recvd {
	out := make(chan recvd, 8)
	go func() {
		defer close(out)
		if msgs == nil {
			return
		}
		timeout := time.After(2 * time.Second)
		for {
			select {
			case r := <-msgs:
				if r.err != nil {
					return
				}
				out <- r
			case <-timeout:
				return
			}
		}
	}()
	return out
}

func readStatus(f *os.File, out chan<- recvd) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			if err == nil {
				err = io.EOF
			}
			out <- recvd{err: err}
			return
		}
		r := recvd{fd: -1}
		if oobn > 0 {
			if scms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, scm := range scms {
					if fds, err := unix.ParseUnixRights(&scm); err == nil && len(fds) > 0 {
						r.fd = fds[0]
					}
				}
			}
		}
		if err := bytesjson.UnmarshalFrame(buf[:n], &r.msg); err != nil { // pid1's sendStatus
			r.err = fmt.Errorf("bad message from hutch-init: %w", err)
		}
		out <- r
	}
}

// startTTY relays between the caller's terminal and the pty master.
func (s *supervisor) startTTY(master *os.File) error {
	s.master = master
	if s.cfg.StdioTTY[0] {
		if isTerminal(int(s.stdio.Stdin.Fd())) {
			restore, err := makeRaw(int(s.stdio.Stdin.Fd()))
			if err != nil {
				return fmt.Errorf("setting the terminal to raw mode: %w", err)
			}
			s.restore = restore
		}
		// Never joined: a read of the caller's stdin cannot be interrupted,
		// and nothing waits on it.
		go io.Copy(master, s.stdio.Stdin)
	}
	out := io.Writer(io.Discard)
	if s.cfg.StdioTTY[1] {
		out = s.stdio.Stdout
	} else if s.cfg.StdioTTY[2] {
		out = s.stdio.Stderr
	}
	s.relayWG.Add(1)
	go func() {
		defer s.relayWG.Done()
		io.Copy(out, master) // ends with EIO once every slave fd is closed
	}()
	return nil
}

func (s *supervisor) resize() {
	if s.master == nil {
		return
	}
	for _, f := range []*os.File{s.stdio.Stdin, s.stdio.Stdout, s.stdio.Stderr} {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
			unix.IoctlSetWinsize(int(s.master.Fd()), unix.TIOCSWINSZ, ws)
			return
		}
	}
}

// finishTTY waits for the command's last output to reach the caller.
func (s *supervisor) finishTTY() {
	if s.master == nil {
		return
	}
	done := make(chan struct{})
	go func() { s.relayWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

func (s *supervisor) closeTTY() {
	if s.restore != nil {
		s.restore()
	}
	if s.master != nil {
		s.master.Close()
	}
}
