package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ociScenarios time hutch oci run of a bundle (what Slurm's oci.conf
// runs for each job step) against hutch run of the same root directory
// without a bundle, and hutch run on the host's root: what reading
// config.json, the bundle's policy and the OCI state cost.
func (b *bench) ociScenarios(ctx context.Context) []scenario {
	const oci = "hutch oci run --bundle B (busybox rootfs dir, read-only)"
	const dir = "hutch run --root dir:B/rootfs (the same root, no bundle)"
	bundle, err := b.ociBundle()
	if err != nil {
		why := "preparing the bundle: " + err.Error()
		return []scenario{{id: "hutch-oci-run", name: oci, unavailable: why}, {id: "hutch-run-dir", name: dir, unavailable: why}}
	}
	state := filepath.Join(b.o.work, "oci-state")
	ociArgv := []string{b.hutch, "oci", "--root", state, "run", "--bundle", bundle, "bench"}
	dirArgv := b.hutchRun([]string{"--root", "dir:" + filepath.Join(bundle, "rootfs")}, "/bin/true")
	s := []scenario{{id: "hutch-oci-run", name: oci, argv: ociArgv}, {id: "hutch-run-dir", name: dir, argv: dirArgv}}
	for i := range s {
		if out, err := exec.CommandContext(ctx, s[i].argv[0], s[i].argv[1:]...).CombinedOutput(); err != nil {
			s[i].argv, s[i].unavailable = nil, fmt.Sprintf("does not run here: %v: %s", err, firstLine(string(out)))
		}
	}
	return s
}

// ociBundle writes a bundle whose root is the host's busybox and whose
// command is true.
func (b *bench) ociBundle() (string, error) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox: %w (install busybox-static)", err)
	}
	dir := filepath.Join(b.o.work, "oci-bundle")
	bin := filepath.Join(dir, "rootfs", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		return "", err
	}
	os.Remove(filepath.Join(bin, "true"))
	if err := os.Symlink("busybox", filepath.Join(bin, "true")); err != nil {
		return "", err
	}
	cfg, _ := json.Marshal(map[string]any{
		"ociVersion": "1.0.2",
		"process":    map[string]any{"args": []string{"/bin/true"}, "env": []string{"PATH=/bin"}, "cwd": "/", "user": map[string]int{"uid": 0, "gid": 0}},
		"root":       map[string]any{"path": "rootfs", "readonly": true},
		"linux":      map[string]any{"namespaces": []map[string]string{{"type": "pid"}, {"type": "network"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "user"}}},
	})
	return dir, os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644)
}
