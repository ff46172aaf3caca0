package supervise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/fds"
	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/lockedexec"
	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/internal/sysctl"
	"github.com/hutch-sandbox/hutch/internal/timing"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
	"github.com/hutch-sandbox/hutch/userns"
)

// Stdio is the caller's standard streams.
type Stdio struct {
	Stdin, Stdout, Stderr *os.File
}

// LaunchOptions tune how a plan is launched, not what it does.
type LaunchOptions struct {
	// DebugTiming prints start-up phases to stderr.
	DebugTiming bool
	// Origin is when the run started (CLOCK_MONOTONIC ns) for DebugTiming;
	// 0 means when Launch was called.
	Origin int64
	// Warn receives things the user should know that do not stop the run
	// (a limit that cannot be enforced, a timeout). Nil drops them.
	Warn func(string)
	// Info receives what --verbose shows (the overlay driver picked). Nil
	// drops it.
	Info func(string)
}

// Result is how a sandboxed command ended.
type Result struct {
	// ExitCode is the command's status, or 128+Signal when a signal killed
	// it, or 124 when it ran out of time.
	ExitCode int
	Signal   int
	TimedOut bool
	// Denials are the requests the allowlist proxy refused.
	Denials []proxy.Denial
	// HomeWrites is what the command left in a temporary home, lost with
	// it; nil when nothing was (or the home is not temporary).
	HomeWrites *sandbox.HomeWrites
}

var cloneFlags = map[string]uintptr{
	"user": unix.CLONE_NEWUSER, "mount": unix.CLONE_NEWNS, "pid": unix.CLONE_NEWPID,
	"ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS, "net": unix.CLONE_NEWNET,
	"cgroup": unix.CLONE_NEWCGROUP,
}

