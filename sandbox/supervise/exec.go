package supervise

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/lockedexec"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// ExecOptions say what hutch exec runs in a running sandbox.
type ExecOptions struct {
	// ID names the sandbox: its id as hutch ps shows it (or a unique
	// prefix), or the pid of its hutch run.
	ID   string
	Args []string
	// Env are KEY=VALUE entries laid over the run's environment.
	Env []string
	// Workdir is where the command starts, inside; "" is the run's.
	Workdir string
	// TTY is "auto", "always" or "never", as for hutch run.
	TTY string
}

// execInfo is what hutch exec takes from a run: the resolved plan and
// compiled filter of its command, so that a command started later gets the
// same identity and hardening.
type execInfo struct {
	Plan    *sandbox.Plan
	Seccomp []byte
	Extra   []byte
	// Staged: the command runs under hutch-stage2, in a pid and mount
	// namespace below init's (overlay_stage2.go).
	Staged bool
}

// execInfoFile, in the run directory, is the config frame init got (wire's
// encoding, header and all): Launch had it encoded already, and hutch exec
// reads it back with wire.ReadFrame. (An older hutch wrote exec.json.)
const execInfoFile = "exec.frame"

func (s *runState) writeExecInfo(frame []byte) {
	tmp := filepath.Join(s.dir, ".exec.tmp")
	if os.WriteFile(tmp, frame, 0o600) == nil {
		os.Rename(tmp, filepath.Join(s.dir, execInfoFile))
	}
}

// readExecInfo decodes what writeExecInfo wrote.
func readExecInfo(f *os.File) (execInfo, error) {
	var cfg wire.Config
	if err := wire.ReadFrame(f, &cfg); err != nil {
		return execInfo{}, err
	}
	if cfg.Plan == nil {
		return execInfo{}, errors.New("no plan")
	}
	// Beside services the command runs in stage2 too, and init's own
	// mount namespace still shows the host's tree: never join that.
	staged := cfg.Layers != nil && cfg.Layers.Driver == sandbox.OverlayFuse || len(cfg.Plan.Services) > 0
	return execInfo{Plan: cfg.Plan, Seccomp: cfg.Seccomp, Extra: cfg.SeccompExtra, Staged: staged}, nil
}

// ErrNoSandbox is returned by Exec for an id that names no running sandbox.
var ErrNoSandbox = errors.New("no such running sandbox")

// findRun picks the running sandbox opts.ID names.
func findRun(stateRoot, id string) (*RunInfo, string, error) {
	runs, err := Running(stateRoot)
	if err != nil {
		return nil, "", err
	}
	var hits []RunInfo
	for _, r := range runs {
		if r.ID == id || strconv.Itoa(r.PID) == id {
			hits = []RunInfo{r}
			break
		}
		if id != "" && strings.HasPrefix(r.ID, id) {
			hits = append(hits, r)
		}
	}
	switch len(hits) {
	case 0:
		return nil, "", hint.With(fmt.Errorf("%q: %w", id, ErrNoSandbox), "hutch ps lists the sandboxes you are running")
	case 1:
		return &hits[0], filepath.Join(stateRoot, "run-"+hits[0].ID), nil
	}
	return nil, "", hint.With(fmt.Errorf("%q names %d sandboxes", id, len(hits)), "give more of the id, as hutch ps shows it")
}

// Exec runs a command in a running sandbox, in its namespaces and root,
// as its command's user, with its command's capabilities, rlimits,
// no_new_privs and seccomp filter, and returns its exit status.
//
// Only the sandbox's owner can: the run directory is 0700 under the
// owner's runtime directory, and joining the sandbox's user namespace
// takes privilege over it, which only its creator (or root) has.
func Exec(ctx context.Context, stateRoot string, opts ExecOptions, stdio Stdio) (int, error) {
	run, dir, err := findRun(stateRoot, opts.ID)
	if err != nil {
		return 0, err
	}
	f, err := os.Open(filepath.Join(dir, execInfoFile))
	if err != nil {
		return 0, fmt.Errorf("sandbox %s is still starting, or was started by an older hutch: %w", run.ID, err)
	}
	info, err := readExecInfo(f)
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("sandbox %s: reading %s: %v", run.ID, execInfoFile, err)
	}
	cfg := execConfig(info, opts, stdio)
	j, err := joinSandbox(run.InitPID, info.Staged)
	if err != nil {
		return 0, fmt.Errorf("joining sandbox %s: %w", run.ID, err)
	}
	defer j.close()
	return j.run(ctx, cfg, dir, stdio)
}

