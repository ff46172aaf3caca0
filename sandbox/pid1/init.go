package pid1

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/hutch-sandbox/hutch/slirp/redirect"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/bytesjson"
	"github.com/hutch-sandbox/hutch/internal/fds"
	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/internal/sysctl"
	"github.com/hutch-sandbox/hutch/internal/timing"
	"github.com/hutch-sandbox/hutch/sandbox/model"
	"github.com/hutch-sandbox/hutch/sandbox/seccomp"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// IsInit reports whether argv0 names the hidden child entry.
func IsInit(argv0 string) bool { return filepath.Base(argv0) == wire.InitName }

// InitMain is hutch-init: PID 1 of the sandbox. It reads its config on fd 3,
// builds the root, starts the command with no privileges, forwards signals
// to it, reaps every orphan, and reports the command's status on fd 4.
func InitMain() int {
	entered := timing.Now()
	status, cfgFile, sigs, ok := enterPID1(wire.InitName)
	if !ok {
		return 125
	}

	fail := func(err error) int {
		sendStatus(status, wire.Status{Error: toInitError(err)}, -1)
		return 125
	}

	var cfg wire.Config
	ready := timing.Now()
	if err := wire.ReadFrame(cfgFile, &cfg); err != nil {
		// The supervisor died before sending the plan.
		return 125
	}
	// Not before: until the plan arrives the supervisor writes our
	// /proc/PID/setgroups, which only a dumpable process lets it open.
	if err := nonDumpable(wire.InitName); err != nil {
		return fail(err)
	}
	// The supervisor keeps the config pipe open; EOF means it is gone, and
	// the sandbox must go with it. PDEATHSIG covers the same case, but it
	// does not survive every credential change, so watch both.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fail(err)
	}
	netReady, startFrame := readFrames(cfgFile)

	tm := &timing.Timing{Origin: cfg.TimingOrigin, Who: "init", W: os.Stderr}
	tm.MarkAt("main entered", entered)
	tm.MarkAt("waiting for config", ready)
	tm.Mark("config read")
	plan := cfg.Plan
	if err := setupNamespaces(plan); err != nil {
		return fail(err)
	}
	if err := setInotifyLimits(plan.Inotify); err != nil {
		return fail(err)
	}
	tm.Mark("hostname, lo")
	redirected, err := startNetwork(plan, status, cfg.NoRedirect, tm)
	if err != nil {
		return fail(err)
	}
	waitNet := (&netWait{need: cfg.NeedNet, ready: netReady, tm: tm}).wait
	// The redirect rules, before any process of the pod may connect out
	// (services, then the command).
	waitRedirect := func() error {
		if redirected == nil {
			return nil
		}
		err := <-redirected
		redirected = nil
		tm.Mark("redirect rules")
		return err
	}
	ovl := newOverlayInit(&cfg) // nil unless the plan overlays something or has services
	if len(plan.Services) > 0 {
		// Services first, on a network that works, while this mount
		// namespace still shows the host's tree their roots are built
		// from (services.go).
		if err := waitRedirect(); err != nil {
			return fail(err)
		}
		if err := waitNet(); err != nil {
			return fail(err)
		}
		svcs, err := startServices(&cfg, status, tm)
		if err != nil {
			return fail(err)
		}
		if ovl != nil {
			ovl.services = svcs
		}
	}
	if err := buildRoot(plan, cfg.RootDir, ovl, cfg.Listeners); err != nil {
		return fail(err)
	}
	tm.Mark("root built")
	if err := waitRedirect(); err != nil {
		return fail(err)
	}
	if err := waitNet(); err != nil {
		return fail(err)
	}
	if cfg.Hold {
		if ex, ok := hold(status, startFrame, sigs); !ok {
			sendStatus(status, wire.Status{Exit: &ex}, -1)
			return ex.Code
		}
	}
	if ovl.staged() {
		// fuse-overlayfs runs here: the command goes one pid ns down.
		return ovl.runStage2(&cfg, status, sigs, tm, fail)
	}
	pid, err := startCommand(plan, &cfg, status)
	if err != nil {
		return fail(err)
	}
	forked := timing.Now()
	tm.Mark("command forked")
	sendStatus(status, wire.Status{Started: pid}, -1)
	if err := dropAllCaps(); err != nil {
		unix.Kill(-1, unix.SIGKILL) // everything but init: the command must not run beside a privileged init
		return fail(err)
	}
	ex := reap(pid, sigs)
	ex.Usage = commandUsage(forked)
	ex.Home = homeWrites(plan)
	sendStatus(status, wire.Status{Exit: &ex}, -1)
	return ex.Code
}

