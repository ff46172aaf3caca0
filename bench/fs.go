package main

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The file-system workload's tree: treeFiles files of at most maxFileSize
// (source files; Go's few large test blobs would make it a test of bytes,
// not of files): about 54 MB.
const (
	treeFiles   = 10000
	maxFileSize = 64 << 10
)

// fsScript is the workload: real tools, each phase stamped with date(1)
// from inside, so the phases exclude the sandbox's start-up.
const fsScript = `set -e
d=$1; t=$2
s0=$(date +%s%N)
mkdir "$d"
tar -xf "$t" -C "$d"
s1=$(date +%s%N)
n=$(find "$d" | wc -l)
s2=$(date +%s%N)
find "$d" -type f -exec cat {} + >/dev/null
s3=$(date +%s%N)
rm -rf "$d"
s4=$(date +%s%N)
echo "$n $s0 $s1 $s2 $s3 $s4"
`

var fsPhases = []string{"extract", "find", "read", "delete"}

// fsWork extracts a ~10k-file source tree into the project, finds, reads
// and deletes it: natively, in hutch, and under bwrap with a bind mount.
func (b *bench) fsWork(ctx context.Context) {
	tarball, n, err := b.sourceTarball()
	b.rep.Settings["fs_tree"] = fmt.Sprintf("%d files of at most %d KiB from GOROOT/src, uncompressed tar", n, maxFileSize>>10)
	// No warm-up run (a fuse-overlayfs run takes ~15 s here): reading the
	// tarball once puts it in the page cache, which is all a warm-up did.
	if f, err := os.Open(tarball); err == nil {
		io.Copy(io.Discard, f)
		f.Close()
	}
	b.log.printf("file system: %d files; %d counted runs each, interleaved", n, b.o.fsRuns)
	dir := filepath.Join(b.o.work, "fs-tree")
	os.RemoveAll(dir)
	sh := []string{"/bin/sh", "-c", fsScript, "sh", dir, tarball}

	var ts []*timed
	add := func(id, name string, argv []string, why string) {
		r := b.add("fs", name, id, "", "ms")
		if err != nil {
			r.fail(fmt.Errorf("preparing the tree: %w", err))
			return
		}
		if why != "" {
			r.unavailable(why)
			return
		}
		r.How = shellQuote(argv[:len(argv)-len(sh)]) + " sh -c SCRIPT"
		if len(argv) == len(sh) {
			r.How = "sh -c SCRIPT (extract with tar, find | wc -l, find -exec cat, rm -rf)"
		}
		ts = append(ts, b.fsTimed(r, argv))
	}
	add("native", "native", sh, "")
	add("hutch", "**hutch**, project bound rw", b.hutchRun(nil, sh...), "")
	add("hutch-overlay-kernel", "hutch, project overlay, kernel driver", b.hutchRun(overlayKernel, sh...), b.hutchFeature(ctx, 5, overlayKernel...))
	add("hutch-overlay-fuse", "hutch, project overlay, fuse-overlayfs", b.hutchRun(overlayFuse, sh...), b.hutchFeature(ctx, 5, overlayFuse...))
	if argv, why := b.toolArgv("bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
		"--bind", b.o.work, b.o.work, "--chdir", b.o.work); why == "" {
		add("bwrap-bind", "bwrap, project bind", append(argv, sh...), "")
	} else {
		add("bwrap-bind", "bwrap, project bind", nil, why)
	}
	b.series(ctx, ts, 0, b.o.fsRuns, 5*time.Minute)
	os.RemoveAll(dir)
}

// fsTimed times argv and collects the script's phase stamps into r.Parts.
func (b *bench) fsTimed(r *Row, argv []string) *timed {
	phases := make([][]float64, len(fsPhases))
	// Each run starts with nothing left to write back from the one before.
	t := &timed{row: r, cmd: b.cmd(argv...), setup: func() error { syscall.Sync(); return nil }}
	t.parse = func(res runResult) error {
		f := strings.Fields(res.stdout)
		if len(f) != 6 {
			return fmt.Errorf("unexpected output from the workload: %q", res.stdout)
		}
		if n, _ := strconv.Atoi(f[0]); n < treeFiles {
			return fmt.Errorf("found %d entries after extracting, want at least %d", n, treeFiles)
		}
		var ns [5]int64
		for i := range ns {
			ns[i], _ = strconv.ParseInt(f[i+1], 10, 64)
		}
		for i := range fsPhases {
			phases[i] = append(phases[i], float64(ns[i+1]-ns[i])/1e6)
		}
		r.Parts = r.Parts[:0]
		for i, name := range fsPhases {
			r.Parts = append(r.Parts, Part{Name: name, Stats: summarize(phases[i])})
		}
		return nil
	}
	return t
}

// sourceTarball writes (once) an uncompressed tar of the first treeFiles
// files of at most maxFileSize in Go's own source tree, in lexical order:
// real source files of mixed sizes, the same on every machine with the
// same Go.
func (b *bench) sourceTarball() (string, int, error) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "", 0, fmt.Errorf("go env GOROOT: %w", err)
	}
	src := filepath.Join(strings.TrimSpace(string(out)), "src")
	path := filepath.Join(b.o.work, "fs-tree.tar")
	stamp := path + ".from"
	want := fmt.Sprintf("%s %d %d\n", src, treeFiles, maxFileSize)
	if have, err := os.ReadFile(stamp); err == nil && string(have) == want {
		if _, err := os.Stat(path); err == nil {
			return path, treeFiles, nil
		}
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	n := 0
	errDone := fmt.Errorf("done")
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n >= treeFiles {
			return errDone
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !d.IsDir() && fi.Size() > maxFileSize {
			return nil
		}
		rel, _ := filepath.Rel(filepath.Dir(src), p)
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name, h.Uname, h.Gname, h.Uid, h.Gid = rel, "", "", 0, 0
		h.Mode &= 0o755
		if d.IsDir() {
			h.Name += "/"
			return tw.WriteHeader(h)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		if _, err := io.Copy(tw, in); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil && err != errDone {
		return "", 0, fmt.Errorf("archiving %s: %w", src, err)
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	if err := f.Close(); err != nil {
		return "", 0, err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return "", 0, err
	}
	return path, n, os.WriteFile(stamp, []byte(want), 0o644)
}
