package oci

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// What a state directory's owner can plant for root's delete: a symlink
// instead of the container's directory, of its state file or of the state
// root on the way; a FIFO as the state file (a delete that blocks); a
// state file naming a process that is not the container's. Each case
// must be refused without touching what it points at. (The tests run as
// the test user; scripts/oci-root-delete.sh runs the same plants with
// root's delete.)

func newStore(t *testing.T) (string, *store) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "oci")
	s, err := openStore(root, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return root, s
}

func writeRecord(t *testing.T, s *store, r *record) {
	t.Helper()
	c, err := s.create(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.write(r); err != nil {
		t.Fatal(err)
	}
}

func TestStoreRefusesPlantedLinks(t *testing.T) {
	root, s := newStore(t)
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.MkdirAll(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(victim, stateFile), []byte(`{"id":"x"}`), 0o600)
	os.WriteFile(filepath.Join(victim, "precious"), []byte("keep"), 0o600)

	// The container's directory is a link to the victim.
	if err := os.Symlink(victim, filepath.Join(root, "linked")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.open("linked"); err == nil {
		t.Errorf("ESCAPED: a symlinked state directory was opened (%v)", err)
	}
	rt := &Runtime{Root: root, Log: func(string, string) {}}
	if err := rt.Delete("linked", true); err == nil {
		t.Error("ESCAPED: delete --force of a symlinked state directory succeeded")
	}

	// The state file is a link to the victim's.
	c, err := s.create("filelink")
	if err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(victim, stateFile), filepath.Join(root, "filelink", stateFile))
	if _, err := c.read(); !errors.Is(err, unix.ELOOP) {
		t.Errorf("ESCAPED: a symlinked state file was read (%v)", err)
	}
	c.close()
	if err := rt.Delete("filelink", true); err != nil {
		t.Fatalf("delete --force of a container with a planted link: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(victim, stateFile)); err != nil {
		t.Errorf("ESCAPED: delete removed the link's target: %v", err)
	}

	// A link on the way to the state root itself.
	linkRoot := filepath.Join(t.TempDir(), "rootlink")
	os.Symlink(root, linkRoot)
	if _, err := openStore(linkRoot, false); err == nil {
		t.Errorf("ESCAPED: a state root reached through a symlink was opened (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(victim, "precious")); err != nil {
		t.Errorf("ESCAPED: the victim lost a file: %v", err)
	}
}

func TestStoreRefusesFIFOAndJunk(t *testing.T) {
	_, s := newStore(t)
	c, err := s.create("fifo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := unix.Mkfifoat(c.fd, stateFile, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.read(); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("a FIFO state file: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ESCAPED: reading a FIFO state file blocked")
	}
	unix.Unlinkat(c.fd, stateFile, 0)
	big := make([]byte, maxState+10)
	os.WriteFile(filepath.Join(c.dir(), stateFile), big, 0o600)
	if _, err := c.read(); err == nil {
		t.Error("a state file over the bound was read")
	}
	os.WriteFile(filepath.Join(c.dir(), stateFile), []byte(`{"id":"other"}`), 0o600)
	if _, err := c.read(); err == nil {
		t.Error("a state file naming another container was read")
	}
}

// TestSignalOnlyRecordedProcess: a record naming another process, or the
// right pid with another start time, is never signalled.
func TestSignalOnlyRecordedProcess(t *testing.T) {
	sleep := exec.Command("sleep", "1000")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	start, uid, err := startTime(sleep.Process.Pid)
	if err != nil || uid != uint32(os.Getuid()) {
		t.Fatalf("startTime: %v, uid %d", err, uid)
	}
	if _, err := openProc(sleep.Process.Pid, start+1, uid); !errors.Is(err, unix.ESRCH) {
		t.Errorf("ESCAPED: another start time was accepted (%v)", err)
	}
	if _, err := openProc(sleep.Process.Pid, start, uid+1); !errors.Is(err, errNotOurs) {
		t.Errorf("ESCAPED: a process of another uid was accepted (%v)", err)
	}
	// pid 1 with its real start time, as a record planted for root's
	// delete would name it: refused for its owner (root), not the caller.
	if os.Getuid() != 0 {
		st1, _, err := startTime(1)
		if err == nil {
			if _, err := openProc(1, st1, uint32(os.Getuid())); !errors.Is(err, errNotOurs) {
				t.Errorf("ESCAPED: pid 1 was accepted for uid %d (%v)", os.Getuid(), err)
			}
		}
	}
	p, err := openProc(sleep.Process.Pid, start, uid)
	if err != nil {
		t.Fatalf("the recorded process itself: %v", err)
	}
	defer p.close()
	if err := p.signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait()
}

// TestDeleteRecordOfAnotherProcess: a state file naming a process of
// another uid: delete --force refuses, and signals nothing.
func TestDeleteRecordOfAnotherProcess(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("needs a caller other than root, as the suite's test user is")
	}
	root, s := newStore(t)
	st1, _, err := startTime(1)
	if err != nil {
		t.Fatal(err)
	}
	writeRecord(t, s, &record{OCIVersion: OCIVersion, ID: "evil", Status: Running, Pid: 1, PidStart: st1, Super: 1, SuperStart: st1})
	rt := &Runtime{Root: root, Log: func(string, string) {}}
	st, err := rt.State("evil")
	if err != nil || st.Status != Stopped {
		t.Errorf("state of a record naming pid 1: %+v, %v", st, err)
	}
	// It is stopped (pid 1 is not ours): delete removes the record only.
	if err := rt.Delete("evil", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(root, "evil")); !os.IsNotExist(err) {
		t.Errorf("the state directory is still there: %v", err)
	}
}

func TestCheckID(t *testing.T) {
	for id, ok := range map[string]bool{"abc": true, "a.b_c-1+2": true, ".": false, "..": false, "a/b": false, "": false,
		strings.Repeat("a", 201): false, "x\n": false, fmt.Sprint(12345): true} {
		if err := CheckID(id); (err == nil) != ok {
			t.Errorf("CheckID(%q) = %v", id, err)
		}
	}
}

// TestValidIDMatchesRule: the loop accepts exactly what runc's rule with
// the length bound, as a regexp, accepts: every byte alone and inside a
// name, every length around the bound, and non-ASCII.
func TestValidIDMatchesRule(t *testing.T) {
	rule := regexp.MustCompile(`^[A-Za-z0-9_+\-.]{1,200}$`)
	ids := []string{"", "é", "aé", "a\n", "\na", "a b", "a\x00", strings.Repeat("Z", 200), strings.Repeat("9", 201), "a.b_c-1+2"}
	for c := 0; c < 256; c++ {
		ids = append(ids, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"z")
	}
	for n := 195; n <= 205; n++ {
		ids = append(ids, strings.Repeat("-", n))
	}
	accepted := 0
	for _, id := range ids {
		want := rule.MatchString(id)
		if got := validID(id); got != want {
			t.Errorf("validID(%q) = %v, the rule says %v", id, got, want)
		}
		if want {
			accepted++
		}
	}
	if accepted < 2*66 {
		t.Errorf("only %d ids accepted: the cases lost their positives", accepted)
	}
}