// readFrames reads the supervisor's later frames (the network's readiness,
// OCI's start) for as long as the config pipe is open; EOF means the
// supervisor is gone, and the sandbox goes with it.
func readFrames(cfgFile *os.File) (netReady <-chan wire.NetFrame, start <-chan struct{}) {
	ready := make(chan wire.NetFrame, 1)
	started := make(chan struct{}, 1)
	go func() {
		for {
			var f wire.NetFrame
			if err := wire.ReadFrame(cfgFile, &f); err != nil {
				unix.Kill(-1, unix.SIGKILL)
				os.Exit(137)
			}
			if f.Start {
				select {
				case started <- struct{}{}:
				default:
				}
				continue
			}
			select {
			case ready <- f:
			default:
			}
		}
	}()
	return ready, started
}

// startNetwork hands the supervisor the sockets it serves from inside (the
// proxy's listener, the DNS sockets, published ports) and starts the
// redirect rules of mode proxy, whose result arrives on redirected (nil
// in other modes).
func startNetwork(plan *model.Plan, status *os.File, noRedirect bool, tm *timing.Timing) (chan error, error) {
	var redirected chan error
	if plan.Network == model.NetworkProxy {
		if err := sendProxyListener(status); err != nil {
			return nil, err
		}
		tm.Mark("proxy listener")
		// The rules take about a millisecond of netlink round trips:
		// they are installed while the root is built, and waited for
		// before the command starts.
		redirected = make(chan error, 1)
		go func() { redirected <- sendRedirect(status, noRedirect) }()
	}
	if plan.Network == model.NetworkNone || plan.Network == model.NetworkProxy {
		if err := sendDNSSockets(status); err != nil {
			return nil, err
		}
	}
	if len(plan.Ports) > 0 {
		go serveConnects(status)
	}
	return redirected, nil
}

// hold reports the built root and waits for the supervisor's Start. A
// signal that ends a command (all of those forwarded but SIGCHLD, SIGCONT
// and SIGWINCH) ends the held sandbox instead: OCI's kill of a created
// container. ok is false then, with the status to report.
func hold(status *os.File, start <-chan struct{}, sigs chan os.Signal) (wire.ExitInfo, bool) {
	sendStatus(status, wire.Status{Held: true}, -1)
	for {
		select {
		case <-start:
			return wire.ExitInfo{}, true
		case sig := <-sigs:
			switch s := sig.(syscall.Signal); s {
			case unix.SIGCHLD, unix.SIGCONT, unix.SIGWINCH:
			default:
				unix.Kill(-1, unix.SIGKILL) // helpers of ours (fuse-overlayfs)
				return wire.ExitInfo{Code: 128 + int(s), Signal: int(s)}, false
			}
		}
	}
}

// netWait waits, once, for the supervisor's word that the user-mode
// network helper has configured the namespace.
type netWait struct {
	need, done bool
	ready      <-chan wire.NetFrame
	tm         *timing.Timing
}

func (n *netWait) wait() error {
	if !n.need || n.done {
		return nil
	}
	n.done = true
	if f := <-n.ready; !f.Ready {
		return errors.New(f.Error)
	}
	n.tm.Mark("network ready")
	return nil
}

// enterPID1 is the start of both hidden PID 1 entries (hutch-init and
// hutch-stage2): their fds, close-on-exec for the rest, and
// the signals they forward caught before anything can send them (as PID 1
// they would otherwise be ignored).
func enterPID1(name string) (status, cfg *os.File, sigs chan os.Signal, ok bool) {
	status = os.NewFile(wire.StatusFD, "status")
	if name == wire.InitName {
		// init reads the supervisor's later frames for its whole life:
		// through Go's poller that waiting holds no thread, and every
		// thread init has is one more that each all-threads capability
		// change (caps.go) must stop and wait for. The read end is init's
		// alone: the supervisor closed its copy after the clone.
		unix.SetNonblock(wire.ConfigFD, true)
	}
	cfg = os.NewFile(wire.ConfigFD, "config")
	if status == nil || cfg == nil {
		fmt.Fprintf(os.Stderr, "%s: this is hutch's sandbox entry; run hutch instead\n", name)
		return nil, nil, nil, false
	}
	// Never let the command inherit anything of ours it was not given.
	if !mutate.Off("cloexec") {
		fds.CloexecFrom(wire.ConfigFD)
	}
	sigs = make(chan os.Signal, 32)
	signal.Notify(sigs, forwarded...)
	signal.Notify(sigs, unix.SIGCHLD)
	return status, cfg, sigs, true
}

// nonDumpable is set before anything of the sandbox runs: the command runs
// with our uid, and non-dumpable we cannot be ptraced or have our /proc
// files opened by it (this process holds capabilities in the sandbox's
// namespaces and the mounts' keys). As in runc, its failure is fatal.
func nonDumpable(name string) error {
	if mutate.Off("dumpable") {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("making %s non-dumpable: %w", name, err)
	}
	return nil
}

