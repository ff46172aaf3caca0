package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one process as /proc shows it.
type proc struct {
	pid, ppid int
	name      string // basename of argv[0]: hutch-init shows as "exe" in comm
	rss, anon float64
}

// memory starts each sandbox around `sleep`, waits until the sleep runs
// and the sandbox has settled, and sums VmRSS over the sandbox's own
// processes (everything in the tree but the sleep), from /proc/PID/status.
// RSS counts shared pages (the binary's text) in every process that maps
// them; RssAnon is what each process holds alone.
func (b *bench) memory(ctx context.Context) {
	b.log.printf("memory: RSS of each sandbox's processes while it idles")
	type memCase struct {
		id, name string
		argv     []string
		why      string
		extra    func() []proc // processes outside the tree (podman's conmon)
	}
	sleep := []string{"sleep", "60"}
	var cs []memCase
	hutch := func(id, name string, flags []string, why string) {
		c := memCase{id: id, name: name, why: why}
		if why == "" {
			c.argv = b.hutchRun(flags, sleep...)
		}
		cs = append(cs, c)
	}
	tool := func(id, name, t string, args ...string) {
		argv, why := b.toolArgv(t, append(args, sleep...)...)
		cs = append(cs, memCase{id: id, name: name, argv: argv, why: why})
	}
	hutch("hutch", "**hutch**, no network (supervisor + hutch-init)", nil, "")
	hutch("hutch-single", "hutch --idmap single", []string{"--idmap", "single"}, "")
	hutch("hutch-slirp4netns", "hutch --network slirp4netns (+ slirp4netns)", []string{"--network", "slirp4netns"}, b.hutchWorks(ctx, "slirp4netns"))
	hutch("hutch-proxy", "hutch --network proxy (proxy in the supervisor)", []string{"--network", "proxy"}, b.hutchWorks(ctx, "proxy"))
	hutch("hutch-overlay-kernel", "hutch, project overlay, kernel driver", overlayKernel, b.hutchFeature(ctx, 5, overlayKernel...))
	hutch("hutch-overlay-fuse", "hutch, project overlay, fuse-overlayfs (+ its daemon)", overlayFuse, b.hutchFeature(ctx, 5, overlayFuse...))
	tool("bwrap", "bwrap --unshare-all", "bwrap", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc")
	tool("rootlesskit-host", "rootlesskit --net=host", "rootlesskit", "--net=host")
	if b.tools["slirp4netns"].OK {
		tool("rootlesskit-slirp4netns", "rootlesskit --net=slirp4netns", "rootlesskit", "--net=slirp4netns", "--disable-host-loopback")
	}
	if p := b.podman; p != nil && p.why == "" {
		cs = append(cs, memCase{id: "podman", name: "podman run (podman + conmon)", argv: p.run("/usr/bin/sleep", "60"), extra: p.conmons})
	}

	for _, c := range cs {
		if ctx.Err() != nil {
			return
		}
		r := b.add("memory", c.name, c.id, "", "MiB")
		if c.why != "" {
			r.unavailable(c.why)
			continue
		}
		r.How = shellQuote(c.argv)
		ps, err := b.idleTree(ctx, c.argv, c.extra)
		if err != nil {
			r.fail(err)
			continue
		}
		var total float64
		byName := map[string][2]float64{}
		var names []string
		for _, p := range ps {
			total += p.rss
			v, seen := byName[p.name]
			if !seen {
				names = append(names, p.name)
			}
			byName[p.name] = [2]float64{v[0] + p.rss, v[1] + p.anon}
		}
		r.setSamples([]float64{total})
		for _, n := range names {
			v := byName[n]
			r.Parts = append(r.Parts, Part{Name: n, Stats: Stats{N: 1, Median: v[0], Min: v[0], Max: v[0], P90: v[0], Mean: v[0]},
				Note: fmt.Sprintf("%.1f / %.1f", v[0], v[1])})
		}
	}
}

// idleTree starts argv, waits for its sleep, and returns the other
// processes of its tree, then stops it.
func (b *bench) idleTree(ctx context.Context, argv []string, extra func() []proc) ([]proc, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = b.o.work, b.env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = b.run.devnull, b.run.devnull, b.run.stderr
	b.run.stderr.Truncate(0)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		// hutch relays SIGTERM to the command and exits with it; the rest
		// of the process group (bwrap, rootlesskit) gets it directly.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	defer stop()

	deadline := time.Now().Add(15 * time.Second)
	for {
		tree := descendants(cmd.Process.Pid)
		for _, p := range tree {
			if p.name == "sleep" {
				// Settled: let the runtimes finish their start-up work.
				time.Sleep(time.Second)
				var out []proc
				for _, p := range descendants(cmd.Process.Pid) {
					if p.name != "sleep" {
						out = append(out, p)
					}
				}
				if extra != nil {
					out = append(out, extra()...)
				}
				return out, nil
			}
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("exited before its command ran (%v)%s", err, firstLines(readAll(b.run.stderr)))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("its command did not start within 15s")
		}
	}
}

// descendants lists root and every process below it.
func descendants(root int) []proc {
	all := allProcs()
	children := map[int][]int{}
	for _, p := range all {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	var out []proc
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if p, ok := all[pid]; ok {
			out = append(out, p)
		}
		queue = append(queue, children[pid]...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

func allProcs() map[int]proc {
	out := map[int]proc{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			out[pid] = p
		}
	}
	return out
}

// readProc reads one process's parent, name and memory. /proc/PID/status
// stays readable for processes that are not dumpable (hutch-init).
func readProc(pid int) (proc, bool) {
	p := proc{pid: pid}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, false
	}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "PPid":
			p.ppid, _ = strconv.Atoi(v)
		case "Name":
			p.name = v
		case "VmRSS":
			p.rss = kbToMiB(v)
		case "RssAnon":
			p.anon = kbToMiB(v)
		}
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && len(cmdline) > 0 {
		arg0, _, _ := strings.Cut(string(cmdline), "\x00")
		switch {
		case arg0 == "/proc/self/exe":
			// A re-exec (rootlesskit's child): name it after its binary.
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
				p.name = filepath.Base(exe) + " (child)"
			}
		case arg0 != "":
			p.name = filepath.Base(arg0)
		}
	}
	return p, true
}

func kbToMiB(v string) float64 {
	var kb float64
	fmt.Sscanf(v, "%f", &kb)
	return kb / 1024
}
