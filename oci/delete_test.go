package oci

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestDeleteByAnotherDoesNotWaitForEver: a state file's owner may name any
// long-lived process of theirs as the supervisor, so that root's delete
// (a Slurm step's cleanup) waits for it for ever. A delete by another user
// than the owner waits superviseGrace at most, then kills that process;
// here the grace is none, and the "supervisor" would end by itself in a
// few seconds: ended by SIGKILL is blocked, ended on its own is what the
// unbounded wait does.
func TestDeleteByAnotherDoesNotWaitForEver(t *testing.T) {
	sleep := exec.Command("sleep", "3")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleep.Process.Kill()
	start, uid, err := startTime(sleep.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	p, err := openProc(sleep.Process.Pid, start, uid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	defer func(g time.Duration) { superviseGrace = g }(superviseGrace)
	superviseGrace = 0
	var warned string
	rt := &Runtime{Log: func(_, msg string) { warned = msg }}
	// As a caller who is not the owner, as root is for a user's container.
	rt.waitSupervisor(p, uid+1, "evil")
	err = sleep.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("ESCAPED: another user's delete waited for the owner's process to end on its own (%v)", err)
	}
	t.Logf("blocked: the process named as supervisor was killed after the grace (%s)", warned)
	// The control: the owner's own delete waits, as long as it takes, for
	// the same kind of process to end by itself.
	own := exec.Command("sleep", "1")
	if err := own.Start(); err != nil {
		t.Fatal(err)
	}
	defer own.Process.Kill()
	st, _, err := startTime(own.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	q, err := openProc(own.Process.Pid, st, uid)
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	rt.waitSupervisor(q, uint32(os.Getuid()), "own")
	if err := own.Wait(); err != nil {
		t.Errorf("the owner's delete did not wait for its supervisor to end by itself: %v", err)
	}
}
