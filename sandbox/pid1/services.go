package pid1

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/internal/timing"
	"github.com/hutch-sandbox/hutch/sandbox/model"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// serviceGroup is init's side of the plan's services: each one's
// hutch-service process (its PID 1), started in order, each ready before
// the next starts, and stopped when the command has ended.
type serviceGroup struct {
	cfg    *wire.Config
	status *os.File
	procs  []*serviceProc
}

type serviceProc struct {
	plan *model.ServicePlan
	pid  int
	done bool // reaped
}

// serviceConfig is what init sends a hutch-service on its fd 3.
type serviceConfig struct {
	Init  *wire.Config `json:"init"`
	Index int          `json:"index"`
}

// serviceNamespaces are a service's own: its mounts, its processes and
// its System V IPC. The user and network namespaces stay the pod's.
const serviceNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC

// serviceCloneFlags are serviceNamespaces, less the ipc namespace under the
// mutation "service-ipcns" (the old bug: the command sees the services'
// System V IPC).
func serviceCloneFlags() uintptr {
	if mutate.Off("service-ipcns") {
		return serviceNamespaces &^ unix.CLONE_NEWIPC
	}
	return serviceNamespaces
}

// startServices starts the plan's services in order, each once those
// before it are ready. A service that does not become ready is reported
// (state "failed") and fails the run; init's exit then kills the others
// with its pid namespace. nil when the plan has none.
func startServices(cfg *wire.Config, status *os.File, tm *timing.Timing) (*serviceGroup, error) {
	plan := cfg.Plan
	if len(plan.Services) == 0 {
		return nil, nil
	}
	devNull, err := os.Open("/dev/null")
	if err != nil {
		return nil, err
	}
	defer devNull.Close()
	g := &serviceGroup{cfg: cfg, status: status}
	for i := range plan.Services {
		sp := &plan.Services[i]
		// The supervisor opened the service's log: fds after the preserved ones.
		log := uintptr(wire.FirstFD + plan.PreserveFDs + i)
		p, ready, err := g.start(i, devNull, log)
		if err != nil {
			return nil, fmt.Errorf("starting service %q: %w", sp.Name, err)
		}
		g.procs = append(g.procs, p)
		if err := g.waitReady(p, ready); err != nil {
			return nil, err
		}
		tm.Mark("service " + sp.Name + " ready")
	}
	return g, nil
}

// start forks hutch-service for service i, with stdin /dev/null, its log
// on stdout and stderr, its config on fd 3 and the readiness pipe on fd 4.
func (g *serviceGroup) start(i int, devNull *os.File, log uintptr) (*serviceProc, *os.File, error) {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer cfgW.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		return nil, nil, err
	}
	// ForkExec, not exec.Cmd: the reap loop waits for every child. If
	// init dies, the kernel kills this process's pid namespace with
	// init's, so no parent-death signal is needed.
	pid, err := syscall.ForkExec("/proc/self/exe", []string{wire.ServiceName}, &syscall.ProcAttr{
		Env:   append([]string{"GOMAXPROCS=1"}, mutate.Env()...),
		Files: []uintptr{devNull.Fd(), log, log, cfgR.Fd(), readyW.Fd()},
		Sys:   &syscall.SysProcAttr{Cloneflags: serviceCloneFlags()},
	})
	cfgR.Close()
	readyW.Close()
	if err != nil {
		readyR.Close()
		return nil, nil, err
	}
	p := &serviceProc{plan: &g.cfg.Plan.Services[i], pid: pid}
	if err := wire.WriteFrame(cfgW, serviceConfig{Init: g.cfg, Index: i}); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		readyR.Close()
		return nil, nil, err
	}
	return p, readyR, nil
}

// waitReady waits for the service's word that it is ready, its exit, or
// its ready_timeout, whichever comes first: all three are events, the
// polling of the port or probe is hutch-service's.
func (g *serviceGroup) waitReady(p *serviceProc, ready *os.File) error {
	lines := make(chan string, 1)
	go func() {
		defer ready.Close()
		line, _ := bufio.NewReader(ready).ReadString('\n')
		lines <- strings.TrimSuffix(line, "\n")
	}()
	timer := time.NewTimer(p.plan.ReadyTimeout)
	defer timer.Stop()
	var reason string
	select {
	case line := <-lines:
		if line == "ready" {
			g.event(wire.ServiceEvent{Name: p.plan.Name, State: "ready"})
			return nil
		}
		reason, _ = strings.CutPrefix(line, "error: ")
	case <-timer.C:
		reason = fmt.Sprintf("it was not ready within %v (ready_timeout)", p.plan.ReadyTimeout)
	}
	unix.Kill(p.pid, unix.SIGKILL) // its PID 1: the whole pid namespace goes
	var ws unix.WaitStatus
	unix.Wait4(p.pid, &ws, 0, nil)
	p.done = true
	ev := wire.ServiceEvent{Name: p.plan.Name, State: "failed", Reason: reason}
	if reason == "" {
		ev.Code, ev.Signal = exitOf(ws)
		ev.Reason = fmt.Sprintf("it exited with status %d before it was ready", ev.Code)
	}
	g.event(ev)
	return hint.With(fmt.Errorf("service %q did not become ready: %s", p.plan.Name, ev.Reason),
		"the service's log says why; check its command and ready check in [services.%s] (docs/services.md)", p.plan.Name)
}

// reaped notes a service's own exit while the command runs; false when
// pid is not a service's.
func (g *serviceGroup) reaped(pid int, ws unix.WaitStatus) bool {
	if g == nil {
		return false
	}
	for _, p := range g.procs {
		if p.pid == pid && !p.done {
			p.done = true
			code, sig := exitOf(ws)
			g.event(wire.ServiceEvent{Name: p.plan.Name, State: "exited", Code: code, Signal: sig})
			return true
		}
	}
	return false
}

// stop ends the services once the command has: SIGTERM to each one's
// PID 1, which passes it on, and SIGKILL to what is left after grace.
// It returns once every one is reaped.
func (g *serviceGroup) stop(sigs chan os.Signal, grace time.Duration) {
	if g == nil {
		return
	}
	left := func() bool {
		for _, p := range g.procs {
			if !p.done {
				return true
			}
		}
		return false
	}
	sweep := func() {
		for {
			var ws unix.WaitStatus
			wpid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if wpid <= 0 || err != nil {
				return
			}
			for _, p := range g.procs {
				if p.pid == wpid {
					p.done = true // stopped by us: it stays "ready"
				}
			}
		}
	}
	for _, p := range g.procs {
		if !p.done {
			unix.Kill(p.pid, unix.SIGTERM)
		}
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	for sweep(); left(); sweep() {
		select {
		case sig := <-sigs:
			_ = sig // SIGCHLD, or a forwarded signal: the sweep tells
		case <-timer.C:
			for _, p := range g.procs {
				if !p.done {
					unix.Kill(p.pid, unix.SIGKILL)
				}
			}
		}
	}
}

func (g *serviceGroup) event(ev wire.ServiceEvent) {
	sendStatus(g.status, wire.Status{Service: &ev}, -1)
}

func exitOf(ws unix.WaitStatus) (code, sig int) {
	if ws.Signaled() {
		return 128 + int(ws.Signal()), int(ws.Signal())
	}
	return ws.ExitStatus(), 0
}
