package main

// The Slurm tests' harness: the one-node cluster that scripts/slurm-up.sh
// starts (as root, before the suite), the hutch it runs, bundles, jobs, and
// the processes a step leaves. docs/slurm.md describes the cluster.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/internal/testenv"
	"github.com/hutch-sandbox/hutch/internal/testimage"
)

// slurmNode is the node scripts/slurm-up.sh names.
const slurmNode = "hutch-node"

// slurmHutchRel is where, under the test user's home, the Slurm tests put
// the hutch under test: oci.conf names a root-owned wrapper that runs the
// job's user's own copy from there (scripts/slurm-up.sh says why).
const slurmHutchRel = ".local/libexec/hutch-slurm-test/hutch"

var (
	slurmOnce sync.Once
	slurmErr  string
)

// requireSlurm skips (or, strictly, fails) t unless the test cluster is
// up and runs container jobs through the wrapper; on first use it installs
// this test binary (which is hutch when called so) where the wrapper runs
// it from.
func requireSlurm(t *testing.T) {
	t.Helper()
	testenv.RequireUserNS(t)
	slurmOnce.Do(func() { slurmErr = slurmSetup() })
	if slurmErr != "" {
		testenv.Skip(t, slurmErr+" (as root: make test-deps slurm-up; see docs/slurm.md)")
	}
}

func slurmSetup() string {
	for _, p := range []string{"srun", "sbatch", "scancel", "scontrol", "sinfo"} {
		if _, err := exec.LookPath(p); err != nil {
			return "Slurm is not installed: no " + p
		}
	}
	oci, err := os.ReadFile("/etc/slurm/oci.conf")
	if err != nil || !strings.Contains(string(oci), "hutch-slurm-test/hutch-oci") {
		return "Slurm's /etc/slurm/oci.conf is not the test cluster's (scripts/slurm-up.sh writes it)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sinfo", "-h", "-N", "-n", slurmNode, "-p", "debug", "-o", "%T").CombinedOutput()
	state := strings.TrimSpace(string(out))
	// A node that runs or ends other jobs is up too.
	if err != nil || !slices.Contains([]string{"idle", "mixed", "allocated", "completing"}, state) {
		return fmt.Sprintf("the Slurm node %s is not up: sinfo: %v: %q", slurmNode, err, state)
	}
	if err := installSlurmHutch(); err != nil {
		return err.Error()
	}
	return ""
}

