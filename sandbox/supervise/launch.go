package supervise

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/fds"
	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/internal/sysctl"
	"github.com/hutch-sandbox/hutch/internal/timing"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/session"
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
	// Prestarted is a hutch-init started before the plan was made, which
	// Launch uses if it fits the plan (prestart.go). Nil starts one.
	Prestarted *Prestarted
	// Hold, when not nil, keeps the command from starting until it is
	// closed (OCI's create, then start); Created is called with init's pid
	// once the root is built and the command waits.
	Hold    <-chan struct{}
	Created func(pid int)
	// Started is called with init's pid once the command runs.
	Started func(pid int)
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
	// OfflineLookups are the names the command looked up while the network
	// was off (mode none), as asked from inside: untrusted text.
	OfflineLookups []string
	// Learned is what a learn run (network.learn) contacted; nil for any
	// other run.
	Learned *Learned
	// HomeWrites is what the command left in a temporary home, lost with
	// it; nil when nothing was (or the home is not temporary).
	HomeWrites *sandbox.HomeWrites
	// Services is how each service of the run ([services.NAME]) fared, in
	// start order; nil when the run has none.
	Services []ServiceStatus
	// Usage is what the command's tree used (wire.Usage says what it
	// counts); nil when init could not report it (killed, or never ran it).
	Usage *wire.Usage
	// Changes are the overlay's changes when the run ended; nil when
	// nothing was overlaid.
	Changes *Changes
}

// Changes are a run's overlay changes, counted when it ended.
type Changes struct {
	// Session is the kept session's name; "" when the changes were thrown
	// away with the run.
	Session string
	// Layers are the layers that changed, project first.
	Layers []session.LayerChanges
}

// ServiceStatus is one service's outcome, for the exit summary and
// --result.
type ServiceStatus struct {
	Name string `json:"name"`
	// State is "ready" (still running when the command ended), "failed"
	// (never became ready), "exited" (ended on its own) or "not-started".
	State    string `json:"state"`
	ExitCode int    `json:"exit_code,omitempty"`
	Signal   int    `json:"signal,omitempty"`
	// Log is the host path of the service's output.
	Log string `json:"log,omitempty"`
}

var cloneFlags = map[string]uintptr{
	"user": unix.CLONE_NEWUSER, "mount": unix.CLONE_NEWNS, "pid": unix.CLONE_NEWPID,
	"ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS, "net": unix.CLONE_NEWNET,
	"cgroup": unix.CLONE_NEWCGROUP,
}

