package session

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLockNewRunRacesCollection: runs that keep nothing lock their fresh
// directories while other runs collect stale ones in the same sessions
// directory; no run may find its own lock taken ("session  is in use by
// pid 0") or its directory removed.
func TestLockNewRunRacesCollection(t *testing.T) {
	dir := t.TempDir()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					CollectStaleRuns(dir)
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	for i := 0; i < 100; i++ {
		d, err := os.MkdirTemp(dir, ".run-")
		if err != nil {
			t.Fatal(err)
		}
		f, err := LockNewRun(d)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if _, err := os.Stat(filepath.Join(d, "lock")); err != nil {
			t.Fatalf("run %d: its directory was collected while it ran: %v", i, err)
		}
		os.RemoveAll(d)
		f.Close()
	}
}

// TestSessionInUseNamesHolder: the refusal names the session and the pid
// holding it, even while the holder has not written its pid yet.
func TestSessionInUseNamesHolder(t *testing.T) {
	dir := t.TempDir()
	// The holder: locked, pid not yet written.
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	_, err = LockSession(dir, "busy")
	var inUse *SessionInUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("want SessionInUseError, got %v", err)
	}
	if inUse.Name != "busy" || inUse.PID != os.Getpid() {
		t.Errorf("got %q, want session busy in use by pid %d", err, os.Getpid())
	}
	if got := lockHolder(dir); got != os.Getpid() {
		t.Errorf("lockHolder = %d, want %d", got, os.Getpid())
	}
}
