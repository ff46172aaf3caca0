// Package nsprobe is the hidden hutch-probe entry and its parent's side:
// a check that must act inside new namespaces (mount a tmpfs and /proc,
// mount a kernel overlay, read the id maps newuidmap wrote) re-executes
// /proc/self/exe there under the fixed argv[0] Name and reads one JSON
// reply. hutch doctor runs every probe; a run asks only whether the
// kernel's overlay works (sandbox.ProbeHost's overlay driver choice).
//
// It is a leaf: it knows nothing of plans, profiles or the CLI, and the
// probe process never runs a user's command.
package nsprobe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/lockedexec"
)

// Name is the fixed argv[0] of the hidden entry hutch doctor runs
// inside new namespaces. Go cannot run code between fork and exec, so a
// check that must act inside a namespace (mount an overlay, mount /proc)
// re-executes /proc/self/exe there under this name. main and the test
// binary dispatch on it, as they do on InitName.
const Name = "hutch-probe"

// Is reports whether argv0 names the hidden probe entry.
func Is(argv0 string) bool { return filepath.Base(argv0) == Name }

// Reply is what hutch-probe prints on stdout: one JSON object. An
// empty Err means every step worked.
type Reply struct {
	Step   string        `json:"step,omitempty"` // the step that failed
	Errno  syscall.Errno `json:"errno,omitempty"`
	Err    string        `json:"err,omitempty"`
	UIDMap string        `json:"uid_map,omitempty"` // the idmap probe's view
	GIDMap string        `json:"gid_map,omitempty"`
}

// Main is hutch-probe: it runs one probe, named by its first
// argument, in the namespaces its parent created, and prints a Reply.
//
//	hutch-probe sandbox DIR   mount a tmpfs on DIR and a new /proc in it
//	hutch-probe overlay DIR   mount a kernel overlay in DIR and delete a lower directory through it
//	hutch-probe idmap         wait for a line on stdin (the parent runs newuidmap), print the id maps
func Main() int {
	var rep Reply
	args := os.Args[1:]
	switch {
	case len(args) == 2 && args[0] == "sandbox":
		rep = probeSandbox(args[1])
	case len(args) == 2 && args[0] == "overlay":
		rep = probeOverlay(args[1])
	case len(args) == 1 && args[0] == "idmap":
		rep = probeIDMap()
	case len(args) >= 1 && extra[args[0]] != nil:
		rep = extra[args[0]](args[1:])
	default:
		fmt.Fprintln(os.Stderr, "hutch-probe: this is hutch doctor's probe; run hutch doctor instead")
		return 125
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return 125
	}
	return 0
}

// extra are probes that packages above this leaf add (Register).
var extra = map[string]func(args []string) Reply{}

// Register adds a probe that hutch-probe runs as "NAME ARGS...": for a
// check whose mechanism lives above this leaf (doctor's nftables
// redirect, in slirp/redirect). Call it from an init function, so that
// the probe process, which is the same binary, has it too.
func Register(name string, probe func(args []string) Reply) { extra[name] = probe }

// Failed fills a reply from the step that went wrong.
func Failed(step string, err error) Reply { return failed(step, err) }

// failed fills a reply from the step that went wrong.
func failed(step string, err error) Reply {
	rep := Reply{Step: step, Err: err.Error()}
	errors.As(err, &rep.Errno)
	return rep
}

// privateMounts keeps our mounts from propagating anywhere. A mount
// namespace made in a new user namespace already turns shared mounts into
// slaves; this says so explicitly.
func privateMounts() error {
	return unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
}

// probeSandbox does in small what hutch-init does first: a tmpfs, and a new
// /proc for the new pid namespace, which the kernel refuses when the host's
// /proc is partly covered (as in some containers).
func probeSandbox(dir string) Reply {
	if os.Getpid() != 1 {
		return Reply{Step: "entering a new pid namespace", Err: fmt.Sprintf("pid is %d, not 1", os.Getpid())}
	}
	if err := privateMounts(); err != nil {
		return failed("making mounts private", err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return failed("mounting a tmpfs", err)
	}
	proc := filepath.Join(dir, "proc")
	if err := os.Mkdir(proc, 0o755); err != nil {
		return failed("creating a mount point on the tmpfs", err)
	}
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return failed("mounting /proc", err)
	}
	return Reply{}
}