// Launch runs plan and returns how its command ended. It is the supervisor:
// it owns the run's state directory, writes the id maps, hands hutch-init
// its config, relays signals and the terminal, and cleans up on every path.
func Launch(ctx context.Context, plan *sandbox.Plan, stdio Stdio, opts LaunchOptions) (*Result, error) {
	tm := &timing.Timing{Who: "supervisor", W: stdio.Stderr}
	if opts.DebugTiming {
		tm.Origin = opts.Origin
		if tm.Origin == 0 {
			tm.Origin = timing.Now()
		}
		tm.Mark("launch")
	}
	// Fds the caller leaked to us (not close-on-exec) must not reach the
	// sandbox; the ones asked for are passed explicitly below.
	if !mutate.Off("cloexec") {
		fds.CloexecFrom(3)
	}
	defer saveTerminals(stdio.Stdin, stdio.Stdout, stdio.Stderr)()

	// The host's sockets, read while hutch-init starts (sockets.go).
	listeners := make(chan []string, 1)
	go func() { listeners <- hostListeners() }()

	filter, err := compileSeccomp(plan)
	if err != nil {
		return nil, err
	}
	if err := makeCaches(plan.Create); err != nil {
		return nil, err
	}
	netsup, err := prepareNet(plan)
	if err != nil {
		return nil, err
	}
	defer netsup.close()
	rs, err := newRunState(plan.StateRoot)
	if err != nil {
		return nil, err
	}
	defer rs.close()
	// Overlays: lock the session, pick the driver, prepare the layers.
	lay, err := openRunLayers(ctx, plan, opts)
	if err != nil {
		return nil, err
	}
	defer lay.close()

	var cg *cgroupRun
	if plan.Cgroup.Any() {
		cg, err = newCgroupRun("hutch-"+filepath.Base(rs.dir), plan.Cgroup)
		// Without a cgroup, pids are still bounded (RLIMIT_NPROC in the
		// sandbox's user namespace, limits.go); memory and cpu are not.
		unenforced := plan.Cgroup.Memory > 0 || plan.Cgroup.CPU > 0
		if err != nil {
			if unenforced && plan.LimitsRequired {
				return nil, err
			}
			if unenforced && !plan.LimitsQuiet && opts.Warn != nil && firstWarning(plan.StateRoot, "cgroup") {
				opts.Warn(err.Error() + "; memory and cpu limits are NOT enforced (hutch doctor says how to get a delegated cgroup; limits.required = true refuses to run instead, limits.quiet = true drops this warning, printed once per boot)")
			}
			cg = nil
		} else {
			rs.setCgroup(cg.dir)
			defer cg.remove()
		}
	}

	tm.Mark("state dir")
	cfg := &wire.Config{Plan: plan, RootDir: rs.rootDir(), TimingOrigin: tm.Origin, Seccomp: wire.FilterBytes(filter), NeedNet: netsup.needsHelper()}
	cfg.Layers = lay.initInfo()
	switch plan.TTY {
	case "auto":
		cfg.UsePTY = isTerminal(int(stdio.Stdin.Fd()))
		for i, f := range []*os.File{stdio.Stdin, stdio.Stdout, stdio.Stderr} {
			cfg.StdioTTY[i] = cfg.UsePTY && isTerminal(int(f.Fd()))
		}
	case "always":
		cfg.UsePTY = true
		cfg.StdioTTY = [3]bool{true, true, true}
	}
	var termFD = -1
	for i, f := range []*os.File{stdio.Stdin, stdio.Stdout, stdio.Stderr} {
		if cfg.StdioTTY[i] && isTerminal(int(f.Fd())) {
			termFD = int(f.Fd())
			break
		}
	}
	if termFD >= 0 {
		cfg.Winsize = getWinsize(termFD)
	}

	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer cfgW.Close()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		cfgR.Close()
		return nil, err
	}
	statusParent := os.NewFile(uintptr(pair[0]), "status")
	statusChild := os.NewFile(uintptr(pair[1]), "status-child")
	defer statusParent.Close()

	extra := []*os.File{cfgR, statusChild}
	for i := 0; i < plan.PreserveFDs; i++ {
		fd := 3 + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			cfgR.Close()
			statusChild.Close()
			return nil, fmt.Errorf("--preserve-fds %d: fd %d is not open", plan.PreserveFDs, fd)
		}
		extra = append(extra, os.NewFile(uintptr(fd), fmt.Sprintf("fd%d", fd)))
	}

	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{wire.InitName},
		// One P is plenty for a process that mostly waits, and spares the
		// thread start-ups and wake-ups of an idle Go runtime.
		Env:        append([]string{"GOMAXPROCS=1"}, mutate.Env()...),
		Stdin:      stdio.Stdin,
		Stdout:     stdio.Stdout,
		Stderr:     stdio.Stderr,
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			Pdeathsig: syscall.SIGKILL,
			// Out of the terminal's foreground group: Ctrl-C reaches the
			// supervisor, which forwards it once.
			Setpgid: true,
		},
	}
	for _, ns := range plan.Namespaces {
		cmd.SysProcAttr.Cloneflags |= cloneFlags[ns]
	}
	// hutch-init keeps every capability across its exec, whatever its uid
	// inside, and gives them up before the command starts.
	for c := uintptr(0); c <= uintptr(sysctl.LastCap()); c++ {
		cmd.SysProcAttr.AmbientCaps = append(cmd.SysProcAttr.AmbientCaps, c)
	}
	if !plan.MapHelpers {
		cmd.SysProcAttr.UidMappings = toSysMap(plan.UIDMap)
		cmd.SysProcAttr.GidMappings = toSysMap(plan.GIDMap)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = false
	}

	undoNproc := reserveNproc() // limits.go: the namespace keeps it
	exited, err := lockedexec.Start(cmd)
	undoNproc()
	cfgR.Close()
	statusChild.Close()
	if err != nil {
		return nil, startError(err, plan.Namespaces)
	}
	tm.Mark("init started")
	pid := cmd.Process.Pid
	rs.writeExecInfo(cfg)   // for hutch exec
	rs.writeInfo(plan, pid) // for hutch ps, last: a listed run can be joined
	kill := func() { unix.Kill(pid, unix.SIGKILL) }
	if cg != nil {
		// init waits for its config before it forks anything, so the
		// command and all its descendants start inside the cgroup.
		if err := cg.add(pid); err != nil {
			kill()
			<-exited
			return nil, fmt.Errorf("moving the sandbox into its cgroup: %w", err)
		}
	}

	if plan.MapHelpers {
		if err := writeMaps(ctx, plan, pid); err != nil {
			kill()
			<-exited
			return nil, err
		}
	}
	tm.Mark("id maps written")
	cfg.Listeners = <-listeners
	if err := wire.WriteFrame(cfgW, cfg); err != nil {
		kill()
		<-exited
		return nil, fmt.Errorf("sending the plan to hutch-init: %w", err)
	}
	if netsup.needsHelper() {
		// init builds the root meanwhile; it waits for this before the
		// command starts.
		if err := netsup.startHelper(pid, rs.dir); err != nil {
			kill()
			<-exited
			return nil, err
		}
		tm.Mark("network helper ready")
		wire.WriteFrame(cfgW, wire.NetFrame{Ready: true})
	}
	netsup.forward(statusParent)

	sup := &supervisor{pid: pid, cmd: cmd, stdio: stdio, cfg: cfg, tm: tm, warn: opts.Warn, net: netsup}
	res, err := sup.run(ctx, statusParent, exited)
	var hd *sandbox.HelperDiedError
	if lay != nil && errors.As(err, &hd) {
		lay.stopped = hd.Helper + " died"
	}
	lay.finish(stdio.Stderr, res != nil || hd != nil) // the changes' summary line
	if res != nil {
		res.Denials = netsup.denials()
	}
	return res, err
}

