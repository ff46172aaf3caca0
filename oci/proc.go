package oci

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/mutate"
)

// A pid in a state file is a claim, not a fact: the process may have
// ended and its pid been reused, and a state directory's owner may have
// written any pid there (root's pid 1, say) for root's delete to kill.
// So a process is only signalled through a pidfd opened first and then
// checked: its start time (field 22 of /proc/PID/stat, in clock ticks
// since boot) is the one recorded, and its real uid is the state
// directory's owner. Once the pidfd is open, the pid cannot be reused
// under it.

// startTime reads a process's start time, and its real uid.
func startTime(pid int) (start uint64, uid uint32, err error) {
	if pid <= 0 {
		return 0, 0, unix.ESRCH
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, unix.ESRCH
	}
	// comm may hold spaces and parentheses: the fields follow the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state): field 22 is fields[19].
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	if fields[0] == "Z" || fields[0] == "X" {
		return 0, 0, unix.ESRCH // ended, not reaped yet
	}
	if start, err = strconv.ParseUint(fields[19], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, unix.ESRCH
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, err := strconv.ParseUint(f[0], 10, 32)
				if err == nil {
					return start, uint32(n), nil
				}
			}
		}
	}
	return 0, 0, fmt.Errorf("/proc/%d/status: no Uid line", pid)
}

// errNotOurs: the pid names a process that is not the one recorded, or
// not the state directory's owner's.
var errNotOurs = errors.New("the recorded pid is not the container's process")

// proc is a pidfd of a process checked against its record.
type proc struct {
	fd  int
	pid int
}

// openProc opens pid's pidfd and checks that it is the process recorded
// (start) and belongs to owner. ESRCH: it is gone.
func openProc(pid int, start uint64, owner uint32) (*proc, error) {
	if pid <= 0 || start == 0 {
		return nil, unix.ESRCH
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, unix.ESRCH
	}
	got, uid, err := startTime(pid)
	if err != nil {
		unix.Close(fd)
		return nil, unix.ESRCH
	}
	if got != start {
		unix.Close(fd)
		return nil, unix.ESRCH // ended, and its pid reused
	}
	if uid != owner && !mutate.Off("oci-pid-owner") {
		unix.Close(fd)
		return nil, fmt.Errorf("pid %d (uid %d, the state directory's owner is %d): %w", pid, uid, owner, errNotOurs)
	}
	return &proc{fd: fd, pid: pid}, nil
}

func (p *proc) close() { unix.Close(p.fd) }

func (p *proc) signal(sig unix.Signal) error {
	return unix.PidfdSendSignal(p.fd, sig, nil, 0)
}

// wait blocks until the process has ended (its pidfd turns readable).
func (p *proc) wait() { p.waitFor(-1) }

// waitFor waits until the process has ended, or for d at most (d < 0:
// for ever); it reports whether it ended.
func (p *proc) waitFor(d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(d)
	for {
		ms := -1
		if d >= 0 {
			ms = int(max(time.Until(deadline).Milliseconds(), 0))
		}
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		return err != nil || n > 0
	}
}

// alive reports whether the recorded process still runs.
func alive(pid int, start uint64, owner uint32) bool {
	p, err := openProc(pid, start, owner)
	if err != nil {
		return false
	}
	p.close()
	return true
}
