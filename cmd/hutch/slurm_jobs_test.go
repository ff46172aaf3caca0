package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSlurmExitStatus: a container step's and a container batch job's exit
// statuses come back through hutch to srun and sbatch --wait.
func TestSlurmExitStatus(t *testing.T) {
	requireSlurm(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := slurmBundle(t, jobBundle{})
	out, err := slurmCmd(ctx, t, "srun", "--container="+b, "sh", "-c", "exit 7").CombinedOutput()
	if exitCode(err) != 7 {
		t.Errorf("srun --container sh -c 'exit 7': %v, want exit 7\n%s", err, out)
	}
	cmd := slurmCmd(ctx, t, "sbatch", "--wait", "--container="+b, "-o", "job-%j.out",
		"--wrap", "echo in-batch; exit 4")
	out, err = cmd.CombinedOutput()
	if exitCode(err) != 4 {
		t.Errorf("sbatch --wait --container --wrap 'exit 4': %v, want exit 4\n%s", err, out)
	}
	id := strings.TrimPrefix(strings.TrimSpace(string(out)), "Submitted batch job ")
	if got, err := os.ReadFile(cmd.Dir + "/job-" + id + ".out"); err != nil || string(got) != "in-batch\n" {
		t.Errorf("the batch job's output: %v: %q, want %q", err, got, "in-batch\n")
	}
}

// TestSlurmJobEnv: the bundle's working directory and the variables the
// submitter chose (--export) arrive, with Slurm's own SLURM_* on purpose;
// a variable of the submitter's environment it did not choose does not.
func TestSlurmJobEnv(t *testing.T) {
	requireSlurm(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := slurmBundle(t, jobBundle{Cwd: "/work", Env: []string{"FROM_BUNDLE=b1"}})
	cmd := slurmCmd(ctx, t, "srun", "--export=CHOSEN=c1", "--container="+b, "sh", "-c",
		`echo "cwd=$(pwd)"; echo "chosen=$CHOSEN"; echo "bundle=$FROM_BUNDLE"; echo "unchosen=$UNCHOSEN"; echo "job=$SLURM_JOB_ID"`)
	cmd.Env = append(os.Environ(), "UNCHOSEN=u1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("srun: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"cwd=/work\n", "chosen=c1\n", "bundle=b1\n", "unchosen=\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("want %q in the job's output:\n%s", want, s)
		}
	}
	if !strings.Contains(s, "job=") || strings.Contains(s, "job=\n") {
		t.Errorf("SLURM_JOB_ID did not arrive:\n%s", s)
	}
}

// TestSlurmCancelLeavesNothing: scancel of a running container step ends
// every process of the step: slurmstepd, hutch, its init and the command,
// found by their pids and start times while the step ran, and a process
// the command double-forked away from its parent, which the sandbox's pid
// namespace still holds. The control: the same step without --container,
// where Slurm (proctrack/linuxproc) loses the orphan and it outlives the
// step, so the attempt is real.
func TestSlurmCancelLeavesNothing(t *testing.T) {
	requireSlurm(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := slurmBundle(t, jobBundle{})
	for _, contained := range []bool{false, true} {
		// Markers: sleep durations of 15 min and a unique fraction, so
		// that a process left by a broken run ends by itself; neither is
		// a prefix of the other.
		unique := fmt.Sprintf("%06d%d", os.Getpid()%1000000, map[bool]int{false: 1, true: 2}[contained])
		step, orphan := "900."+unique, "901."+unique
		args := []string{"sh", "-c", "(exec sleep " + orphan + " &); echo \"ready $SLURM_JOB_ID\"; exec sleep " + step}
		if contained {
			args = append([]string{"--container=" + b}, args...)
		}
		t.Cleanup(func() {
			// Whatever fails, no sleeping process of this test stays.
			for _, p := range append(withMarker(step), withMarker(orphan)...) {
				syscall.Kill(p.Pid, syscall.SIGKILL)
			}
		})
		id, procs, wait := startStep(ctx, t, args, step, orphan)
		if out, err := slurmCmd(ctx, t, "scancel", id).CombinedOutput(); err != nil {
			t.Fatalf("scancel %s: %v\n%s", id, err, out)
		}
		wait()
		if contained {
			waitJobState(t, id, time.Minute, "CANCELLED")
			waitStepGone(t, id+".0", step, procs)
			waitStepGone(t, id+".0", orphan, nil)
			continue
		}
		// Once Slurm has killed the command, the orphan still runs; the
		// step waits for it (UnkillableStepTimeout), so end it here.
		waitNoMarker(t, step)
		left := withMarker(orphan)
		for _, p := range left {
			syscall.Kill(p.Pid, syscall.SIGKILL)
		}
		if len(left) == 0 {
			t.Fatalf("control: without hutch, the double-forked process did not outlive the step; the check proves nothing here")
		}
		waitJobState(t, id, time.Minute, "CANCELLED")
		waitStepGone(t, id+".0", step, procs)
	}
}

// waitNoMarker waits (bounded) until no live process has marker.
func waitNoMarker(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		live := 0
		for _, p := range withMarker(marker) {
			if p.State != "Z" && p.State != "X" {
				live++
			}
		}
		if live == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a process with %q still runs a minute on", marker)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startStep runs srun ARGS, whose command prints "ready JOBID" and then
// runs processes with both markers in their command lines, and waits for
// them. It returns the job id, the step's processes then (slurmstepd and
// its descendants), and a function that waits for srun.
func startStep(ctx context.Context, t *testing.T, args []string, markers ...string) (string, []proc, func()) {
	t.Helper()
	cmd := slurmCmd(ctx, t, "srun", args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id := readyLine(bufio.NewScanner(stdout))
	if id == "" {
		cmd.Wait()
		t.Fatalf("srun %v: the step did not start", args)
	}
	// slurmstepd and the command at least (with hutch, also hutch and
	// its init).
	procs := waitStepRunning(t, id+".0", markers[0], 2)
	for _, m := range markers[1:] {
		deadline := time.Now().Add(time.Minute)
		for len(withMarker(m)) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no process with %q a minute after the step started", m)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return id, procs, func() { cmd.Wait() }
}

// TestSlurmTimeLimit: a batch job past its --time=1 is killed with its
// container, leaving no process. It costs a minute or a little more
// (slurmctld checks limits every 30 s): the only such test.
func TestSlurmTimeLimit(t *testing.T) {
	requireSlurm(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	marker := fmt.Sprintf("%d", 8000000+os.Getpid()%1000000)
	b := slurmBundle(t, jobBundle{})
	out, err := slurmCmd(ctx, t, "sbatch", "--parsable", "--time=1", "--container="+b, "-o", "/dev/null",
		"--wrap", "exec sleep "+marker).Output()
	if err != nil {
		t.Fatalf("sbatch: %v\n%s", err, out)
	}
	id := strings.TrimSpace(string(out))
	procs := waitStepRunning(t, id+".batch", marker, 4)
	j := waitJobState(t, id, 3*time.Minute, "TIMEOUT", "COMPLETED", "FAILED", "CANCELLED")
	if j.State != "TIMEOUT" {
		t.Errorf("job %s ended %s, want TIMEOUT:\n%s", id, j.State, j.Raw)
	}
	waitStepGone(t, id+".batch", marker, procs)
}

// waitStepRunning waits (bounded) until the command with marker runs in
// step, and returns the step's processes then: its slurmstepd and every
// descendant, at least min of them.
func waitStepRunning(t *testing.T, step, marker string, min int) []proc {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		procs := stepProcs(step)
		for _, p := range procs {
			if strings.Contains(p.Desc, "sleep "+marker) {
				if len(procs) < min {
					t.Fatalf("step %s: want at least %d processes, got %v", step, min, procs)
				}
				return procs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("step %s: no process with %q after a minute: %v", step, marker, procs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSlurmEscapeSSH: a job cannot read the user's ~/.ssh, not even with a
// bundle that binds it in: hutch refuses the bind or masks it. The
// control: the same bind of a directory that is no secret shows its file.
func TestSlurmEscapeSSH(t *testing.T) {
	requireSlurm(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ssh := sshCanary(t)
	data := t.TempDir()
	if err := os.WriteFile(data+"/file", []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bind := func(src, dst string) map[string]any {
		return map[string]any{"destination": dst, "type": "bind", "source": src, "options": []string{"rbind", "ro"}}
	}
	b := slurmBundle(t, jobBundle{Mounts: []map[string]any{bind(data, "/mnt/data")}})
	out, err := slurmCmd(ctx, t, "srun", "--container="+b, "probe", "-want", "ok", "open-read", "/mnt/data/file").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: open-read") {
		t.Fatalf("control: a bind of a plain directory: %v\n%s", err, out)
	}
	b = slurmBundle(t, jobBundle{Mounts: []map[string]any{bind(filepath.Dir(ssh), "/mnt/ssh")}})
	out, err = slurmCmd(ctx, t, "srun", "--container="+b, "probe", "-want", "ENOENT", "open-read", "/mnt/ssh/"+filepath.Base(ssh)).CombinedOutput()
	s := string(out)
	switch {
	case strings.Contains(s, "ESCAPED"):
		t.Errorf("ESCAPED: the job read ~/.ssh through the bundle's bind:\n%s", s)
	case err == nil && strings.Contains(s, "blocked: open-read: ENOENT"):
		t.Logf("blocked: ~/.ssh is masked in the job:\n%s", s)
	case err != nil && strings.Contains(s, "hutch: error: ") && strings.Contains(s, ".ssh"):
		t.Logf("blocked: hutch refused the bind of ~/.ssh:\n%s", s)
	default:
		t.Errorf("want ~/.ssh masked (ENOENT) or the bundle refused naming it, got %v:\n%s", err, s)
	}
}

// sshCanary puts a file in the test user's real ~/.ssh (the one hutch
// hides, found as the wrapper finds the home: from the password
// database), removed at the end, and returns its path.
func sshCanary(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(u.HomeDir, ".ssh")
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(dir) })
	}
	f, err := os.CreateTemp(dir, "hutch-slurm-canary-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.WriteString("canary\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The control: the host can read it.
	if got, err := os.ReadFile(f.Name()); err != nil || string(got) != "canary\n" {
		t.Fatalf("reading %s on the host: %v %q", f.Name(), err, got)
	}
	return f.Name()
}

// TestSlurmNetworkOff: the site profile's network = "none" holds for a
// job: the host's 127.0.0.1 listener that the test reaches is refused
// inside, also for a bundle that asks for the host's network (no network
// namespace listed), which cannot widen the site profile.
func TestSlurmNetworkOff(t *testing.T) {
	requireSlurm(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port := hostServer(t)
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("control: the host's listener: %v", err)
	}
	c.Close()
	for _, hostNet := range []bool{false, true} {
		b := slurmBundle(t, jobBundle{HostNetwork: hostNet})
		out, err := slurmCmd(ctx, t, "srun", "--container="+b, "probe", "-want", "ECONNREFUSED", "tcp", "127.0.0.1:"+port).CombinedOutput()
		s := string(out)
		switch {
		case strings.Contains(s, "ESCAPED"):
			t.Errorf("ESCAPED: host network %v: the job reached the host's 127.0.0.1:%s:\n%s", hostNet, port, s)
		case err == nil && strings.Contains(s, "blocked: tcp: ECONNREFUSED"):
		case hostNet && err != nil && strings.Contains(s, "hutch: error: ") && strings.Contains(s, "network"):
			t.Logf("blocked: hutch refused the host network:\n%s", s)
		default:
			t.Errorf("host network %v: want ECONNREFUSED, got %v:\n%s", hostNet, err, s)
		}
	}
}