type supervisor struct {
	pid   int
	cmd   *exec.Cmd
	stdio Stdio
	cfg   *wire.Config

	tm      *timing.Timing
	warn    func(string)
	net     *netSupervisor
	master  *os.File
	relayWG sync.WaitGroup
	restore func()
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
			switch {
			case r.err != nil:
				msgs = nil // the socket closed: init is exiting
			case r.msg.Error != nil:
				initErr = r.msg.Error.Err()
			case r.msg.PTY:
				if r.fd < 0 {
					initErr = errors.New("hutch-init sent no pty")
					unix.Kill(s.pid, unix.SIGKILL)
					break
				}
				if err := s.startTTY(os.NewFile(uintptr(r.fd), "ptmx")); err != nil {
					initErr = err
					unix.Kill(s.pid, unix.SIGKILL)
				}
			case r.msg.ProxyListener:
				if r.fd < 0 || s.net == nil || s.net.proxy == nil {
					break
				}
				if err := s.net.serveProxy(r.fd); err != nil {
					initErr = err
					unix.Kill(s.pid, unix.SIGKILL)
				}
			case r.msg.Conn != nil:
				if s.net != nil {
					s.net.connected(r.msg.Conn, r.fd)
				}
			case r.msg.HelperDied != "":
				st.helperDied(r.msg.HelperDied, res != nil)
			case r.msg.Started != 0:
				s.tm.Mark("command started")
			case r.msg.Exit != nil:
				s.tm.Mark("command exited")
				res = &Result{ExitCode: r.msg.Exit.Code, Signal: r.msg.Exit.Signal, HomeWrites: r.msg.Exit.Home}
			}
		case sig := <-sigs:
			switch sig {
			case unix.SIGWINCH:
				s.resize()
			case unix.SIGINT, unix.SIGTERM:
				stops++
				if stops > 1 {
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
		if r.msg.Exit != nil && res == nil {
			res = &Result{ExitCode: r.msg.Exit.Code, Signal: r.msg.Exit.Signal, HomeWrites: r.msg.Exit.Home}
		}
		if r.msg.Error != nil && initErr == nil {
			initErr = r.msg.Error.Err()
		}
	}
	s.finishTTY()
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
		return &Result{ExitCode: 124, TimedOut: true}, nil
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
		if err := json.Unmarshal(buf[:n], &r.msg); err != nil {
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

func toSysMap(ms []userns.Mapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(ms))
	for i, m := range ms {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.Inside), HostID: int(m.Outside), Size: int(m.Size)}
	}
	return out
}

// writeMaps runs newuidmap and newgidmap for pid, side by side.
func writeMaps(ctx context.Context, plan *sandbox.Plan, pid int) error {
	// newgidmap allows setgroups(2) inside, which would let a process drop
	// your supplementary groups, and with them a file's deny-by-group
	// permissions. Unless the sandbox needs it (an image user's groups, or
	// a root that package managers make drop its groups), deny it first:
	// the kernel then keeps your groups attached whatever runs inside.
	if !needsSetgroups(plan) {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/setgroups", pid), []byte("deny"), 0); err != nil {
			return fmt.Errorf("denying setgroups in the sandbox: %w", err)
		}
	}
	errs := make(chan error, 2)
	go func() { errs <- userns.WriteWithHelper(ctx, plan.NewUIDMap, pid, plan.UIDMap) }()
	go func() { errs <- userns.WriteWithHelper(ctx, plan.NewGIDMap, pid, plan.GIDMap) }()
	err := errors.Join(<-errs, <-errs)
	if err != nil {
		return hint.With(fmt.Errorf("writing the id maps: %w", err),
			"check your /etc/subuid and /etc/subgid entries (hutch doctor), or run with --idmap single")
	}
	return nil
}

// needsSetgroups reports whether anything inside may call setgroups(2):
// init, to give an image user its supplementary groups, or a command
// holding CAP_SETGID (root inside).
func needsSetgroups(plan *sandbox.Plan) bool {
	for _, c := range plan.Caps {
		if c == "CAP_SETGID" {
			return true
		}
	}
	return len(plan.Groups) > 0
}

// startError explains a failure to create the namespaces.
func startError(err error, namespaces []string) error {
	e := fmt.Errorf("creating the sandbox's namespaces: %w", err)
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return hint.With(e, "unprivileged user namespaces look disabled on this machine; run 'hutch doctor' for the exact fix (on Ubuntu 24.04+: sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for hutch)")
	case errors.Is(err, unix.ENOSPC):
		detail, fix := sysctl.NSLimitProblem(namespaces, sysctl.NSLimits())
		return hint.With(fmt.Errorf("%w: %s", e, detail), "%s", fix)
	case errors.Is(err, unix.EINVAL):
		return hint.With(e, "the kernel lacks a namespace hutch needs; run 'hutch doctor'")
	case errors.Is(err, unix.EAGAIN):
		return hint.With(e, "you are near your limit on processes (ulimit -u): a sandbox may use up to three quarters of it, to leave you the rest; end some processes, or raise the limit")
	}
	return e
}