// Launch runs plan and returns how its command ended. When a helper's
// death ends the run, it returns the error with a Result that holds what
// is known (denials, changes) and no exit status. It is the supervisor:
// it owns the run's state directory, writes the id maps, hands hutch-init
// its config, relays signals and the terminal, and cleans up on every path.
func Launch(ctx context.Context, plan *sandbox.Plan, stdio Stdio, opts LaunchOptions) (*Result, error) {
	if plan.Resolved == nil {
		return nil, errors.New("the plan is not resolved: call sandbox.Resolve after NewPlan")
	}
	tm := &timing.Timing{Who: "supervisor", W: stdio.Stderr}
	if opts.DebugTiming {
		tm.Origin = cmp.Or(opts.Origin, timing.Now())
		if at := opts.Prestarted.startedAt(); at != 0 {
			tm.MarkAt("init started early", at) // prestart.go
		}
		tm.Mark("launch")
	}
	// Fds the caller leaked to us (not close-on-exec) must not reach the
	// sandbox; the ones asked for are passed explicitly below.
	if !mutate.Off("cloexec") {
		fds.CloexecFrom(3)
	}
	defer saveTerminals(stdio.Stdin, stdio.Stdout, stdio.Stderr)()

	// The host's sockets, read while hutch-init starts (sockets.go). Not
	// with --preserve-fds: the fds from 3 up are then the caller's, checked
	// and passed as they are when init starts, and the read's own fd must
	// not come and go among them meanwhile (a hole, or hutch's file handed
	// to the sandbox).
	listeners := make(chan []string, 1)
	if plan.PreserveFDs > 0 {
		listeners <- hostListeners()
	} else {
		go func() { listeners <- hostListeners() }()
	}

	filter := plan.Resolved.Filter
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

	cg, err := limitRun(plan, rs, opts)
	if err != nil {
		return nil, err
	}
	if cg != nil {
		defer cg.remove()
	}

	tm.Mark("state dir")
	cfg := &wire.Config{Plan: plan, RootDir: rs.rootDir(), TimingOrigin: tm.Origin, Seccomp: wire.FilterBytes(filter), NeedNet: netsup.needsHelper(), NoRedirect: NoRedirect}
	cfg.Layers = lay.initInfo()
	cfg.Hold = opts.Hold != nil
	cfg.SeccompExtra = wire.FilterBytes(plan.Resolved.Extra)
	setTerminal(cfg, plan.TTY, stdio)

	logs, err := openServiceLogs(plan, rs.dir) // services.go
	if err != nil {
		return nil, err
	}
	defer logs.closeFiles()
	ip := opts.Prestarted.take(plan, stdio) // prestart.go; nil if it does not fit
	if ip != nil && !plan.MapHelpers {
		// Launch would have had Go write them at the clone.
		if err := writeSingleMaps(ip.cmd.Process.Pid, plan); err != nil {
			ip.kill()
			return nil, err
		}
	}
	if ip == nil {
		if ip, err = startInit(plan, stdio, logs.extraFiles()); err != nil {
			return nil, err
		}
		tm.MarkAt("init started", ip.at)
	}
	logs.closeFiles() // init has its copies
	defer ip.close()
	cmd, exited, cfgW, statusParent := ip.cmd, ip.exited, ip.cfgW, ip.statusParent
	pid := cmd.Process.Pid
	// The run's records: hutch exec's is the config frame init got, as
	// handshake sent it (encoding the plan a second time cost most of a
	// millisecond of CPU); hutch ps's comes last: a listed run can be
	// joined. They are written beside handshake's network helper and
	// init's root, and are done before Launch goes on.
	sent := make(chan []byte, 1)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		if frame, ok := <-sent; ok {
			rs.writeExecInfo(frame) // for hutch exec
		}
		rs.writeInfo(plan, pid) // for hutch ps
	}()
	err = handshake(ctx, plan, pid, cg, cfg, cfgW, netsup, rs, tm, listeners, sent)
	<-recorded
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		<-exited
		return nil, err
	}
	netsup.forward(statusParent)

	sup := &supervisor{pid: pid, cmd: cmd, stdio: stdio, cfg: cfg, tm: tm, warn: opts.Warn, net: netsup,
		cfgW: cfgW, hold: opts.Hold, created: opts.Created, started: opts.Started, logs: logs}
	res, err := sup.run(ctx, statusParent, exited)
	return collectResult(res, err, stdio, lay, netsup, logs)
}

// collectResult adds what the run's helpers know to how the command ended:
// the changes kept, the network's denials and lookups, the services'
// states. With hutch's own error it keeps what is known, for --result.
func collectResult(res *Result, err error, stdio Stdio, lay *runLayers, netsup *netSupervisor, logs *serviceLogs) (*Result, error) {
	err = logs.report(stdio.Stderr, err)
	var hd *sandbox.HelperDiedError
	if lay != nil && errors.As(err, &hd) {
		lay.stopped = hd.Helper + " died"
	}
	changes := lay.finish(stdio.Stderr, res != nil || hd != nil) // the changes' summary line
	if res == nil && hd != nil {
		// What is known of a run a helper's death ended, for --result.
		res = &Result{}
	}
	if res != nil {
		res.Denials = netsup.denials()
		res.OfflineLookups = netsup.lookups()
		res.Changes = changes
		res.Learned = netsup.learned()
		res.Services = logs.statuses()
	} else if logs != nil {
		// hutch's own error (a service that never became ready): the
		// services' statuses still tell what happened, for --result.
		res = &Result{ExitCode: 125, Services: logs.statuses()}
	}
	return res, err
}

// limitRun puts the run in a cgroup of its own when the plan sets cgroup
// limits; nil when it sets none, or when none can be made and the plan
// accepts that (with a warning, once per boot).
func limitRun(plan *sandbox.Plan, rs *runState, opts LaunchOptions) (*cgroupRun, error) {
	if !plan.Cgroup.Any() {
		return nil, nil
	}
	cg, err := newCgroupRun("hutch-"+filepath.Base(rs.dir), plan.Cgroup)
	if err == nil {
		rs.setCgroup(cg.dir)
		return cg, nil
	}
	// Without a cgroup, pids are still bounded (RLIMIT_NPROC in the
	// sandbox's user namespace, limits.go); memory and cpu are not.
	unenforced := plan.Cgroup.Memory > 0 || plan.Cgroup.CPU > 0
	if unenforced && plan.LimitsRequired {
		return nil, err
	}
	if unenforced && !plan.LimitsQuiet && opts.Warn != nil && firstWarning(plan.StateRoot, "cgroup") {
		opts.Warn(err.Error() + "; memory and cpu limits are NOT enforced (hutch doctor says how to get a delegated cgroup; limits.required = true refuses to run instead, limits.quiet = true drops this warning, printed once per boot)")
	}
	return nil, nil
}

