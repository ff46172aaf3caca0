package pid1

import (
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/hutch-sandbox/hutch/internal/fds"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
	"golang.org/x/sys/unix"
)

// IsExecStage reports whether args are the exec stage's: hutch run
// through /proc/self/fd, by nsenter, with the stage's name.
func IsExecStage(args []string) bool {
	return len(args) == 2 && args[1] == wire.ExecStageName && strings.HasPrefix(args[0], "/proc/self/fd/")
}

// The exec stage's fds, as Exec passes them.
const (
	execConfigFD = 3 // the initConfig frame
	execStatusFD = 4 // statusMsgs back: the pty master, started, an error
)

// ExecStageMain is the exec stage. It holds hutch's binary and other
// host fds until the command starts, so it makes itself non-dumpable
// first: a process of the sandbox, with the same uid, cannot then trace it
// or open its /proc entries.
func ExecStageMain() int {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "hutch: error: exec: making the exec stage non-dumpable: %v\n", err)
		return 125
	}
	// hutch exec's nsenter is our parent, outside the sandbox's pid
	// namespace: when it dies (hutch exec killed with -9), SIGUSR1 tells
	// us to kill the command's group, below.
	unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGUSR1), 0, 0, 0)
	status := os.NewFile(execStatusFD, "status")
	fail := func(err error) int {
		sendStatus(status, wire.Status{Error: toInitError(err)}, -1)
		return 125
	}
	var cfg wire.Config
	cfgFile := os.NewFile(execConfigFD, "config")
	if err := wire.ReadFrame(cfgFile, &cfg); err != nil || cfg.Plan == nil {
		return fail(fmt.Errorf("exec: reading the command's plan: %v", err))
	}
	cfgFile.Close()
	// Nothing of the host's reaches the command: not hutch's binary, which
	// nsenter ran through an inherited fd, nor the namespace fds.
	fds.CloexecFrom(3)

	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1)
	if !parentAlive() {
		return 125 // hutch exec died before PDEATHSIG was armed
	}
	pid, err := startCommand(cfg.Plan, &cfg, status)
	if err != nil {
		return fail(err)
	}
	sendStatus(status, wire.Status{Started: pid}, -1)
	fwd := make(chan os.Signal, 16)
	go func() {
		for sig := range sigs {
			if sig == unix.SIGUSR1 {
				// hutch exec is gone: so is what it started.
				unix.Kill(-pid, unix.SIGKILL)
				unix.Kill(pid, unix.SIGKILL)
				continue
			}
			fwd <- sig
		}
	}()
	ex := reap(pid, fwd)
	return ex.Code
}

// parentAlive says whether hutch exec's config pipe still has a writer
// end: our parent, outside the sandbox's pid namespace, is invisible to
// getppid (0), so its life shows only through what it holds.
func parentAlive() bool {
	fds := []unix.PollFd{{Fd: execStatusFD, Events: unix.POLLOUT}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) == 0
}
