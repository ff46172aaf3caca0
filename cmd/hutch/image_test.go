package main

import (
	"bufio"
	"bytes"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/hutch-sandbox/hutch/image"
	"github.com/hutch-sandbox/hutch/internal/testenv"
	"github.com/hutch-sandbox/hutch/internal/testimage"
)

// TestImagePullProgress: on a terminal, pull draws a progress bar of bytes
// and layers, then says what it stored (the scripts check that it is quiet
// otherwise).
func TestImagePullProgress(t *testing.T) {
	var layers [][]byte
	for _, spec := range []string{"busybox\n", "file /a 0644 0:0 " + strings.Repeat("a", 1<<20) + "\n", "file /b 0644 0:0 b\n"} {
		l, err := testimage.Layer(spec)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	ref := serveImage(t, "progress:1", layers...)
	cmd := hutchCmd(t, "image", "pull", ref)
	cmd.Env = append(cmd.Env, "XDG_DATA_HOME="+filepath.Join(t.TempDir(), "data"))
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var out bytes.Buffer
	io.Copy(&out, ptmx)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("hutch image pull: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{"\r\x1b[K" + ref + " [", "] ", " / ", "layers 3/3", "stored " + ref + " ("} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
	if !strings.Contains(got, "[========================]") {
		t.Errorf("the bar never fills:\n%q", got)
	}
}

// TestImagePullKill9: hutch killed with SIGKILL at any moment of a pull
// leaves no helper running, and the next pull completes the image.
func TestImagePullKill9(t *testing.T) {
	testenv.RequireUserNS(t)
	bb, _ := testimage.Layer("busybox\n")
	layers := [][]byte{bb}
	for i := 0; i < 3; i++ {
		// Incompressible, so that the pull takes a while.
		b := make([]byte, 3<<20)
		rand.New(rand.NewSource(int64(i))).Read(b)
		l, err := testimage.Layer(fmt.Sprintf("file /blob%d 0644 0:0 %x\n", i, b[:1<<20]))
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	ref := serveImage(t, "kill:1", layers...)
	data := filepath.Join(t.TempDir(), "data")
	for _, delay := range []time.Duration{0, 20 * time.Millisecond, 60 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond} {
		cmd := hutchCmd(t, "image", "pull", ref)
		cmd.Env = append(cmd.Env, "XDG_DATA_HOME="+data)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Kill()
		cmd.Wait()
		// The helper dies with hutch (PDEATHSIG): wait for each one's exit
		// (its pidfd turns readable); the bound is for a helper that never
		// dies, not a measure of how fast one does.
		waitHelpersExit(30 * time.Second)
		if n := helpersRunning(); n > 0 {
			t.Fatalf("after kill -9 at %v: %d hutch-unpack helpers still run", delay, n)
		}
	}
	cmd := hutchCmd(t, "image", "pull", ref)
	cmd.Env = append(cmd.Env, "XDG_DATA_HOME="+data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pull after the kills: %v\n%s", err, out)
	}
	cmd = hutchCmd(t, "run", "--image", ref, "--", "sh", "-c", "wc -c /blob0 /blob2")
	cmd.Env = append(cmd.Env, "XDG_DATA_HOME="+data)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2097152 /blob2") {
		t.Fatalf("run after the kills: %v\n%s", err, out)
	}
	// Nothing half-stored remains once prune has run.
	cmd = hutchCmd(t, "image", "prune")
	cmd.Env = append(cmd.Env, "XDG_DATA_HOME="+data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("prune: %v\n%s", err, out)
	}
	leftovers, _ := filepath.Glob(filepath.Join(data, "hutch/images/layers/*/.tmp-*"))
	partial, _ := filepath.Glob(filepath.Join(data, "hutch/images/blobs/sha256/*.partial"))
	if len(leftovers)+len(partial) > 0 {
		t.Errorf("left after prune: %v %v", leftovers, partial)
	}
}

// helpersRunning counts this user's hutch-unpack processes.
func helpersRunning() int { return len(helperPIDs()) }

func helperPIDs() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.HasPrefix(b, []byte(image.HelperName+"\x00")) {
			if pid, err := strconv.Atoi(e.Name()); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// waitHelpersExit waits, up to limit in all, for every hutch-unpack
// process to exit: a pidfd polls readable when its process ends.
func waitHelpersExit(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for _, pid := range helperPIDs() {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // already gone
		}
		ms := int(time.Until(deadline).Milliseconds())
		if ms > 0 {
			unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		}
		unix.Close(fd)
	}
}

// TestImageManyLayers: an image of more layers than one page of overlay
// mount options can name by absolute path, with one layer twice, runs
// under both drivers and shows every layer.
func TestImageManyLayers(t *testing.T) {
	testenv.RequireUserNS(t)
	bb, _ := testimage.Layer("busybox\n")
	layers := [][]byte{bb}
	for i := 0; i < 44; i++ {
		l, err := testimage.Layer(fmt.Sprintf("dir /layers\nfile /layers/%02d 0644 0:0 %d\nfile /layers/top 0644 0:0 %d\n", i, i, i))
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	// The first numbered layer again, on top.
	ref := serveImage(t, "many:1", append(layers, layers[1])...)
	data := filepath.Join(t.TempDir(), "data")
	for _, driver := range []string{"kernel", "fuse"} {
		cmd := hutchCmd(t, "run", "--overlay", driver, "--image", ref, "--", "sh", "-c", "ls /layers | wc -l; cat /layers/top /layers/00 /layers/43")
		cmd.Env = append(cmd.Env, "XDG_DATA_HOME="+data)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", driver, err, out)
		}
		// 45 files; top from the repeated layer 0, then 00 and 43 (no newlines).
		if got := string(out); got != "45\n0043" {
			t.Errorf("%s: %q, want %q", driver, got, "45\n0043")
		}
	}
}

// TestImageRunKill9: kill -9 of hutch running on an image, under either
// driver, leaves no process (the command, fuse-overlayfs) and no lock: the
// next run collects the dead run's upper layer, and prune is not blocked.
func TestImageRunKill9(t *testing.T) {
	testenv.RequireUserNS(t)
	bb, _ := testimage.Layer("busybox\n")
	ref := serveImage(t, "kill:1", bb)
	data := filepath.Join(t.TempDir(), "data")
	for _, driver := range []string{"kernel", "fuse"} {
		t.Run(driver, func(t *testing.T) {
			marker := fmt.Sprintf("hutch-image-kill9-%s-%d", driver, time.Now().UnixNano())
			cmd := hutchCmd(t, "run", "--overlay", driver, "--image", ref, "--", "sh", "-c", "echo ready; sleep 1000; : "+marker)
			cmd.Env = append(cmd.Env, "XDG_DATA_HOME="+data)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("sandbox did not start: %q", line)
			}
			fuseBefore := len(pgrep(t, filepath.Join(data, "hutch")))
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			// The kernel tears the pid namespace down asynchronously; this
			// bounds the wait, it does not time anything.
			deadline := time.Now().Add(10 * time.Second)
			for len(pgrep(t, marker))+len(pgrep(t, filepath.Join(data, "hutch"))) > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("outlived kill -9 of hutch: %v %v (fuse-overlayfs before: %d)", pgrep(t, marker), pgrep(t, filepath.Join(data, "hutch")), fuseBefore)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if driver == "fuse" && fuseBefore == 0 {
				t.Errorf("no fuse-overlayfs ran for the fuse driver")
			}
			stale, _ := filepath.Glob(filepath.Join(data, "hutch", "sessions", ".run-*"))
			if len(stale) != 1 {
				t.Fatalf("want the killed run's upper layer left behind, have %v", stale)
			}
			next := hutchCmd(t, "run", "--overlay", driver, "--image", ref, "--", "true")
			next.Env = append(next.Env, "XDG_DATA_HOME="+data)
			if out, err := next.CombinedOutput(); err != nil {
				t.Fatalf("next run: %v\n%s", err, out)
			}
			if stale, _ := filepath.Glob(filepath.Join(data, "hutch", "sessions", ".run-*")); len(stale) != 0 {
				t.Errorf("the dead run's upper layer was not collected: %v", stale)
			}
			prune := hutchCmd(t, "image", "prune")
			prune.Env = append(prune.Env, "XDG_DATA_HOME="+data)
			if out, err := prune.CombinedOutput(); err != nil || strings.Contains(string(out), "in use") {
				t.Errorf("prune after the kill: %v\n%s", err, out)
			}
		})
	}
}

// serveImage pushes an image of the given layers (uncompressed tars,
// bottom first) to a registry of the test's own and returns the image's
// reference.
func serveImage(t *testing.T, name string, layers ...[]byte) string {
	t.Helper()
	reg, err := testimage.StartRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	img, err := testimage.Build(testimage.Config{}, layers...)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Addr + "/" + name
	if err := testimage.Push(ref, img); err != nil {
		t.Fatal(err)
	}
	return ref
}