// toInitError turns a setup failure into the message the supervisor
// prints: its hint, and the command's kind for exit statuses 126 and 127.
func toInitError(err error) *wire.InitError {
	ie := &wire.InitError{Msg: err.Error()}
	var he *hint.Error
	if errors.As(err, &he) {
		ie.Hint = he.Tip
	}
	var ce *model.CommandError
	if errors.As(err, &ce) {
		ie.Msg, ie.Command, ie.Name = ce.Msg, ce.Kind, ce.Name
	}
	return ie
}

// setupNamespaces configures the namespaces that need no root filesystem.
func setupNamespaces(plan *model.Plan) error {
	if hasNS(plan, "uts") {
		if err := unix.Sethostname([]byte(plan.Hostname)); err != nil {
			return fmt.Errorf("setting the hostname: %w", err)
		}
		if err := unix.Setdomainname([]byte("(none)")); err != nil {
			return fmt.Errorf("setting the domain name: %w", err)
		}
	}
	if hasNS(plan, "net") {
		if err := redirect.LoopbackUp(); err != nil {
			return fmt.Errorf("bringing up lo: %w", err)
		}
	}
	// Your supplementary groups stay attached (unmapped ones show as
	// nogroup): a file that denies one of them must stay denied inside.
	// Only an image user's groups replace them (startCommand).
	return nil
}

func hasNS(plan *model.Plan, ns string) bool {
	for _, n := range plan.Namespaces {
		if n == ns {
			return true
		}
	}
	return false
}

// startCommand starts the command as a new session, with the caller's
// preserved fds at 3.., the pty (if any) on the terminal fds, and the
// privileges of a thread restricted to plan.Caps.
func startCommand(plan *model.Plan, cfg *wire.Config, status *os.File) (int, error) {
	keep, err := capMask(plan.Caps)
	if err != nil {
		return 0, err
	}
	if mutate.Off("caps") {
		keep = 1<<(sysctl.LastCap()+1) - 1 // every capability init holds
	}
	env := plan.Env
	cwd := plan.Cwd
	if fi, err := os.Stat(cwd); err != nil || !fi.IsDir() {
		cwd = "/"
	}
	argv0, err := lookPath(plan.Args[0], envValue(env, "PATH"), cwd)
	if err != nil {
		return 0, err
	}

	files := []uintptr{0, 1, 2}
	attr := &syscall.SysProcAttr{Setsid: !mutate.Off("setsid")}
	var slave *os.File
	if cfg.UsePTY {
		master, s, err := openPTY(cfg.Winsize)
		if err != nil {
			return 0, fmt.Errorf("allocating a pty: %w", err)
		}
		slave = s
		defer slave.Close()
		if err := sendStatus(status, wire.Status{PTY: true}, int(master.Fd())); err != nil {
			return 0, err
		}
		master.Close()
		for i := 0; i < 3; i++ {
			if cfg.StdioTTY[i] {
				files[i] = slave.Fd()
			}
		}
		attr.Setctty = true
		attr.Ctty = firstTTY(cfg.StdioTTY)
	}
	for i := 0; i < plan.PreserveFDs; i++ {
		files = append(files, uintptr(wire.FirstFD+i))
	}

	// The command is forked from this thread, locked and stripped to its
	// capabilities, so that it inherits exactly what it may have; the
	// thread never runs anything else and dies with this goroutine.
	type result struct {
		pid int
		err error
	}
	done := make(chan result)
	filter := wire.BytesFilter(cfg.Seccomp)
	bundleFilter := wire.BytesFilter(cfg.SeccompExtra)
	if len(cfg.Seccomp) > 0 && filter == nil || len(cfg.SeccompExtra) > 0 && bundleFilter == nil {
		return 0, errors.New("the seccomp filter arrived damaged")
	}
	if err := applyRlimits(plan.Rlimits); err != nil {
		return 0, err
	}
	// An image's user other than the one init runs as (the image's root):
	// the child switches to it, which clears its capabilities.
	var extra uint64
	if uint32(os.Getuid()) != plan.UID || uint32(os.Getgid()) != plan.GID || len(plan.Groups) > 0 {
		groups := plan.Groups
		if groups == nil {
			groups = []uint32{}
		}
		// setgroups only for an image user's groups: it would drop yours.
		attr.Credential = &syscall.Credential{Uid: plan.UID, Gid: plan.GID, Groups: groups, NoSetGroups: !plan.MapHelpers || len(plan.Groups) == 0}
		extra = 1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID
	}
	go func() {
		runtime.LockOSThread()
		// The mutation "nnp" is the old bug: no_new_privs only where a
		// seccomp filter needs it.
		nnp := !mutate.Off("nnp") || filter != nil || bundleFilter != nil
		if err := restrictThread(keep, extra, nnp); err != nil {
			done <- result{err: err}
			return
		}
		// init's other threads too, before the command exists: from its
		// first instruction it never sees an init holding more than it was
		// given (plus the two ids switch, when there is one). They drop
		// the rest once it runs.
		if err := limitAllThreads(keep, extra); err != nil {
			done <- result{err: err}
			return
		}
		// Last: the filter may forbid what the steps above needed.
		if err := seccomp.Install(filter); err != nil {
			done <- result{err: err}
			return
		}
		if err := seccomp.Install(bundleFilter); err != nil {
			done <- result{err: err}
			return
		}
		pid, err := syscall.ForkExec(argv0, plan.Args, &syscall.ProcAttr{
			Dir: cwd, Env: env, Files: files, Sys: attr,
		})
		done <- result{pid, err}
		// Returning without UnlockOSThread retires the thread.
	}()
	r := <-done
	if r.err != nil {
		return 0, execError(plan.Args[0], r.err)
	}
	return r.pid, nil
}

