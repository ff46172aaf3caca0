package sandbox

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/sandbox/model"
	"github.com/hutch-sandbox/hutch/sandbox/seccomp"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
)

// Resolved is what a run derives from a plan beyond its JSON (sandbox/model).
type Resolved = model.Resolved

// Resolve fills p.Resolved: it compiles the seccomp filter (reading a
// profile file, which NewPlan, being pure, does not) and parses the
// proxy's allowlist. The CLI calls it right after NewPlan, so that
// --dry-run checks everything a run would use; Launch refuses a plan
// without it.
func Resolve(p *Plan) error {
	filter, err := compileSeccomp(p)
	if err != nil {
		return err
	}
	r := &Resolved{Filter: filter}
	if len(p.Seccomp.Bundle) > 0 {
		pol, err := seccomp.ParseOCI(p.Seccomp.Bundle, p.Caps)
		if err != nil {
			return fmt.Errorf("config.json: linux.seccomp: %w", err)
		}
		if r.Extra, err = pol.Compile(); err != nil {
			return fmt.Errorf("config.json: linux.seccomp: %w", err)
		}
	}
	if p.Network == NetworkProxy {
		if r.Allow, err = proxy.ParseAllow(p.Allow); err != nil {
			return err
		}
	}
	p.Resolved = r
	return nil
}

// compileSeccomp builds the command's filter on the host side, before any
// namespace exists, so a bad profile fails fast and plainly (at --dry-run).
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
			return nil, hint.With(fmt.Errorf("reading the seccomp profile: %w", err),
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
