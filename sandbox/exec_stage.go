package sandbox

import (
	"fmt"
	"os"
	"os/signal"
	"strings"

	"golang.org/x/sys/unix"
)

// ExecStageName is argv[1] of the process hutch exec starts inside a
// running sandbox: nsenter has joined the sandbox's namespaces and root,
// and executed hutch through /proc/self/fd (the sandbox's own files never
// run here). It starts the command exactly as hutch-init starts a run's
// (startCommand: the plan's ids, capabilities, rlimits, no_new_privs,
// seccomp filter, a new session or a pty of the sandbox's own devpts),
// waits for it and exits with its status.
const ExecStageName = "hutch-exec"

// IsExecStage reports whether args are the exec stage's: hutch run
// through /proc/self/fd, by nsenter, with the stage's name.
func IsExecStage(args []string) bool {
	return len(args) == 2 && args[1] == ExecStageName && strings.HasPrefix(args[0], "/proc/self/fd/")
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
		sendStatus(status, statusMsg{Error: toInitError(err)}, -1)
		return 125
	}
	var cfg initConfig
	cfgFile := os.NewFile(execConfigFD, "config")
	if err := readFrame(cfgFile, &cfg); err != nil || cfg.Plan == nil {
		return fail(fmt.Errorf("exec: reading the command's plan: %v", err))
	}
	cfgFile.Close()
	// Nothing of the host's reaches the command: not hutch's binary, which
	// nsenter ran through an inherited fd, nor the namespace fds.
	markCloexecFrom(3)

	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1)
	if !parentAlive() {
		return 125 // hutch exec died before PDEATHSIG was armed
	}
	pid, err := startCommand(cfg.Plan, &cfg, status)
	if err != nil {
		return fail(err)
	}
	sendStatus(status, statusMsg{Started: pid}, -1)
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
