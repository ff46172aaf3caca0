package sandbox

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Spec is the validated intent of a sandbox: what the user asked for, before
// it is resolved against the host. Profiles and CLI flags produce it; every
// path in it is absolute or starts with "~/" (the caller's home).
type Spec struct {
	// Args is the command and its arguments. Empty means the user's shell.
	Args []string `json:"args"`

	// User is "self" (default: the caller's own uid and gid inside) or
	// "root" (uid and gid 0 inside, mapped to the caller outside).
	User string `json:"user"`
	// IDMap is "auto" (default: the caller's whole /etc/subuid range through
	// newuidmap when available, else one id) or "single" (one id only).
	IDMap string `json:"idmap"`
	// Hostname inside the sandbox; default "hutch".
	Hostname string `json:"hostname"`
	// Network is "none" (default: only lo) or "host".
	Network string `json:"network"`

	// Project is the directory bound read-write at its own path; default
	// the working directory. ProjectMode is "rw" (default) or "ro".
	Project     string `json:"project"`
	ProjectMode string `json:"project_mode"`
	// RW and RO are extra host paths bound writable or read-only at their
	// own paths. Hide paths are masked (an empty directory or file).
	RW   []string `json:"rw"`
	RO   []string `json:"ro"`
	Hide []string `json:"hide"`

	// Env sets variables (after the allowlist and KeepEnv are applied).
	Env map[string]string `json:"env"`
	// KeepEnv lists names or glob patterns of host variables passed through
	// on top of the built-in allowlist.
	KeepEnv []string `json:"keep_env"`

	// PreserveFDs passes the caller's fds 3 .. 3+N-1 to the command, as
	// podman run --preserve-fds does.
	PreserveFDs int `json:"preserve_fds"`
	// TTY is "auto" (default: a pty when stdin is a terminal), "always" or
	// "never".
	TTY string `json:"tty"`
}

// Defaults for empty Spec fields.
const (
	DefaultHostname = "hutch"
	UserSelf        = "self"
	UserRoot        = "root"
	IDMapAuto       = "auto"
	IDMapSingle     = "single"
	NetworkNone     = "none"
	NetworkHost     = "host"
)

// Validate checks s for values no plan can satisfy and fills defaults.
func (s *Spec) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&s.User, UserSelf)
	def(&s.IDMap, IDMapAuto)
	def(&s.Hostname, DefaultHostname)
	def(&s.Network, NetworkNone)
	def(&s.ProjectMode, "rw")
	def(&s.TTY, "auto")
	oneOf := func(name, v string, ok ...string) {
		for _, o := range ok {
			if v == o {
				return
			}
		}
		bad("%s %q is not one of %s", name, v, strings.Join(ok, ", "))
	}
	oneOf("user", s.User, UserSelf, UserRoot)
	oneOf("idmap", s.IDMap, IDMapAuto, IDMapSingle)
	oneOf("network", s.Network, NetworkNone, NetworkHost)
	oneOf("project mode", s.ProjectMode, "rw", "ro")
	oneOf("tty", s.TTY, "auto", "always", "never")
	if !validHostname(s.Hostname) {
		bad("hostname %q is not a valid host name (letters, digits, '-' and '.', at most 64)", s.Hostname)
	}
	if s.PreserveFDs < 0 || s.PreserveFDs > 1000 {
		bad("preserve-fds %d is out of range 0..1000", s.PreserveFDs)
	}
	for _, set := range []struct {
		name  string
		paths []string
	}{{"rw", s.RW}, {"ro", s.RO}, {"hide", s.Hide}, {"project", []string{s.Project}}} {
		for _, p := range set.paths {
			if p == "" && set.name == "project" {
				continue
			}
			if !filepath.IsAbs(p) && p != "~" && !strings.HasPrefix(p, "~/") {
				bad("%s path %q must be absolute (or start with ~/)", set.name, p)
			}
		}
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			bad("environment variable name %q is invalid", k)
		}
	}
	for _, pat := range s.KeepEnv {
		if _, err := filepath.Match(pat, ""); err != nil || pat == "" {
			bad("keep-env pattern %q is not a valid glob", pat)
		}
	}
	return errors.Join(errs...)
}

func validHostname(h string) bool {
	if h == "" || len(h) > 64 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return h[0] != '-' && h[0] != '.'
}