// setTerminal decides which of the caller's fds 0-2 init replaces with
// the pty's slave, and the pty's first size.
func setTerminal(cfg *wire.Config, tty string, stdio Stdio) {
	switch tty {
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
}

// initChannels opens init's fd 3 (the config pipe) and fd 4 (the status
// socket), followed by the fds the caller preserves: extra is what init
// gets from fd 3 on.
func initChannels(preserve int) (cfgR, cfgW, statusParent *os.File, extra []*os.File, err error) {
	if cfgR, cfgW, err = os.Pipe(); err != nil {
		return nil, nil, nil, nil, err
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		cfgR.Close()
		cfgW.Close()
		return nil, nil, nil, nil, err
	}
	statusParent = os.NewFile(uintptr(pair[0]), "status")
	statusChild := os.NewFile(uintptr(pair[1]), "status-child")
	extra = []*os.File{cfgR, statusChild}
	for i := 0; i < preserve; i++ {
		fd := 3 + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			cfgR.Close()
			cfgW.Close()
			statusParent.Close()
			statusChild.Close()
			return nil, nil, nil, nil, fmt.Errorf("--preserve-fds %d: fd %d is not open", preserve, fd)
		}
		extra = append(extra, os.NewFile(uintptr(fd), fmt.Sprintf("fd%d", fd)))
	}
	return cfgR, cfgW, statusParent, extra, nil
}

// initCommand is hutch-init's process: exe (the sealed memfd of
// internal/initexe), or without one /proc/self/exe, under its fixed
// argv[0], in the plan's new namespaces, with every capability until it
// gives them up, and the id maps Go writes itself when one id is mapped.
func initCommand(plan *sandbox.Plan, stdio Stdio, extra []*os.File, exe *os.File) *exec.Cmd {
	path := "/proc/self/exe"
	if exe != nil {
		// The child execs the memfd by its number there: Go moves
		// ExtraFiles to 3, 4, … just before the exec, so the last one's
		// number is known and nothing can have taken it (the memfd's own
		// number in this process could be reused by that shuffle). init
		// marks it close-on-exec with the rest: no child of init gets it.
		extra = append(extra[:len(extra):len(extra)], exe)
		path = fmt.Sprintf("/proc/self/fd/%d", 2+len(extra))
	}
	cmd := &exec.Cmd{
		Path: path,
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
	return cmd
}

// handshake brings init from started to running: into its cgroup before it
// forks anything, its id maps (newuidmap, newgidmap), the plan with the
// host's listening sockets, and the network helper when the plan has one.
// The config frame, once sent, goes to sent too (closed in any case). On
// an error the caller kills init.
func handshake(ctx context.Context, plan *sandbox.Plan, pid int, cg *cgroupRun, cfg *wire.Config, cfgW *os.File,
	netsup *netSupervisor, rs *runState, tm *timing.Timing, listeners <-chan []string, sent chan<- []byte) error {
	defer close(sent)
	if cg != nil {
		// init waits for its config before it forks anything, so the
		// command and all its descendants start inside the cgroup.
		if err := cg.add(pid); err != nil {
			return fmt.Errorf("moving the sandbox into its cgroup: %w", err)
		}
	}
	if plan.MapHelpers {
		if err := writeMaps(ctx, plan, pid); err != nil {
			return err
		}
	}
	tm.Mark("id maps written")
	cfg.Listeners = <-listeners
	var frame bytes.Buffer
	if err := wire.WriteFrame(io.MultiWriter(cfgW, &frame), cfg); err != nil {
		return fmt.Errorf("sending the plan to hutch-init: %w", err)
	}
	sent <- frame.Bytes()
	if netsup.needsHelper() {
		// init builds the root meanwhile; it waits for this before the
		// command starts.
		if err := netsup.startHelper(pid, rs.dir); err != nil {
			return err
		}
		tm.Mark("network helper ready")
		wire.WriteFrame(cfgW, wire.NetFrame{Ready: true})
	}
	return nil
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
