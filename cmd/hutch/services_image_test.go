package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hutch-sandbox/hutch/internal/testenv"
	"github.com/hutch-sandbox/hutch/internal/testimage"
)

// TestServiceImageHeldAndKill9: a service's image is held for the run, as
// the command's: hutch image prune frees none of its layers while the
// run lasts, even once the image is removed from the store. kill -9 of
// hutch then leaves no process of the service, and the layers go with
// the next prune (the control: prune could free them all along).
func TestServiceImageHeldAndKill9(t *testing.T) {
	testenv.RequireUserNS(t)
	marker := fmt.Sprintf("hutch-svc-image-%d-%d", os.Getpid(), time.Now().UnixNano())
	cmd := hutchCmd(t, "run", "--", "sh", "-c", "echo ready; exec sleep 1000")
	home := filepath.Dir(cmd.Dir)
	runtimeDir := t.TempDir()
	os.Chmod(runtimeDir, 0o700)
	env := append(cmd.Env, "XDG_RUNTIME_DIR="+runtimeDir, "XDG_DATA_HOME="+filepath.Join(home, "data"))
	cmd.Env = env
	layer, err := testimage.Layer("busybox\n")
	if err != nil {
		t.Fatal(err)
	}
	img, err := testimage.Build(testimage.Config{}, layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := testimage.WriteOCILayout(filepath.Join(cmd.Dir, "layout"), "v1", img); err != nil {
		t.Fatal(err)
	}
	toml := fmt.Sprintf(`[services.idle]
image = "oci-layout:./layout:v1"
command = ["sh", "-c", "touch /tmp/up; while :; do sleep 1000; done; : %s"]
ready = ["test", "-e", "/tmp/up"]
`, marker)
	if err := os.WriteFile(filepath.Join(cmd.Dir, "hutch.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	hutch := func(args ...string) string {
		t.Helper()
		c := hutchCmd(t, args...)
		c.Dir, c.Env = cmd.Dir, env
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("hutch %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	startReady(t, cmd)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	nses := pidNSes(t, marker)
	if len(nses) != 1 {
		t.Fatalf("want the service's own pid namespace, found %d", len(nses))
	}
	// The image was imported on the way (one layer); remove it, then
	// prune: the layer stays.
	layers, _ := filepath.Glob(filepath.Join(home, "data", "hutch", "*", "layers", "*", "*", "fs"))
	if len(layers) != 1 {
		t.Fatalf("want the image's one unpacked layer in the store, found %v", layers)
	}
	name := "oci-layout:" + filepath.Join(cmd.Dir, "layout") + ":v1"
	hutch("image", "rm", name)
	out := hutch("image", "prune")
	if _, err := os.Stat(layers[0]); err != nil {
		t.Fatalf("ESCAPED: the layer of a running service's image was freed (%v): %s", err, out)
	}
	if !strings.Contains(out, "in use by running sandboxes") {
		t.Fatalf("prune while the service runs: %s", out)
	}
	fmt.Println("blocked: prune of a running service's image layers: in use")

	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for left := inPidNSes(nses); len(left) > 0; left = inPidNSes(nses) {
		if time.Now().After(deadline) {
			t.Fatalf("service processes outlived kill -9 of hutch: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out := hutch("image", "prune"); !strings.Contains(out, "freed 1 layer,") {
		t.Fatalf("prune after the run: %s", out)
	}
}
