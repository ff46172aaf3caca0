package pid1

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/internal/timing"
	"github.com/hutch-sandbox/hutch/sandbox/model"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// IsStage2 reports whether argv0 names stage2.
func IsStage2(argv0 string) bool { return filepath.Base(argv0) == wire.Stage2Name }

// stage2Config is what init sends stage2 on fd 3.
type stage2Config struct {
	Init     *wire.Config  `json:"init"`
	Deferred []model.Mount `json:"deferred"`
}

// stage2Exit is what stage2 leaves for init on its exit pipe.
type stage2Exit struct {
	Exit *wire.ExitInfo `json:"exit,omitempty"`
	// Reported: stage2 failed and already told the supervisor why.
	Reported bool `json:"reported,omitempty"`
}

// runStage2 is init's side: start stage2 in new pid and mount namespaces
// with the command's fds, forward signals to it, and report what it left.
// It returns init's exit status.
func (o *overlayInit) runStage2(cfg *wire.Config, status *os.File, sigs chan os.Signal, tm *timing.Timing, fail func(error) int) int {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	exitR, exitW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	// fd 3 config, 4 status, 5.. the preserved fds (as in init), then the
	// exit pipe.
	files := []uintptr{0, 1, 2, cfgR.Fd(), status.Fd()}
	for i := 0; i < cfg.Plan.PreserveFDs; i++ {
		files = append(files, uintptr(wire.FirstFD+i))
	}
	files = append(files, exitW.Fd())
	type started struct {
		pid int
		err error
	}
	done := make(chan started)
	reaped := make(chan struct{})
	defer close(reaped)
	go func() {
		// ForkExec, not exec.Cmd: reap below waits for every child, and an
		// exec.Cmd's Wait would race it for this one. If init dies, the
		// kernel kills stage2 with the rest of the pid namespace.
		runtime.LockOSThread()
		pid, err := syscall.ForkExec("/proc/self/exe", []string{wire.Stage2Name}, &syscall.ProcAttr{
			Env:   append([]string{"GOMAXPROCS=1"}, mutate.Env()...),
			Files: files,
			Sys:   &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS},
		})
		done <- started{pid, err}
		// stage2 arms PDEATHSIG, which fires when this thread exits, not
		// init (golang/go#27505): the thread lives until stage2 is reaped.
		// Retired earlier, a loaded machine could let stage2 arm it first
		// and die with status 137 ("ended before the command did").
		<-reaped
	}()
	st := <-done
	cfgR.Close()
	exitW.Close()
	if st.err != nil {
		return fail(fmt.Errorf("starting %s: %w", wire.Stage2Name, st.err))
	}
	tm.Mark("stage2 forked")
	err = wire.WriteFrame(cfgW, stage2Config{Init: cfg, Deferred: o.deferred})
	cfgW.Close()
	if err != nil {
		unix.Kill(st.pid, unix.SIGKILL)
		return fail(fmt.Errorf("sending %s its config: %w", wire.Stage2Name, err))
	}
	// init never pivoted: its /proc is the host's. A cgo build finds init's
	// threads under /proc/<getpid()>/task, so give init a /proc of its own
	// pid namespace first (stage2 has its own mount namespace already).
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		unix.Kill(-1, unix.SIGKILL)
		return fail(fmt.Errorf("mounting init's /proc: %w", err))
	}
	if err := dropAllCaps(); err != nil {
		unix.Kill(-1, unix.SIGKILL)
		return fail(err)
	}
	// Every other child of init here is a service's PID 1 or a
	// fuse-overlayfs daemon (stage2 reaps the command's orphans): when a
	// daemon dies, the command's files are gone, and the supervisor must
	// end the sandbox.
	reported := false
	ex := reapWatching(st.pid, sigs, func(pid int, ws unix.WaitStatus) {
		if o.services.reaped(pid, ws) {
			return // a service's own exit: reported, and the run goes on
		}
		if !reported {
			reported = true
			sendStatus(status, wire.Status{HelperDied: "fuse-overlayfs"}, -1)
		}
	})
	var left stage2Exit
	json.NewDecoder(exitR).Decode(&left)
	exitR.Close()
	o.services.stop(sigs, cfg.Plan.KillGrace)
	switch {
	case left.Exit != nil:
		sendStatus(status, wire.Status{Exit: left.Exit}, -1)
		return left.Exit.Code
	case left.Reported:
		return 125
	}
	return fail(fmt.Errorf("%s ended with status %d before the command did", wire.Stage2Name, ex.Code))
}

// Stage2Main is hutch-stage2: PID 1 of the command's pid namespace.
func Stage2Main() int {
	status, cfgFile, sigs, ok := enterPID1(wire.Stage2Name)
	if !ok {
		return 125
	}

	var sc stage2Config
	err := wire.ReadFrame(cfgFile, &sc)
	cfgFile.Close()
	if err != nil || sc.Init == nil || sc.Init.Plan == nil {
		return 125
	}
	cfg := sc.Init
	exitPipe := os.NewFile(uintptr(wire.FirstFD+cfg.Plan.PreserveFDs), "exit")
	fail := func(err error) int {
		sendStatus(status, wire.Status{Error: toInitError(err)}, -1)
		json.NewEncoder(exitPipe).Encode(stage2Exit{Reported: true})
		return 125
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fail(err)
	}
	if err := nonDumpable(wire.Stage2Name); err != nil {
		return fail(err)
	}
	tm := &timing.Timing{Origin: cfg.TimingOrigin, Who: "stage2", W: os.Stderr}
	tm.Mark("config read")
	// Nothing mounted here may propagate back into init's namespace.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fail(fmt.Errorf("making / a slave mount: %w", err))
	}
	b := &rootBuilder{root: cfg.RootDir, image: imageRoot(cfg.Plan)}
	if st := filepath.Join(cfg.RootDir, ".hutch"); dirExists(st) {
		b.staging = st // init's staging directory, for the /proc masks' empty file
	}
	for _, m := range sc.Deferred {
		if err := b.apply(m); err != nil {
			return fail(err)
		}
	}
	b.release()
	if err := pivot(cfg.RootDir, !imageRoot(cfg.Plan) || cfg.Plan.RootReadOnly); err != nil {
		return fail(err)
	}
	tm.Mark("root built")
	pid, err := startCommand(cfg.Plan, cfg, status)
	if err != nil {
		return fail(err)
	}
	forked := timing.Now()
	tm.Mark("command forked")
	sendStatus(status, wire.Status{Started: pid}, -1)
	if err := dropAllCaps(); err != nil {
		unix.Kill(-1, unix.SIGKILL)
		return fail(err)
	}
	ex := reap(pid, sigs)
	ex.Usage = commandUsage(forked)
	ex.Home = homeWrites(cfg.Plan)
	json.NewEncoder(exitPipe).Encode(stage2Exit{Exit: &ex})
	return ex.Code
}

func dirExists(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}
