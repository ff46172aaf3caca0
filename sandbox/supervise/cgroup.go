package supervise

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hutch-sandbox/hutch/sandbox"
	"golang.org/x/sys/unix"
)

// A run's cgroup is a child of the caller's own cgroup v2, which must be
// delegated to the caller (owned by it, as systemd does for user@UID.service
// and `systemd-run --user -p Delegate=yes`). hutch never asks a daemon for
// one. When the caller's cgroup holds processes and lacks the controllers in
// its subtree_control, the kernel's no-internal-process rule forbids enabling
// them; hutch then moves itself alone into a "hutch-supervisor" child first,
// but only when it is the cgroup's only process, never the user's shell.

// cgroupRun is a run's cgroup directory.
type cgroupRun struct{ dir string }

// errNoCgroup says why cgroup limits cannot be enforced.
type errNoCgroup struct{ why string }

func (e *errNoCgroup) Error() string { return "no delegated cgroup v2 for the limits: " + e.why }
func (e *errNoCgroup) Hint() string {
	return "run hutch in a delegated cgroup, e.g.: systemd-run --user --scope -p Delegate=yes hutch run ...; or drop limits.memory/pids/cpu"
}

// newCgroupRun creates the run's cgroup with lim, ready for init's pid.
func newCgroupRun(name string, lim sandbox.CgroupLimits) (*cgroupRun, error) {
	mnt, err := Cgroup2Mount()
	if err != nil {
		return nil, err
	}
	own, err := OwnCgroup()
	if err != nil {
		return nil, err
	}
	base := filepath.Join(mnt, own)
	var st unix.Stat_t
	if err := unix.Stat(base, &st); err != nil {
		return nil, &errNoCgroup{fmt.Sprintf("cannot stat %s: %v", base, err)}
	}
	if int(st.Uid) != os.Getuid() || unix.Access(filepath.Join(base, "cgroup.procs"), unix.W_OK) != nil {
		return nil, &errNoCgroup{fmt.Sprintf("your cgroup %s is not delegated to you", own)}
	}
	need := lim.Controllers()
	if err := enableControllers(base, need); err != nil {
		return nil, err
	}
	dir := filepath.Join(base, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return nil, &errNoCgroup{fmt.Sprintf("creating %s: %v", dir, err)}
	}
	cg := &cgroupRun{dir: dir}
	if err := cg.write(lim); err != nil {
		cg.remove()
		return nil, err
	}
	return cg, nil
}

// enableControllers makes need available to base's children.
func enableControllers(base string, need []string) error {
	have := fields(filepath.Join(base, "cgroup.subtree_control"))
	var missing []string
	for _, c := range need {
		if !have[c] {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	avail := fields(filepath.Join(base, "cgroup.controllers"))
	for _, c := range missing {
		if !avail[c] {
			return &errNoCgroup{fmt.Sprintf("the %s controller is not delegated to your cgroup", c)}
		}
	}
	// No internal processes: only when we are alone in base may we step
	// aside into a child and enable controllers for base's children.
	procs, _ := os.ReadFile(filepath.Join(base, "cgroup.procs"))
	pids := strings.Fields(string(procs))
	if len(pids) > 0 && !(len(pids) == 1 && pids[0] == strconv.Itoa(os.Getpid())) {
		return &errNoCgroup{fmt.Sprintf("your cgroup holds other processes and does not pass %s to its children", strings.Join(missing, ", "))}
	}
	if len(pids) == 1 {
		sup := filepath.Join(base, "hutch-supervisor")
		if err := os.Mkdir(sup, 0o755); err != nil && !os.IsExist(err) {
			return &errNoCgroup{err.Error()}
		}
		if err := os.WriteFile(filepath.Join(sup, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return &errNoCgroup{fmt.Sprintf("moving hutch into %s: %v", sup, err)}
		}
	}
	ctl := "+" + strings.Join(missing, " +")
	if err := os.WriteFile(filepath.Join(base, "cgroup.subtree_control"), []byte(ctl), 0); err != nil {
		return &errNoCgroup{fmt.Sprintf("enabling %s: %v", ctl, err)}
	}
	return nil
}

func (cg *cgroupRun) write(l sandbox.CgroupLimits) error {
	set := func(file, v string) error {
		if err := os.WriteFile(filepath.Join(cg.dir, file), []byte(v), 0); err != nil {
			return fmt.Errorf("setting %s to %s: %w", file, v, err)
		}
		return nil
	}
	if l.Memory > 0 {
		if err := set("memory.max", strconv.FormatInt(l.Memory, 10)); err != nil {
			return err
		}
		// Without a swap bound, memory.max only moves the excess to swap.
		set("memory.swap.max", "0")
		set("memory.oom.group", "1")
	}
	if l.Pids > 0 {
		if err := set("pids.max", strconv.FormatInt(l.Pids, 10)); err != nil {
			return err
		}
	}
	if l.CPU > 0 {
		const period = 100000
		if err := set("cpu.max", fmt.Sprintf("%d %d", int64(l.CPU*period), period)); err != nil {
			return err
		}
	}
	return nil
}

// add moves pid (init, before it has forked anything) into the cgroup.
func (cg *cgroupRun) add(pid int) error {
	return os.WriteFile(filepath.Join(cg.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

// remove deletes the cgroup once its processes are gone; a cgroup with
// processes left cannot be removed, so kill them first.
func (cg *cgroupRun) remove() {
	if cg == nil {
		return
	}
	os.WriteFile(filepath.Join(cg.dir, "cgroup.kill"), []byte("1"), 0)
	for i := 0; i < 50; i++ {
		if err := unix.Rmdir(cg.dir); err == nil || errors.Is(err, unix.ENOENT) {
			return
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 2e6}, nil)
	}
}

// Cgroup2Mount finds where the unified hierarchy is mounted.
func Cgroup2Mount() (string, error) {
	// systemd's two places first, one statfs each: the kernel formats
	// every mount for a read of mountinfo, on every run with a pids limit
	// (the default).
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var fs unix.Statfs_t
		if unix.Statfs(p, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC {
			return p, nil
		}
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", &errNoCgroup{err.Error()}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ... mountpoint ... - fstype source options
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		if f := strings.Fields(pre); len(f) >= 5 {
			return f[4], nil
		}
	}
	return "", &errNoCgroup{"cgroup v2 is not mounted"}
}

// OwnCgroup is this process's cgroup v2 path ("0::/path").
func OwnCgroup() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", &errNoCgroup{err.Error()}
	}
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", &errNoCgroup{"this process is in no cgroup v2"}
}

func fields(path string) map[string]bool {
	data, _ := os.ReadFile(path)
	m := map[string]bool{}
	for _, f := range strings.Fields(string(data)) {
		m[f] = true
	}
	return m
}

// CgroupDelegated reports whether this process's cgroup v2 is delegated to
// it, so that cgroup limits can be enforced.
func CgroupDelegated() bool {
	mnt, err := Cgroup2Mount()
	if err != nil {
		return false
	}
	own, err := OwnCgroup()
	if err != nil {
		return false
	}
	base := filepath.Join(mnt, own)
	var st unix.Stat_t
	return unix.Stat(base, &st) == nil && int(st.Uid) == os.Getuid() &&
		unix.Access(filepath.Join(base, "cgroup.procs"), unix.W_OK) == nil
}