// installSlurmHutch copies this test binary to ~/slurmHutchRel with a
// rename, so that a job already running keeps the file it started.
func installSlurmHutch() error {
	u, err := user.Current()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	dst := filepath.Join(u.HomeDir, slurmHutchRel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".hutch-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o755)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("installing the hutch under test: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	// make mutate's switch cannot reach hutch through Slurm, which runs it
	// in its own environment: the wrapper reads it from beside the binary.
	if v := os.Getenv(mutate.Var); v != "" {
		return os.WriteFile(dst+".mutate", []byte(v), 0o644)
	}
	if err := os.Remove(dst + ".mutate"); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// jobBundle is what a test bundle's config.json says.
type jobBundle struct {
	Args   []string
	Cwd    string   // "" is /work
	Env    []string // added to PATH
	Mounts []map[string]any
	// HostNetwork leaves the network namespace out of linux.namespaces,
	// which asks for the host's network.
	HostNetwork bool
}

// slurmBundle writes an OCI bundle: a busybox root (internal/testimage's
// applets) with the probe in /bin, a /work directory, and config.json.
func slurmBundle(t *testing.T, b jobBundle) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "proc", "dev", "tmp", "work", "mnt"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, testimage.BusyboxPath, filepath.Join(root, "bin/busybox"))
	probe, err := buildProbe()
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, probe, filepath.Join(root, "bin/probe"))
	for _, a := range testimage.BusyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if b.Cwd == "" {
		b.Cwd = "/work"
	}
	args := b.Args
	if args == nil {
		args = []string{"sh"}
	}
	uid, gid := os.Getuid(), os.Getgid()
	mounts := []map[string]any{
		{"destination": "/proc", "type": "proc", "source": "proc"},
		{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "nodev"}},
	}
	namespaces := []map[string]string{{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}}
	if !b.HostNetwork {
		namespaces = append(namespaces, map[string]string{"type": "network"})
	}
	config := map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"terminal": false,
			"user":     map[string]any{"uid": uid, "gid": gid},
			"args":     args,
			"env":      append([]string{"PATH=/bin"}, b.Env...),
			"cwd":      b.Cwd,
		},
		"root":     map[string]any{"path": "rootfs", "readonly": true},
		"hostname": "slurm-job",
		"mounts":   append(mounts, b.Mounts...),
		"linux": map[string]any{
			"namespaces":  namespaces,
			"uidMappings": []map[string]int{{"containerID": uid, "hostID": uid, "size": 1}},
			"gidMappings": []map[string]int{{"containerID": gid, "hostID": gid, "size": 1}},
		},
	}
	data, err := json.MarshalIndent(config, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// slurmCmd is a Slurm client command run from a directory of the test's
// own, stopped at the deadline.
func slurmCmd(ctx context.Context, t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = t.TempDir()
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// slurmJob is one job as scontrol show job reports it.
type slurmJob struct {
	State    string // JobState: RUNNING, COMPLETED, CANCELLED, TIMEOUT, …
	ExitCode string // ExitCode: "STATUS:SIGNAL"
	Raw      string
}

func showJob(t *testing.T, id string) slurmJob {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "scontrol", "show", "job", "-o", id).CombinedOutput()
	if err != nil {
		t.Fatalf("scontrol show job %s: %v\n%s", id, err, out)
	}
	j := slurmJob{Raw: strings.TrimSpace(string(out))}
	for _, f := range strings.Fields(j.Raw) {
		if v, ok := strings.CutPrefix(f, "JobState="); ok {
			j.State = v
		}
		if v, ok := strings.CutPrefix(f, "ExitCode="); ok {
			j.ExitCode = v
		}
	}
	return j
}

// waitJobState polls scontrol until job id is in one of the final states
// (or any state but PENDING, RUNNING, CONFIGURING, COMPLETING, SUSPENDED
// when none is named), and fails t at the deadline.
func waitJobState(t *testing.T, id string, within time.Duration, want ...string) slurmJob {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		j := showJob(t, id)
		done := !slices.Contains([]string{"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED"}, j.State)
		if len(want) > 0 {
			done = slices.Contains(want, j.State)
		}
		if done {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after %v (want %v):\n%s", id, j.State, within, want, j.Raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// proc is one process, told apart from a later one with its pid by its
// start time.
type proc struct {
	Pid   int
	Start string // field 22 of /proc/PID/stat
	State string // field 3: R, S, D, Z (exited, not yet reaped), …
	Desc  string // comm and command line, for messages
}

func readProc(pid int) (proc, int, bool) {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return proc{}, 0, false
	}
	s := string(st)
	i := strings.LastIndex(s, ")")
	if i < 0 {
		return proc{}, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return proc{}, 0, false
	}
	ppid, _ := strconv.Atoi(f[1])
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	desc := fmt.Sprintf("%s state %s: %q", s[strings.Index(s, "(")+1:i], f[0],
		strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "))
	return proc{Pid: pid, Start: f[19], State: f[0], Desc: desc}, ppid, true
}

// alive reports whether p is still the process it was, and has not
// exited (a zombie has: only its parent's wait is missing).
func (p proc) alive() bool {
	q, _, ok := readProc(p.Pid)
	return ok && q.Start == p.Start && q.State != "Z" && q.State != "X"
}

// stepProcs returns the processes of the step named "slurmstepd: [STEP]"
// (JOB.0, JOB.batch): that slurmstepd and all its descendants.
func stepProcs(step string) []proc {
	byParent := map[int][]int{}
	procs := map[int]proc{}
	top := 0
	for _, pid := range allPids() {
		p, ppid, ok := readProc(pid)
		if !ok {
			continue
		}
		procs[pid] = p
		byParent[ppid] = append(byParent[ppid], pid)
		if strings.Contains(p.Desc, "slurmstepd: ["+step+"]") {
			top = pid
		}
	}
	if top == 0 {
		return nil
	}
	var out []proc
	queue := []int{top}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		out = append(out, procs[pid])
		queue = append(queue, byParent[pid]...)
	}
	return out
}

// withMarker returns the processes whose command line contains marker.
func withMarker(marker string) []proc {
	var out []proc
	for _, pid := range pgrepAll(marker) {
		if p, _, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

func pgrepAll(s string) []int {
	var out []int
	for _, pid := range allPids() {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(data), s) && pid != os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}

// waitStepGone waits (bounded) until no slurmstepd runs step, then fails
// t for each process of procs still alive and each process whose command
// line still has marker.
func waitStepGone(t *testing.T, step, marker string, procs []proc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for len(stepProcs(step)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("slurmstepd [%s] still runs 60 s on: %v", step, stepProcs(step))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range procs {
		if p.alive() {
			t.Errorf("left behind by step %s: pid %d %s", step, p.Pid, p.Desc)
		}
	}
	for _, p := range withMarker(marker) {
		if p.State == "Z" || p.State == "X" {
			continue
		}
		t.Errorf("left behind by step %s (by its marker): pid %d %s", step, p.Pid, p.Desc)
	}
}

// readyLine reads lines from r until one starts with "ready ", and returns
// the rest of it; "" at EOF.
func readyLine(sc *bufio.Scanner) string {
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
			return rest
		}
	}
	return ""
}