// probeOverlay mounts a kernel overlay with userxattr, which a user
// namespace needs: without it, deleting a lower directory fails with EIO.
// It then does exactly that, and checks for the whiteout.
func probeOverlay(dir string) Reply {
	if strings.ContainsAny(dir, ",:") {
		return Reply{Step: "preparing", Err: fmt.Sprintf("%q holds a comma or colon, which overlay options cannot carry", dir)}
	}
	if err := privateMounts(); err != nil {
		return failed("making mounts private", err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, d := range []string{"lower/dir", "upper", "work", "merged"} {
		if err := os.MkdirAll(p(d), 0o755); err != nil {
			return failed("preparing", err)
		}
	}
	if err := os.WriteFile(p("lower/dir/file"), []byte("lower\n"), 0o644); err != nil {
		return failed("preparing", err)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", p("lower"), p("upper"), p("work"))
	if err := unix.Mount("overlay", p("merged"), "overlay", 0, opts); err != nil {
		return failed("mounting", err)
	}
	defer unix.Unmount(p("merged"), unix.MNT_DETACH)
	if err := os.WriteFile(p("merged/new"), []byte("upper\n"), 0o644); err != nil {
		return failed("writing through the overlay", err)
	}
	if err := os.RemoveAll(p("merged/dir")); err != nil {
		return failed("deleting a lower directory through the overlay", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(p("upper/dir"), &st); err != nil {
		return failed("looking for the whiteout", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		return Reply{Step: "looking for the whiteout", Err: "the deleted directory left no 0:0 character device in the upper directory"}
	}
	return Reply{}
}

// probeIDMap waits until its parent has written the id maps with
// newuidmap and newgidmap (or given up: stdin closes either way), then
// reports what the kernel holds.
func probeIDMap() Reply {
	io.Copy(io.Discard, os.Stdin)
	u, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return failed("reading uid_map", err)
	}
	g, err := os.ReadFile("/proc/self/gid_map")
	if err != nil {
		return failed("reading gid_map", err)
	}
	return Reply{UIDMap: string(u), GIDMap: string(g)}
}

// Outcome is what the parent learned from one probe.
type Outcome struct {
	Tried bool
	// Start is true when the error came from creating the process, that
	// is, from clone(2) refusing the namespaces.
	Start bool
	Step  string
	Errno syscall.Errno
	Err   string
	Reply Reply
}

// OK reports whether the probe ran and every step worked.
func (p Outcome) OK() bool { return p.Tried && p.Err == "" }

// runProbe starts hutch-probe with args in the namespaces attr asks for.
// between, when set, runs once the child exists and before it may go on
// (it is how newuidmap gets its turn); the child waits for stdin to close.
func Run(ctx context.Context, attr *syscall.SysProcAttr, between func(pid int) error, args ...string) Outcome {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = append([]string{Name}, args...)
	cmd.Env = []string{"GOMAXPROCS=1"}
	attr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr = attr
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var stdin io.WriteCloser
	if between != nil {
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			return Outcome{Tried: true, Err: err.Error()}
		}
	}

	// PDEATHSIG follows the thread that forked: lockedexec keeps it alive.
	exited, err := lockedexec.Start(cmd)
	if err != nil {
		out := Outcome{Tried: true, Start: true, Step: "creating the namespaces", Err: err.Error()}
		errors.As(err, &out.Errno)
		return out
	}
	var betweenErr error
	if between != nil {
		betweenErr = between(cmd.Process.Pid)
		stdin.Close()
	}
	waitErr := <-exited
	out := Outcome{Tried: true}
	switch {
	case betweenErr != nil:
		out.Step, out.Err = "writing the id maps", betweenErr.Error()
	case waitErr != nil:
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = waitErr.Error()
		}
		out.Step, out.Err = "running the probe", msg
	default:
		if err := json.Unmarshal(stdout.Bytes(), &out.Reply); err != nil {
			out.Step, out.Err = "reading the probe's reply", fmt.Sprintf("%v: %q", err, stdout.String())
		} else if out.Reply.Err != "" {
			out.Step, out.Errno, out.Err = out.Reply.Step, out.Reply.Errno, out.Reply.Err
		}
	}
	return out
}

// RemoveDir removes a probe's directory, overlay work directories too.
func RemoveDir(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	// overlayfs leaves its work directory mode 0: open it up and retry.
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}