// execConfig is the run's command config, with the exec's command.
func execConfig(info execInfo, opts ExecOptions, stdio Stdio) *wire.Config {
	plan := *info.Plan
	plan.Args = opts.Args
	plan.PreserveFDs = 0
	if opts.Workdir != "" {
		plan.Cwd = opts.Workdir
	}
	env := map[string]int{}
	plan.Env = append([]string(nil), plan.Env...)
	for i, kv := range plan.Env {
		k, _, _ := strings.Cut(kv, "=")
		env[k] = i
	}
	for _, kv := range opts.Env {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := env[k]; ok {
			plan.Env[i] = kv
		} else {
			plan.Env = append(plan.Env, kv)
		}
	}
	cfg := &wire.Config{Plan: &plan, Seccomp: info.Seccomp, SeccompExtra: info.Extra}
	tty := opts.TTY
	if tty == "" {
		tty = "auto"
	}
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
	for i, f := range []*os.File{stdio.Stdin, stdio.Stdout, stdio.Stderr} {
		if cfg.StdioTTY[i] && isTerminal(int(f.Fd())) {
			cfg.Winsize = getWinsize(int(f.Fd()))
			break
		}
	}
	return cfg
}

// joined holds the sandbox's namespaces and root, opened once from the
// host: nsenter enters these very files, so a pid reused between a check
// and nsenter's own open cannot send the command elsewhere.
type joined struct {
	files []*os.File // user mnt pid net ipc uts cgroup, then root
}

var execNamespaces = []string{"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"}

func (j *joined) close() {
	for _, f := range j.files {
		f.Close()
	}
}

// joinSandbox opens the namespaces of the sandbox's command: init's, or,
// when the command runs under hutch-stage2, stage2's (init's child one pid
// namespace down; the command's own orphans go to stage2, not to init, so
// no process of the command's can stand in for it).
func joinSandbox(initPID int, staged bool) (*joined, error) {
	pidfd, err := unix.PidfdOpen(initPID, 0)
	if err != nil {
		return nil, fmt.Errorf("the sandbox's init (pid %d): %w", initPID, err)
	}
	defer unix.Close(pidfd)
	target := initPID
	if staged {
		if target, err = stage2Of(initPID); err != nil {
			return nil, err
		}
	}
	j := &joined{}
	for _, ns := range execNamespaces {
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", target, ns))
		if err != nil {
			j.close()
			return nil, err
		}
		j.files = append(j.files, f)
	}
	root, err := os.OpenFile(fmt.Sprintf("/proc/%d/root", target), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		j.close()
		return nil, err
	}
	j.files = append(j.files, root)
	// Still the same init: what was opened is the sandbox's.
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		j.close()
		return nil, fmt.Errorf("the sandbox ended")
	}
	return j, nil
}

// stage2Of is init's child in a deeper pid namespace: hutch-stage2.
func stage2Of(initPID int) (int, error) {
	// A child is listed under the thread that forked it: init forks
	// stage2 from a locked thread of its own, so read every thread's.
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", initPID))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("the sandbox's init (pid %d) is gone", initPID)
	}
	var data []byte
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		data = append(append(data, b...), ' ')
	}
	depth := func(pid string) int {
		st, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			return 0
		}
		for _, line := range strings.Split(string(st), "\n") {
			if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
				return len(strings.Fields(rest))
			}
		}
		return 0
	}
	self := depth(strconv.Itoa(initPID))
	for _, c := range strings.Fields(string(data)) {
		// Services' PID 1s (hutch-service) are init's children one pid
		// namespace down too; stage2 is known by its fixed argv[0], which
		// nothing in the sandbox can rewrite (it is not dumpable).
		argv0, _, _ := strings.Cut(readCmdline(c), "\x00")
		if depth(c) == self+1 && argv0 == wire.Stage2Name {
			return strconv.Atoi(c)
		}
	}
	return 0, errors.New("its hutch-stage2 is gone: the sandbox is ending")
}

// nsenterArgs enters j's files, inherited at fds 5 on, and runs hutch's own
// binary (fd of exe) through /proc/self/fd, never a path of the sandbox's.
func (j *joined) nsenterArgs(exeFD int) []string {
	args := []string{"nsenter"}
	for i, ns := range execNamespaces {
		flag := ns
		if ns == "mnt" {
			flag = "mount"
		}
		args = append(args, fmt.Sprintf("--%s=/proc/self/fd/%d", flag, 5+i))
	}
	args = append(args, fmt.Sprintf("--root=/proc/self/fd/%d", 5+len(execNamespaces)),
		// Your uid stays yours, and so do your supplementary groups: the
		// command holds no more than the run's command does.
		"--preserve-credentials",
		"--", fmt.Sprintf("/proc/self/fd/%d", exeFD), wire.ExecStageName)
	return args
}

