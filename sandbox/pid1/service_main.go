package pid1

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/sandbox/model"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// IsService reports whether argv0 names a service's PID 1.
func IsService(argv0 string) bool { return filepath.Base(argv0) == wire.ServiceName }

// ServiceMain is hutch-service: PID 1 of one service's pid namespace. It
// builds the service's root in its own mount namespace, starts the
// service as init starts the command (the plan's ids, capabilities,
// rlimits, no_new_privs and seccomp filter, a new session), says "ready"
// on fd 4 once its ready check passes, forwards signals to it and exits
// with its status. Its output is the service's log (fds 1 and 2).
func ServiceMain() int {
	ready, cfgFile, sigs, ok := enterPID1(wire.ServiceName)
	if !ok {
		return 125
	}
	fail := func(err error) int {
		fmt.Fprintf(ready, "error: %s\n", oneLine(err.Error()))
		fmt.Fprintf(os.Stderr, "hutch: %v\n", err)
		return 125
	}
	var sc serviceConfig
	err := wire.ReadFrame(cfgFile, &sc)
	cfgFile.Close()
	if err != nil || sc.Init == nil || sc.Init.Plan == nil || sc.Index >= len(sc.Init.Plan.Services) {
		return fail(fmt.Errorf("reading the service's config: %v", err))
	}
	if err := nonDumpable(wire.ServiceName); err != nil {
		return fail(err)
	}
	svc := sc.Init.Plan.Services[sc.Index]
	plan := servicePlan(sc.Init.Plan, &svc)
	cfg := *sc.Init
	cfg.Plan, cfg.UsePTY, cfg.StdioTTY = plan, false, [3]bool{}
	if err := buildServiceRoot(plan, cfg.RootDir, cfg.Listeners); err != nil {
		return fail(err)
	}
	pid, err := startCommand(plan, &cfg, nil)
	if err != nil {
		return fail(err)
	}
	// startCommand left every thread here with the service's own
	// capabilities (none for user "self"), which the ready command needs
	// too; once the check is done, this process keeps none.
	probes := &probeExits{waiting: map[int]chan unix.WaitStatus{}, early: map[int]unix.WaitStatus{}}
	go func() {
		err := waitServiceReady(&svc, &cfg, probes)
		if err == nil {
			err = dropAllCaps()
		}
		if err != nil {
			fmt.Fprintf(ready, "error: %s\n", oneLine(err.Error()))
			unix.Kill(-1, unix.SIGKILL) // everything but this process: the service and its probe
			return
		}
		fmt.Fprintln(ready, "ready")
		ready.Close()
	}()
	ex := reapWatching(pid, sigs, probes.reaped)
	return ex.Code
}

// servicePlan is the command's plan with the service's command line,
// environment, working directory and root: everything else (ids,
// capabilities, rlimits, the seccomp filter) is the command's.
func servicePlan(p *model.Plan, svc *model.ServicePlan) *model.Plan {
	sp := *p
	sp.Args, sp.Env, sp.Cwd, sp.Mounts = svc.Args, svc.Env, svc.Cwd, svc.Mounts
	sp.PreserveFDs, sp.TTY, sp.Services, sp.Image = 0, "never", nil, nil
	return &sp
}

// buildServiceRoot lays out the service's mounts on a tmpfs at root, in
// this process's own mount namespace, and pivots into it: nothing of the
// command's root, nor the host's, stays reachable. With an image (its
// first mount, an overlay at /), the root is the image's overlay, whose
// upper layer lies on that tmpfs, bounded as scratch space is.
func buildServiceRoot(plan *model.Plan, root string, listeners []string) error {
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making / a slave mount: %w", err)
	}
	opts := "mode=0755"
	if plan.ScratchSize > 0 {
		opts += fmt.Sprintf(",size=%d", plan.ScratchSize)
	}
	if err := unix.Mount("tmpfs", root, "tmpfs", mutFlags("root", unix.MS_NOSUID|unix.MS_NODEV), opts); err != nil {
		return fmt.Errorf("mounting the service's root tmpfs: %w", err)
	}
	b := &rootBuilder{root: root, scratchSize: plan.ScratchSize, listeners: listeners, allowSockets: plan.Sockets}
	mounts := plan.Mounts
	if len(mounts) > 0 && mounts[0].Kind == model.MountOverlay && mounts[0].Dst == "/" {
		merged, err := serviceImageRoot(root, mounts[0].Lower)
		if err != nil {
			return err
		}
		b.root, b.image, mounts = merged, true, mounts[1:]
	}
	for _, m := range mounts {
		if err := b.apply(m); err != nil {
			return err
		}
	}
	// An image's root takes the service's writes in its own layer, as
	// docker's container layer; the host's system directories never.
	b.release()
	return pivot(b.root, !b.image)
}

// waitServiceReady polls the ready check: there is no event to wait for
// when a port starts listening or a probe would pass, so it tries again
// after a short pause, growing to 100ms. ready_timeout, in init, bounds it.
func waitServiceReady(svc *model.ServicePlan, cfg *wire.Config, probes *probeExits) error {
	pause := 5 * time.Millisecond
	for {
		switch {
		case svc.ReadyPort != 0:
			c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(svc.ReadyPort)), time.Second)
			if err == nil {
				c.Close()
				return nil
			}
		case len(svc.ReadyCommand) > 0:
			ok, err := probes.run(cfg, svc.ReadyCommand)
			if err != nil {
				return fmt.Errorf("the ready command: %w", err)
			}
			if ok {
				return nil
			}
		default:
			return nil
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// probeExits hands the ready command's exit status from the reap loop,
// which reaps every child, to the probe waiting for it.
type probeExits struct {
	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus
	early   map[int]unix.WaitStatus // reaped before its waiter was registered
}

func (p *probeExits) reaped(pid int, ws unix.WaitStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ch := p.waiting[pid]; ch != nil {
		ch <- ws
		delete(p.waiting, pid)
		return
	}
	p.early[pid] = ws
}

// run starts the ready command as the service is started (the same
// sandbox and restrictions) and reports whether it exited 0.
func (p *probeExits) run(cfg *wire.Config, argv []string) (bool, error) {
	pp := *cfg.Plan
	pp.Args = argv
	pc := *cfg
	pc.Plan = &pp
	p.mu.Lock() // held across the fork: the reaper stores an early exit
	pid, err := startCommand(&pp, &pc, nil)
	if err != nil {
		p.mu.Unlock()
		return false, err
	}
	ch := make(chan unix.WaitStatus, 1)
	if ws, ok := p.early[pid]; ok {
		delete(p.early, pid)
		ch <- ws
	} else {
		p.waiting[pid] = ch
	}
	p.mu.Unlock()
	ws := <-ch
	return ws.Exited() && ws.ExitStatus() == 0, nil
}

// oneLine keeps a message to the one line the readiness pipe carries.
func oneLine(s string) string {
	out := []rune{}
	for _, r := range s {
		if r == '\n' || r == '\r' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}
