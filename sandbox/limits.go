package sandbox

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/sandbox/seccomp"
)

var rlimitResources = map[string]int{
	"CORE": unix.RLIMIT_CORE, "NOFILE": unix.RLIMIT_NOFILE, "NPROC": unix.RLIMIT_NPROC,
	"FSIZE": unix.RLIMIT_FSIZE, "CPU": unix.RLIMIT_CPU, "AS": unix.RLIMIT_AS, "DATA": unix.RLIMIT_DATA,
}

// applyRlimits sets plan's rlimits on init itself, just before the command
// is forked: rlimits are per process and inherited. init needs none of what
// they bound (it opens no files and writes nothing once the command runs).
// A limit above the current hard limit is lowered to it: an unprivileged
// process cannot raise its hard limits, and the tighter bound stands.
func applyRlimits(rs []Rlimit) error {
	for _, r := range rs {
		res, ok := rlimitResources[r.Resource]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", r.Resource)
		}
		var cur syscall.Rlimit
		if err := syscall.Getrlimit(res, &cur); err != nil {
			return err
		}
		want := syscall.Rlimit{Cur: r.Soft, Max: r.Hard}
		if want.Max > cur.Max {
			want.Max = cur.Max
		}
		if want.Cur > want.Max {
			want.Cur = want.Max
		}
		// syscall.Setrlimit, not unix: it also drops Go's saved NOFILE
		// limit, which exec would otherwise restore in the child.
		if err := syscall.Setrlimit(res, &want); err != nil {
			return fmt.Errorf("setting rlimit %s to %d: %w", r.Resource, r.Soft, err)
		}
	}
	return nil
}

// compileSeccomp builds the command's filter on the host side, before any
// namespace exists, so a bad profile fails fast and plainly.
func compileSeccomp(p *Plan) ([]unix.SockFilter, error) {
	var pol *seccomp.Policy
	switch p.Seccomp.Mode {
	case "off":
		return nil, nil
	case "default", "":
		pol = seccomp.Default(seccomp.Options{Nested: p.Seccomp.Nested})
	case "profile":
		data, err := os.ReadFile(p.Seccomp.Profile)
		if err != nil {
			return nil, withHint(fmt.Errorf("reading the seccomp profile: %w", err),
				`security.seccomp takes "default", "off" or the path of an OCI/Docker seccomp JSON file`)
		}
		if pol, err = seccomp.ParseOCI(data, p.Caps); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Seccomp.Profile, err)
		}
	default:
		return nil, fmt.Errorf("unknown seccomp mode %q", p.Seccomp.Mode)
	}
	return pol.Compile()
}
