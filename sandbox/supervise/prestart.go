package supervise

import (
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/fds"
	"github.com/hutch-sandbox/hutch/internal/initexe"
	"github.com/hutch-sandbox/hutch/internal/lockedexec"
	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/internal/timing"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/userns"
)

// initProc is hutch-init once cloned and exec'd: its process, the
// supervisor's end of its config pipe and of its status socket.
type initProc struct {
	cmd                *exec.Cmd
	exited             <-chan error
	cfgW, statusParent *os.File
	at                 int64 // when the clone and exec returned (timing.Now)
}

func (ip *initProc) close() {
	ip.cfgW.Close()
	ip.statusParent.Close()
}

// startInit clones hutch-init into plan's namespaces and execs it; it then
// waits for its config. With one id mapped, Go writes the maps between
// the clone and the exec.
func startInit(plan *sandbox.Plan, stdio Stdio, logFiles []*os.File) (*initProc, error) {
	exe, err := initFile() // nil: init is /proc/self/exe
	if err != nil {
		return nil, err
	}
	cfgR, cfgW, statusParent, extra, err := initChannels(plan.PreserveFDs)
	if err != nil {
		return nil, err
	}
	extra = append(extra, logFiles...) // the services' logs, after the preserved fds
	cmd := initCommand(plan, stdio, extra, exe)
	undoNproc := reserveNproc() // limits.go: the namespace keeps it
	exited, err := lockedexec.Start(cmd)
	undoNproc()
	cfgR.Close()
	extra[1].Close() // the child's end of the status socket
	if err != nil {
		cfgW.Close()
		statusParent.Close()
		return nil, startError(err, plan.Namespaces)
	}
	return &initProc{cmd: cmd, exited: exited, cfgW: cfgW, statusParent: statusParent, at: timing.Now()}, nil
}

// initFile is hutch-init to exec: its cached copy in the runtime
// directory every plan's StateRoot is, or its memfd (internal/initexe).
func initFile() (*os.File, error) {
	return initexe.File(sandbox.RuntimeDir(os.Getuid()))
}

// Prestarted is a hutch-init started before the plan is made: the CLI
// starts it before it reads the profiles, so that the clone into the
// namespaces, the exec and the start of init's Go runtime (several ms)
// overlap with the profiles, the host probe, the plan and the run
// directory. Launch takes it only if it is exactly the process the plan
// would have started (same namespaces, fds, stdio, environment and
// attributes, the id maps aside: those it writes as for any init); else
// it is killed and Launch starts init as usual. Until Launch takes it, it
// waits for its config and can do nothing else; Close kills it.
type Prestarted struct {
	done  chan struct{} // closed when the clone and exec have returned
	ip    *initProc     // nil if they failed
	plan  *sandbox.Plan // the plan it was started for: namespaces and fds
	stdio Stdio
	taken bool
}

// Prestart starts hutch-init in the namespaces a plan on this host has
// unless its network is the host's, with preserveFDs of the caller's fds.
// The id maps are written later, by Launch.
func Prestart(stdio Stdio, preserveFDs int) *Prestarted {
	// As Launch does, first: no fd the caller leaked reaches the sandbox.
	if !mutate.Off("cloexec") {
		fds.CloexecFrom(3)
	}
	ns := []string{"user", "mount", "pid", "ipc", "uts", "net"}
	if _, err := os.Stat("/proc/self/ns/cgroup"); err == nil {
		ns = append(ns, "cgroup") // as sandbox.ProbeHost finds it
	}
	// MapHelpers: no maps at the clone; Launch writes them.
	p := &Prestarted{done: make(chan struct{}), stdio: stdio,
		plan: &sandbox.Plan{Namespaces: ns, PreserveFDs: preserveFDs, MapHelpers: true}}
	// In the background: the clone (Go forks, not vforks, into a new user
	// namespace) and the exec take a few ms that the profiles and the plan
	// now use. A failure is Launch's to report: it starts init itself, and
	// says why it cannot.
	go func() {
		defer close(p.done)
		p.ip, _ = startInit(p.plan, stdio, nil)
	}()
	return p
}

// startedAt is when the clone and exec returned, 0 if they failed; it
// waits for them.
func (p *Prestarted) startedAt() int64 {
	if p == nil {
		return 0
	}
	<-p.done
	if p.ip == nil {
		return 0
	}
	return p.ip.at
}

// take returns the prestarted init if it is the one plan asks for, nil
// otherwise (then it is killed). It waits for the clone and exec.
func (p *Prestarted) take(plan *sandbox.Plan, stdio Stdio) *initProc {
	if p == nil {
		return nil
	}
	<-p.done
	if p.taken || p.ip == nil {
		p.taken = true
		return nil
	}
	p.taken = true
	if !p.fits(plan, stdio) {
		p.ip.kill()
		return nil
	}
	return p.ip
}

// fits reports whether init was started as Launch would start it for
// plan: initCommand's result for plan, but for the id maps written at the
// clone, must equal the prestarted one's, and so must the stdio.
func (p *Prestarted) fits(plan *sandbox.Plan, stdio Stdio) bool {
	if mutate.Off("prestart-fits") {
		return true
	}
	if stdio != p.stdio || !slices.Equal(plan.Namespaces, p.plan.Namespaces) || plan.PreserveFDs != p.plan.PreserveFDs {
		return false
	}
	if len(plan.Services) > 0 {
		return false // their log files are init's fds too, opened since
	}
	extra := make([]*os.File, len(p.ip.cmd.ExtraFiles))
	exe, _ := initFile() // made before the prestarted init started
	if exe != nil {
		extra = extra[1:] // initCommand appends it
	}
	want := initCommand(plan, stdio, extra, exe)
	want.SysProcAttr.UidMappings, want.SysProcAttr.GidMappings = nil, nil
	want.SysProcAttr.GidMappingsEnableSetgroups = false
	got := p.ip.cmd
	return want.Path == got.Path && slices.Equal(want.Args, got.Args) && slices.Equal(want.Env, got.Env) &&
		reflect.DeepEqual(want.SysProcAttr, got.SysProcAttr)
}

// Close kills the prestarted init unless Launch took it.
func (p *Prestarted) Close() {
	if p == nil {
		return
	}
	if p.taken {
		return
	}
	p.taken = true
	<-p.done
	if p.ip != nil {
		p.ip.kill()
	}
}

// kill ends an init that never got its config, and reaps it.
func (ip *initProc) kill() {
	ip.close() // EOF on its config pipe: it exits by itself
	unix.Kill(ip.cmd.Process.Pid, unix.SIGKILL)
	<-ip.exited
}

// writeSingleMaps writes the one-id maps of a plan without helpers for an
// init already running, as Go does between the clone and the exec for
// one started by Launch: uid_map, then setgroups denied, then gid_map.
func writeSingleMaps(pid int, plan *sandbox.Plan) error {
	write := func(file, data string) error {
		if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/"+file, []byte(data), 0); err != nil {
			return fmt.Errorf("writing the id maps: %w", err)
		}
		return nil
	}
	if err := write("uid_map", userns.Format(plan.UIDMap)); err != nil {
		return err
	}
	if err := write("setgroups", "deny"); err != nil {
		return err
	}
	return write("gid_map", userns.Format(plan.GIDMap))
}
