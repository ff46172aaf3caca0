// Package testenv decides whether a test that needs the real kernel
// features of a sandbox can run here, and enforces the rule that, under
// HUTCH_TEST_STRICT=1 (set by CI), a test that would skip fails instead, so
// that CI cannot go green by skipping.
package testenv

import (
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
)

// Strict reports whether skips must fail.
func Strict() bool { return os.Getenv("HUTCH_TEST_STRICT") == "1" }

// Skip skips t with reason, or fails it under HUTCH_TEST_STRICT=1.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if Strict() {
		t.Fatalf("HUTCH_TEST_STRICT=1 forbids skipping: %s", reason)
	}
	t.Skip(reason)
}

var (
	usernsOnce sync.Once
	usernsErr  string
)

// UserNSReason returns why unprivileged user namespaces cannot be used by
// this process, or "" when they can. It tries the real thing once: a child
// in a new user and mount namespace.
func UserNSReason() string {
	usernsOnce.Do(func() {
		if os.Geteuid() == 0 {
			usernsErr = "running as root: sandbox tests must run as an unprivileged user (make test does this for you)"
			return
		}
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		}
		if err := cmd.Run(); err != nil {
			usernsErr = "unprivileged user namespaces are not available: " + err.Error()
		}
	})
	return usernsErr
}

// RequireUserNS skips (or, strictly, fails) t unless an unprivileged user
// namespace can be created.
func RequireUserNS(t testing.TB) {
	t.Helper()
	if r := UserNSReason(); r != "" {
		Skip(t, r)
	}
}

// RequireProgram skips (or, strictly, fails) t unless name is on PATH.
func RequireProgram(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Skip(t, name+" is not installed")
	}
	return p
}
