package main

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// podmanImage is built locally: there is no registry to pull from.
const podmanImage = "localhost/hutch-bench:latest"

type podmanSetup struct {
	path string
	why  string // when podman cannot be measured here
}

func (p *podmanSetup) run(args ...string) []string {
	return append([]string{p.path, "run", "--rm", "--network=none", podmanImage}, args...)
}

// conmons are podman's container monitors: they detach from `podman run`,
// so they are not in its process tree.
func (p *podmanSetup) conmons() []proc {
	var out []proc
	for _, pr := range allProcs() {
		var st syscall.Stat_t
		if pr.name == "conmon" && syscall.Stat(fmt.Sprintf("/proc/%d", pr.pid), &st) == nil && int(st.Uid) == os.Getuid() {
			out = append(out, pr)
		}
	}
	return out
}

// setupPodman checks that podman works rootless here and builds the local
// image (true and sleep with their libraries) when it is missing.
func (b *bench) setupPodman(ctx context.Context) *podmanSetup {
	p := &podmanSetup{path: b.tools["podman"].Path}
	run := func(timeout time.Duration, args ...string) (string, error) {
		res, err := b.run.run(ctx, b.cmd(append([]string{p.path}, args...)...), timeout)
		return strings.TrimSpace(res.stdout), err
	}
	out, err := run(2*time.Minute, "info", "--format", "{{.Host.Security.Rootless}}")
	if err != nil {
		p.why = "podman cannot work rootless here: " + err.Error()
		return p
	}
	if out != "true" {
		p.why = "podman is not running rootless here (podman info says rootless=" + out + ")"
		return p
	}
	if _, err := run(time.Minute, "image", "exists", podmanImage); err != nil {
		b.log.printf("podman: building %s from a local rootfs", podmanImage)
		tarball := filepath.Join(b.o.work, "podman-rootfs.tar")
		if err := writeRootfs(tarball, "true", "sleep"); err != nil {
			p.why = "building the podman image: " + err.Error()
			return p
		}
		if _, err := run(5*time.Minute, "import", tarball, podmanImage); err != nil {
			p.why = "podman import of a local rootfs failed: " + err.Error()
			return p
		}
	}
	if _, err := run(2*time.Minute, "run", "--rm", "--network=none", podmanImage, "/usr/bin/true"); err != nil {
		p.why = "podman cannot run a container rootless here: " + err.Error()
	}
	return p
}

var lddRE = regexp.MustCompile(`(/\S+)\s+\(0x`)

// writeRootfs writes a minimal root file system: the named programs at
// /usr/bin and the shared libraries ldd lists for them, at their paths.
func writeRootfs(path string, progs ...string) error {
	files := map[string]string{} // path in the image -> host file
	for _, name := range progs {
		p, err := exec.LookPath(name)
		if err != nil {
			return err
		}
		files["/usr/bin/"+name] = p
		out, err := exec.Command("ldd", p).Output()
		if err != nil {
			continue // static
		}
		for _, m := range lddRE.FindAllStringSubmatch(string(out), -1) {
			files[m[1]] = m[1]
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	dirs := map[string]bool{}
	for _, dst := range sortedKeys(files) {
		data, err := os.ReadFile(files[dst])
		if err != nil {
			return err
		}
		var parents []string
		for d := filepath.Dir(dst); d != "/"; d = filepath.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755}); err != nil {
					return err
				}
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(dst, "/"), Mode: 0o755, Size: int64(len(data))}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
