package main

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cmdSpec is one process to time: argv[0] is an absolute path (looked up
// once, not on every run), run in dir with env.
type cmdSpec struct {
	argv []string
	env  []string // the whole environment
	dir  string
}

func (c cmdSpec) String() string { return shellQuote(c.argv) }

// runner times whole processes from outside: fork/exec, wait, wall clock.
// stdin is /dev/null; stdout and stderr go to files, not pipes, so that no
// copying goroutine runs while a process is timed, and so that a failure
// can be explained.
type runner struct {
	devnull *os.File
	stdout  *os.File
	stderr  *os.File
}

func newRunner(dir string) (*runner, error) {
	r := &runner{}
	var err error
	if r.devnull, err = os.Open(os.DevNull); err != nil {
		return nil, err
	}
	if r.stdout, err = os.CreateTemp(dir, "stdout-*"); err != nil {
		return nil, err
	}
	if r.stderr, err = os.CreateTemp(dir, "stderr-*"); err != nil {
		return nil, err
	}
	os.Remove(r.stdout.Name())
	os.Remove(r.stderr.Name())
	return r, nil
}

func (r *runner) close() {
	r.devnull.Close()
	r.stdout.Close()
	r.stderr.Close()
}

// runResult is one timed run.
type runResult struct {
	wall time.Duration
	// cpu is user+system time of the process and every descendant it (or
	// one of them) waited for: the kernel's rusage of the reaped child,
	// which is how a sandbox's helpers and PID 1 are charged to it.
	cpu    time.Duration
	stdout string
	stderr string
}

// run starts c, waits for it and returns its wall time. The process gets a
// process group of its own, killed whole when timeout passes.
func (r *runner) run(ctx context.Context, c cmdSpec, timeout time.Duration) (runResult, error) {
	for _, f := range []*os.File{r.stdout, r.stderr} {
		f.Truncate(0)
		f.Seek(0, io.SeekStart)
	}
	cmd := &exec.Cmd{
		Path:        c.argv[0],
		Args:        c.argv,
		Env:         c.env,
		Dir:         c.dir,
		Stdin:       r.devnull,
		Stdout:      r.stdout,
		Stderr:      r.stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return runResult{}, err
	}
	done := make(chan struct{})
	timedOut := false
	go func() {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-done:
		case <-ctx.Done():
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		case <-t.C:
			timedOut = true
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	close(done)
	drainGroup(cmd.Process.Pid, time.Second)
	res := runResult{wall: wall, stdout: readAll(r.stdout), stderr: readAll(r.stderr)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	switch {
	case timedOut:
		return res, fmt.Errorf("timed out after %v", timeout)
	case ctx.Err() != nil:
		return res, ctx.Err()
	case err != nil:
		return res, fmt.Errorf("%v%s", err, firstLines(res.stderr))
	}
	return res, nil
}

// drainGroup waits, untimed, until no live process is left in process
// group pgid (a helper still exiting, such as rootlesskit's slirp4netns),
// so that one run's teardown does not slow the next one on a small
// machine. Zombies do not count.
func drainGroup(pgid int, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		if !groupAlive(pgid) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

func readAll(f *os.File) string {
	f.Seek(0, io.SeekStart)
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b)
}

// firstLines is the start of a failed process's stderr, for the report.
func firstLines(s string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		l = strings.TrimSpace(l)
		// rootlesskit's advice, printed on every run, hides the error.
		if l == "" || strings.Contains(l, "level=warning") {
			continue
		}
		keep = append(keep, l)
		if len(keep) == 2 {
			break
		}
	}
	if len(keep) == 0 {
		return ""
	}
	return ": " + strings.Join(keep, " / ")
}

// timed is a scenario under measurement in series.
type timed struct {
	row     *Row
	cmd     cmdSpec
	samples []float64 // ms
	cpu     []float64 // ms of CPU, user+system, one per sample
	failed  error     // set when the scenario is given up
	// fails counts failed counted runs; firstFail is the first one's error.
	fails     int
	firstFail error
	// setup, when set, runs before every run, untimed (a fresh build
	// cache, say).
	setup func() error
	// parse, when set, receives each counted run's output (phases).
	parse func(runResult) error
}

// maxFails is how many failed counted runs a scenario may have before it
// is given up. A feature that fails now and then (a race in a helper's
// start-up) still gets its numbers, and the failure rate is reported.
const maxFails = 3

// series runs every scenario warmup times, then `runs` rounds in which each
// scenario runs once, in a new random order each round: all of them see the
// same machine, and none always follows the same neighbour (rootlesskit's
// slirp4netns, say, still exiting). A scenario that fails a warm-up run is
// given up; one that fails counted runs is given up after maxFails.
func (b *bench) series(ctx context.Context, ts []*timed, warmup, runs int, timeout time.Duration) {
	alive := func() []*timed {
		var out []*timed
		for _, t := range ts {
			if t.failed == nil {
				out = append(out, t)
			}
		}
		return out
	}
	once := func(t *timed, counted bool) {
		if b.o.verbose {
			b.log.printf("  %s", t.cmd)
		}
		if t.setup != nil {
			if err := t.setup(); err != nil {
				t.failed = err
				return
			}
		}
		res, err := b.run.run(ctx, t.cmd, timeout)
		if err == nil && counted && t.parse != nil {
			err = t.parse(res)
		}
		switch {
		case err != nil && (!counted || ctx.Err() != nil):
			t.failed = err
		case err != nil:
			t.fails++
			if t.firstFail == nil {
				t.firstFail = err
			}
			if t.fails >= maxFails {
				t.failed = err
			}
		case counted:
			t.samples = append(t.samples, ms(res.wall))
			t.cpu = append(t.cpu, ms(res.cpu))
		}
	}
	for i := 0; i < warmup; i++ {
		for _, t := range alive() {
			once(t, false)
		}
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < runs && ctx.Err() == nil; i++ {
		order := alive()
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, t := range order {
			once(t, true)
		}
	}
	for _, t := range ts {
		if t.failed != nil {
			err := t.failed
			if t.fails > 0 {
				err = fmt.Errorf("%d of %d counted runs failed, given up: %v", t.fails, t.fails+len(t.samples), t.firstFail)
			}
			t.row.fail(err)
			continue
		}
		t.row.setSamples(t.samples)
		t.row.setCPU(t.cpu)
		if t.fails > 0 {
			t.row.Note = fmt.Sprintf("%d of %d runs failed: %v", t.fails, t.fails+len(t.samples), t.firstFail)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// shellQuote renders argv for humans.
func shellQuote(argv []string) string {
	var out []string
	for _, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$&;|<>()*?![]{}\\`") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}
