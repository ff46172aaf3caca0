// Package lockedexec starts child processes whose PDEATHSIG means "when
// this process dies".
//
// PDEATHSIG fires when the thread that forked the child exits, not the
// process (golang/go#27505), and the Go runtime retires idle threads. So
// the child is started, and waited for, from a goroutine locked to its OS
// thread: the thread lives exactly as long as the child.
package lockedexec

import (
	"os/exec"
	"runtime"
)

// Start starts cmd that way and returns a channel that receives the result
// of cmd.Wait.
func Start(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}