func firstTTY(t [3]bool) int {
	for i, ok := range t {
		if ok {
			return i
		}
	}
	return 0
}

func execError(name string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return &model.CommandError{Kind: model.CommandNotFound, Name: name, Msg: "no such file or directory in the sandbox"}
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.ENOEXEC), errors.Is(err, unix.EPERM):
		return &model.CommandError{Kind: model.CommandNotExecutable, Name: name, Msg: "cannot execute: " + err.Error()}
	}
	return fmt.Errorf("starting %q: %w", name, err)
}

// lookPath finds name on path inside the new root, as a shell would;
// relative names resolve against cwd, where the command will start.
func lookPath(name, path, cwd string) (string, error) {
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(cwd, p)
	}
	if strings.Contains(name, "/") {
		if err := checkExec(abs(name)); err != nil {
			return "", err
		}
		return abs(name), nil
	}
	if path == "" {
		path = model.DefaultPath
	}
	var denied error
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := abs(filepath.Join(dir, name))
		err := checkExec(p)
		if err == nil {
			return p, nil
		}
		var ce *model.CommandError
		if errors.As(err, &ce) && ce.Kind == model.CommandNotExecutable && denied == nil {
			denied = err
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", &model.CommandError{Kind: model.CommandNotFound, Name: name, Msg: "command not found in the sandbox's PATH"}
}

func checkExec(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return &model.CommandError{Kind: model.CommandNotFound, Name: p, Msg: "no such file or directory in the sandbox"}
	}
	if fi.IsDir() {
		return &model.CommandError{Kind: model.CommandNotExecutable, Name: p, Msg: "is a directory"}
	}
	if unix.Access(p, unix.X_OK) != nil {
		return &model.CommandError{Kind: model.CommandNotExecutable, Name: p, Msg: "permission denied"}
	}
	return nil
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// forwarded are the signals init passes to the command: those the
// supervisor relays (docs/internals.md). Asking for every signal instead
// costs a ring of sigactions, most of a millisecond of start-up.
var forwarded = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGCONT, unix.SIGALRM, unix.SIGWINCH}

// reap is PID 1's loop: forward signals to the command's process group,
// reap every child, and return when the command itself has ended.
func reap(pid int, sigs chan os.Signal) wire.ExitInfo { return reapWatching(pid, sigs, nil) }

// reapWatching is reap, calling other for every other child reaped: a
// helper of init's that died.
func reapWatching(pid int, sigs chan os.Signal, other func(pid int, ws unix.WaitStatus)) wire.ExitInfo {
	for sig := range sigs {
		s := sig.(syscall.Signal)
		switch s {
		case unix.SIGCHLD:
			for {
				var ws unix.WaitStatus
				wpid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
				if wpid <= 0 || err != nil {
					break
				}
				if wpid != pid && other != nil {
					other(wpid, ws)
				}
				if wpid == pid {
					if ws.Signaled() {
						return wire.ExitInfo{Code: 128 + int(ws.Signal()), Signal: int(ws.Signal())}
					}
					return wire.ExitInfo{Code: ws.ExitStatus()}
				}
			}
		default:
			// To the group, as a terminal would: a shell's children get it
			// too, so a script's trap runs without waiting for them.
			if unix.Kill(-pid, s) != nil {
				unix.Kill(pid, s)
			}
		}
	}
	return wire.ExitInfo{Code: 125}
}

// sendStatus sends one message, with fd attached when fd >= 0. It travels
// as the plan does (bytesjson.MarshalFrame): the supervisor is the same
// build, and neither side pays encoding/json's per-type start-up.
func sendStatus(f *os.File, m wire.Status, fd int) error {
	data, err := bytesjson.MarshalFrame(m)
	if err != nil {
		return err
	}
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	return unix.Sendmsg(int(f.Fd()), data, oob, nil, 0)
}
