package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/testenv"
	"github.com/hutch-sandbox/hutch/internal/testimage"
	"github.com/hutch-sandbox/hutch/userns"
)

// writeRootfs unpacks the test image's busybox layer into dir: an OCI
// bundle's root filesystem, owned by the caller.
func writeRootfs(dir string) error {
	layer, err := testimage.Layer("busybox\n")
	if err != nil {
		return err
	}
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, os.FileMode(h.Mode)&0o7777|0o700)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var data []byte
			if data, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, data, os.FileMode(h.Mode)&0o777)
			}
		}
		if err != nil {
			return err
		}
	}
}

// cmdMkrootfs is the script command "mkrootfs DIR": a busybox root
// filesystem for a bundle.
func cmdMkrootfs(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: mkrootfs DIR")
	}
	ts.Check(writeRootfs(ts.MkAbs(args[0])))
}

// ociBundle makes a bundle whose config.json runs args, with a directory
// "out" of the bundle bound at /out, read-write.
func ociBundle(t *testing.T, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := writeRootfs(filepath.Join(dir, "rootfs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"ociVersion": "1.0.2",
		"process":    map[string]any{"user": map[string]any{"uid": 0, "gid": 0}, "args": args, "env": []string{"PATH=/bin"}, "cwd": "/"},
		"root":       map[string]any{"path": "rootfs", "readonly": true},
		"mounts":     []any{map[string]any{"destination": "/out", "type": "bind", "source": "out", "options": []string{"rbind", "rw"}}},
		"linux":      map[string]any{"namespaces": []any{map[string]string{"type": "pid"}, map[string]string{"type": "network"}, map[string]string{"type": "mount"}}},
	}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ociState runs hutch oci state and decodes it; ok is false when the
// container does not exist.
func ociState(t *testing.T, root, id string) (st struct {
	Status string `json:"status"`
	Pid    int    `json:"pid"`
}, ok bool) {
	t.Helper()
	out, err := hutchCmd(t, "oci", "--root", root, "state", id).Output()
	if err != nil {
		return st, false
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("state: %v\n%s", err, out)
	}
	return st, true
}

// waitPidGone blocks until pid has ended, through a pidfd (an event, not a
// poll); a pid already gone returns at once.
func waitPidGone(pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
}

// TestOCILifecycle: create builds the container and its command waits
// (no process of the command exists); start releases it; state follows
// created, running, stopped with init's pid; kill signals it; delete
// removes it, and refuses while it runs.
func TestOCILifecycle(t *testing.T) {
	testenv.RequireUserNS(t)
	marker := fmt.Sprintf("hutch-oci-life-%d-%d", os.Getpid(), time.Now().UnixNano())
	bundle := ociBundle(t, "sh", "-c", "echo started > /out/fifo; exec sleep 1000 # "+marker)
	if err := unix.Mkfifo(filepath.Join(bundle, "out", "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "state")
	pidFile := filepath.Join(t.TempDir(), "pid")
	create := hutchCmd(t, "oci", "--root", root, "create", "--bundle", bundle, "--pid-file", pidFile, "life")
	ociCleanup(t, root, "life")
	create.Stdout, create.Stderr = os.Stderr, os.Stderr // files: the container inherits them
	if err := create.Run(); err != nil {
		t.Fatalf("create: %v", err)
	}
	st, ok := ociState(t, root, "life")
	if !ok || st.Status != "created" || st.Pid <= 0 {
		t.Fatalf("after create: %+v, %v", st, ok)
	}
	if data, _ := os.ReadFile(pidFile); strings.TrimSpace(string(data)) != fmt.Sprint(st.Pid) {
		t.Fatalf("pid file holds %q, state says %d", data, st.Pid)
	}
	if pids := pgrep(t, marker); len(pids) != 0 {
		t.Fatalf("ESCAPED: the command runs before start: %v", pids)
	}
	if out, err := hutchCmd(t, "oci", "--root", root, "delete", "life", "extra").CombinedOutput(); err == nil {
		t.Fatalf("delete with two ids succeeded: %s", out)
	}
	if out, err := hutchCmd(t, "oci", "--root", root, "start", "life").CombinedOutput(); err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(bundle, "out", "fifo")) // blocks until the command writes
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(f).ReadString('\n')
	f.Close()
	if line != "started\n" {
		t.Fatalf("the command wrote %q", line)
	}
	if st, _ := ociState(t, root, "life"); st.Status != "running" {
		t.Fatalf("after start: %+v", st)
	}
	out, err := hutchCmd(t, "oci", "--root", root, "delete", "life").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is running") {
		t.Fatalf("delete of a running container: %v\n%s", err, out)
	}
	if out, err := hutchCmd(t, "oci", "--root", root, "kill", "life", "9").CombinedOutput(); err != nil {
		t.Fatalf("kill: %v\n%s", err, out)
	}
	waitPidGone(st.Pid)
	if st, _ := ociState(t, root, "life"); st.Status != "stopped" {
		t.Fatalf("after kill: %+v", st)
	}
	if out, err := hutchCmd(t, "oci", "--root", root, "kill", "life").CombinedOutput(); err == nil {
		t.Fatalf("kill of a stopped container succeeded: %s", out)
	}
	if out, err := hutchCmd(t, "oci", "--root", root, "delete", "life").CombinedOutput(); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	if _, ok := ociState(t, root, "life"); ok {
		t.Fatal("the container outlived its delete")
	}
	if pids := pgrep(t, marker); len(pids) != 0 {
		t.Fatalf("processes outlived the container: %v", pids)
	}
}

// TestOCIDeleteCreated: delete of a created container (never started)
// ends its sandbox; so does kill.
func TestOCIDeleteCreated(t *testing.T) {
	testenv.RequireUserNS(t)
	bundle := ociBundle(t, "sh", "-c", "exit 0")
	root := filepath.Join(t.TempDir(), "state")
	for _, end := range [][]string{{"delete", "held"}, {"kill", "-a", "held", "TERM"}} {
		create := hutchCmd(t, "oci", "--root", root, "create", "--bundle", bundle, "held")
		ociCleanup(t, root, "held")
		create.Stdout, create.Stderr = os.Stderr, os.Stderr
		if err := create.Run(); err != nil {
			t.Fatalf("create: %v", err)
		}
		st, _ := ociState(t, root, "held")
		if out, err := hutchCmd(t, append([]string{"oci", "--root", root}, end...)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", end[0], err, out)
		}
		waitPidGone(st.Pid)
		if end[0] == "kill" {
			if st, _ := ociState(t, root, "held"); st.Status != "stopped" {
				t.Fatalf("after kill of a created container: %+v", st)
			}
			if out, err := hutchCmd(t, "oci", "--root", root, "delete", "held").CombinedOutput(); err != nil {
				t.Fatalf("delete: %v\n%s", err, out)
			}
		}
	}
}

// TestOCIRunKill9: kill -9 of hutch oci run takes the sandbox with it,
// and the container then reports stopped.
func TestOCIRunKill9(t *testing.T) {
	testenv.RequireUserNS(t)
	marker := fmt.Sprintf("hutch-oci-kill9-%d-%d", os.Getpid(), time.Now().UnixNano())
	bundle := ociBundle(t, "sh", "-c", "echo ready; exec sleep 1000 # "+marker)
	root := filepath.Join(t.TempDir(), "state")
	cmd := hutchCmd(t, "oci", "--root", root, "run", "--bundle", bundle, "k9")
	startReady(t, cmd)
	st, _ := ociState(t, root, "k9")
	if st.Status != "running" {
		t.Fatalf("while it runs: %+v", st)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitPidGone(st.Pid)
	if st, _ := ociState(t, root, "k9"); st.Status != "stopped" {
		t.Fatalf("after kill -9 of hutch oci run: %+v", st)
	}
	// The pid namespace is torn down asynchronously once init is gone;
	// this bounds the wait, it times nothing.
	deadline := time.Now().Add(10 * time.Second)
	for len(pgrep(t, marker)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("ESCAPED: processes outlived kill -9 of hutch oci run: %v", pgrep(t, marker))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := hutchCmd(t, "oci", "--root", root, "delete", "k9").CombinedOutput(); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
}

// TestOCIRunExitStatus: run exits with the command's status, and a
// signal that killed it is 128+N.
func TestOCIRunExitStatus(t *testing.T) {
	testenv.RequireUserNS(t)
	root := filepath.Join(t.TempDir(), "state")
	for _, c := range []struct {
		script string
		want   int
	}{{"exit 7", 7}, {"exit 0", 0}, {"kill -KILL $$", 137}} {
		bundle := ociBundle(t, "sh", "-c", c.script)
		err := hutchCmd(t, "oci", "--root", root, "run", "--bundle", bundle, "st").Run()
		got := 0
		if ee, ok := err.(*exec.ExitError); ok {
			got = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s: exit status %d, want %d", c.script, got, c.want)
		}
		if _, ok := ociState(t, root, "st"); ok {
			t.Errorf("%s: run left the container behind", c.script)
		}
	}
}

// TestOCIRunSignal: a signal to hutch oci run reaches the command (which
// traps it and exits with its own status).
func TestOCIRunSignal(t *testing.T) {
	testenv.RequireUserNS(t)
	bundle := ociBundle(t, "sh", "-c", `trap "exit 42" TERM; echo ready; sleep 1000 & wait`)
	cmd := hutchCmd(t, "oci", "--root", filepath.Join(t.TempDir(), "state"), "run", "--bundle", bundle, "sig")
	startReady(t, cmd)
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 42 {
		t.Fatalf("want the command's own status 42 after SIGTERM, got %v", err)
	}
}

// TestOCIIDMaps: a bundle's uid and gid maps are used when they fit the
// caller's own id and subordinate ranges: the command's ids are the
// bundle's, through them.
func TestOCIIDMaps(t *testing.T) {
	testenv.RequireUserNS(t)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	subs, err := userns.ReadSubIDs(userns.SubUIDFile, u.Username, os.Getuid())
	if err != nil || len(subs) == 0 || subs[0].Count < 2000 {
		t.Fatalf("the test user needs a subordinate uid range of 2000 (scripts/test-user.sh): %v %v", subs, err)
	}
	gsubs, err := userns.ReadSubIDs(userns.SubGIDFile, u.Username, os.Getuid())
	if err != nil || len(gsubs) == 0 || gsubs[0].Count < 2000 {
		t.Fatalf("the test user needs a subordinate gid range of 2000: %v %v", gsubs, err)
	}
	for _, c := range []struct {
		name   string
		uid    int
		uidMap []map[string]uint32
		gidMap []map[string]uint32
		want   string
	}{
		{"own id alone", 0,
			[]map[string]uint32{{"containerID": 0, "hostID": uint32(os.Getuid()), "size": 1}},
			[]map[string]uint32{{"containerID": 0, "hostID": uint32(os.Getgid()), "size": 1}},
			"uid=0 gid=0"},
		{"subordinate range", 1000,
			[]map[string]uint32{{"containerID": 0, "hostID": uint32(os.Getuid()), "size": 1}, {"containerID": 1, "hostID": subs[0].Start, "size": 1999}},
			[]map[string]uint32{{"containerID": 0, "hostID": uint32(os.Getgid()), "size": 1}, {"containerID": 1, "hostID": gsubs[0].Start, "size": 1999}},
			"uid=1000 gid=1000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bundle := ociBundle(t, "sh", "-c", "echo uid=$(id -u) gid=$(id -g); cat /proc/self/uid_map")
			cfgPath := filepath.Join(bundle, "config.json")
			data, _ := os.ReadFile(cfgPath)
			var cfg map[string]any
			json.Unmarshal(data, &cfg)
			cfg["process"].(map[string]any)["user"] = map[string]any{"uid": c.uid, "gid": c.uid}
			linux := cfg["linux"].(map[string]any)
			linux["uidMappings"], linux["gidMappings"] = c.uidMap, c.gidMap
			data, _ = json.Marshal(cfg)
			os.WriteFile(cfgPath, data, 0o644)
			out, err := hutchCmd(t, "oci", "--root", filepath.Join(t.TempDir(), "s"), "run", "--bundle", bundle, "maps").CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			var maps []string
			for _, l := range lines[1:] {
				maps = append(maps, strings.Join(strings.Fields(l), " "))
			}
			var want []string
			for _, m := range c.uidMap {
				want = append(want, fmt.Sprintf("%d %d %d", m["containerID"], m["hostID"], m["size"]))
			}
			if lines[0] != c.want || strings.Join(maps, ",") != strings.Join(want, ",") {
				t.Fatalf("want %q and the uid map %q, got:\n%s", c.want, want, out)
			}
		})
	}
}

// TestOCISupervisorKill9: kill -9 of a created container's supervisor
// (hutch-oci-shim) takes the sandbox with it; the container then reports
// stopped, and delete removes it.
func TestOCISupervisorKill9(t *testing.T) {
	testenv.RequireUserNS(t)
	marker := fmt.Sprintf("hutch-oci-shim9-%d-%d", os.Getpid(), time.Now().UnixNano())
	bundle := ociBundle(t, "sh", "-c", "echo started > /out/fifo; exec sleep 1000 # "+marker)
	if err := unix.Mkfifo(filepath.Join(bundle, "out", "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "state")
	create := hutchCmd(t, "oci", "--root", root, "create", "--bundle", bundle, "s9")
	ociCleanup(t, root, "s9")
	create.Stdout, create.Stderr = os.Stderr, os.Stderr
	if err := create.Run(); err != nil {
		t.Fatalf("create: %v", err)
	}
	if out, err := hutchCmd(t, "oci", "--root", root, "start", "s9").CombinedOutput(); err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(bundle, "out", "fifo"))
	if err != nil {
		t.Fatal(err)
	}
	bufio.NewReader(f).ReadString('\n')
	f.Close()
	var rec struct {
		Pid   int `json:"pid"`
		Super int `json:"supervisor"`
	}
	data, err := os.ReadFile(filepath.Join(root, "s9", "state.json"))
	if err != nil || json.Unmarshal(data, &rec) != nil || rec.Super <= 0 {
		t.Fatalf("state.json: %v %s", err, data)
	}
	syscall.Kill(rec.Super, syscall.SIGKILL)
	waitPidGone(rec.Pid)
	if st, _ := ociState(t, root, "s9"); st.Status != "stopped" {
		t.Fatalf("after kill -9 of the supervisor: %+v", st)
	}
	deadline := time.Now().Add(10 * time.Second) // bounds the teardown; times nothing
	for len(pgrep(t, marker)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("ESCAPED: processes outlived their supervisor: %v", pgrep(t, marker))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := hutchCmd(t, "oci", "--root", root, "delete", "s9").CombinedOutput(); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
}

// ociCleanup deletes container id when the test ends, whatever its end: a
// created container waits for start or delete for ever (as runc's does),
// so a test that fails between create and delete would leave it behind.
func ociCleanup(t *testing.T, root, id string) {
	t.Cleanup(func() { hutchCmd(t, "oci", "--root", root, "delete", "--force", id).Run() })
}