func (j *joined) run(ctx context.Context, cfg *wire.Config, runDir string, stdio Stdio) (int, error) {
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return 0, hint.With(errors.New("nsenter is not installed"), "install util-linux (Debian: apt-get install util-linux)")
	}
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	defer exe.Close()
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer cfgW.Close()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		cfgR.Close()
		return 0, err
	}
	status := os.NewFile(uintptr(pair[0]), "status")
	statusChild := os.NewFile(uintptr(pair[1]), "status-child")
	defer status.Close()
	extra := append([]*os.File{cfgR, statusChild}, j.files...)
	exeFD := 3 + len(extra)
	extra = append(extra, exe)
	cmd := &exec.Cmd{
		Path: nsenter, Args: j.nsenterArgs(exeFD), Env: []string{"GOMAXPROCS=1"},
		Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr, ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true},
	}
	if cg, err := os.ReadFile(filepath.Join(runDir, "cgroup")); err == nil {
		// Into the run's cgroup, whose limits it shares.
		if fd, err := unix.Open(string(cg), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			defer unix.Close(fd)
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
		}
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGWINCH)
	defer signal.Stop(sigs)
	exited, err := lockedexec.Start(cmd)
	cfgR.Close()
	statusChild.Close()
	if err != nil {
		return 0, fmt.Errorf("starting nsenter: %w", err)
	}
	if err := wire.WriteFrame(cfgW, cfg); err != nil {
		cmd.Process.Kill()
		<-exited
		return 0, fmt.Errorf("sending the command's plan: %w", err)
	}
	e := &execRelay{cfg: cfg, stdio: stdio, nsenter: cmd.Process.Pid}
	return e.wait(ctx, status, exited, sigs)
}

// execRelay is hutch exec's side while the command runs: the pty relay,
// signals forwarded to the exec stage, and the command's end.
type execRelay struct {
	cfg     *wire.Config
	stdio   Stdio
	nsenter int
	master  *os.File
	restore func()
	out     chan struct{}
}

func (e *execRelay) wait(ctx context.Context, status *os.File, exited <-chan error, sigs chan os.Signal) (int, error) {
	msgs := make(chan recvd, 4)
	go readStatus(status, msgs)
	defer e.closeTTY()
	var startErr error
	handle := func(r recvd) {
		switch {
		case r.err != nil:
			msgs = nil // the stage is gone; its exit follows
		case r.msg.PTY && r.fd >= 0:
			if err := e.startTTY(os.NewFile(uintptr(r.fd), "pty")); err != nil {
				startErr = err
			}
		case r.msg.Error != nil:
			startErr = r.msg.Error.Err()
		}
	}
	for {
		select {
		case r := <-msgs:
			handle(r)
		case sig := <-sigs:
			if sig == unix.SIGWINCH {
				e.resize()
				continue
			}
			// To the exec stage, which passes it on to the command's group.
			if stage := childOf(e.nsenter); stage > 0 {
				unix.Kill(stage, sig.(syscall.Signal))
			}
		case <-ctx.Done():
			unix.Kill(e.nsenter, unix.SIGKILL)
		case err := <-exited:
			// What the stage said before it ended (why it could not start
			// the command) is still to be read: the socket ends after it.
			for msgs != nil {
				handle(<-msgs)
			}
			if e.out != nil {
				<-e.out // the command's last output
			}
			if startErr != nil {
				return 0, startErr
			}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return 128 + int(ws.Signal()), nil
				}
				return ee.ExitCode(), nil
			}
			if err != nil {
				return 0, err
			}
			return 0, nil
		}
	}
}

// childOf is the first child of pid: nsenter's only child is the stage.
func childOf(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

func (e *execRelay) startTTY(master *os.File) error {
	e.master = master
	if e.cfg.StdioTTY[0] {
		if isTerminal(int(e.stdio.Stdin.Fd())) {
			restore, err := makeRaw(int(e.stdio.Stdin.Fd()))
			if err != nil {
				return fmt.Errorf("setting the terminal to raw mode: %w", err)
			}
			e.restore = restore
		}
		go copyFile(master, e.stdio.Stdin)
	}
	out := e.stdio.Stdout
	if !e.cfg.StdioTTY[1] && e.cfg.StdioTTY[2] {
		out = e.stdio.Stderr
	}
	e.out = make(chan struct{})
	go func() {
		copyFile(out, master) // ends with EIO once every slave fd is closed
		close(e.out)
	}()
	return nil
}

func copyFile(dst, src *os.File) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (e *execRelay) resize() {
	if e.master == nil {
		return
	}
	for _, f := range []*os.File{e.stdio.Stdin, e.stdio.Stdout, e.stdio.Stderr} {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
			unix.IoctlSetWinsize(int(e.master.Fd()), unix.TIOCSWINSZ, ws)
			return
		}
	}
}

func (e *execRelay) closeTTY() {
	if e.restore != nil {
		e.restore()
	}
	if e.master != nil {
		e.master.Close()
	}
}

func readCmdline(pid string) string {
	b, _ := os.ReadFile("/proc/" + pid + "/cmdline")
	return string(b)
}
