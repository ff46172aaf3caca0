package userns

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"

	"github.com/hutch-sandbox/hutch/internal/lockedexec"
)

// Helpers are the setuid programs that write a child's maps.
type Helpers struct {
	NewUIDMap, NewGIDMap string
}

// Start starts cmd in a new user namespace whose maps the helpers write
// from uidMap and gidMap, and which dies with this process (PDEATHSIG,
// from a thread that lives as long as the child). The maps are written
// once the child runs: it must wait for a word from the parent (a request
// on its stdin, say) before it relies on its ids. Start returns a channel
// that receives cmd.Wait's result; on an error the child is gone.
func Start(ctx context.Context, cmd *exec.Cmd, h Helpers, uidMap, gidMap []Mapping) (<-chan error, error) {
	if h.NewUIDMap == "" || h.NewGIDMap == "" {
		return nil, errors.New("newuidmap and newgidmap are needed to map subordinate ids; install the uidmap package")
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	exited, err := lockedexec.Start(cmd)
	if err != nil {
		return nil, err
	}
	errs := make(chan error, 2)
	go func() { errs <- WriteWithHelper(ctx, h.NewUIDMap, cmd.Process.Pid, uidMap) }()
	go func() { errs <- WriteWithHelper(ctx, h.NewGIDMap, cmd.Process.Pid, gidMap) }()
	if err := errors.Join(<-errs, <-errs); err != nil {
		cmd.Process.Kill()
		<-exited
		return nil, fmt.Errorf("writing the id maps: %w", err)
	}
	return exited, nil
}
