package slirp

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Slirp4netnsFeatures are the options this slirp4netns binary takes.
type Slirp4netnsFeatures struct {
	Path                string
	DisableHostLoopback bool
	Sandbox             bool
	Seccomp             bool
	ExitFD              bool
	ReadyFD             bool
}

// ProbeSlirp4netns finds slirp4netns on PATH and reads its features.
func ProbeSlirp4netns() (*Slirp4netnsFeatures, error) {
	p, err := exec.LookPath("slirp4netns")
	if err != nil {
		return nil, &MissingError{Program: "slirp4netns", Package: "slirp4netns"}
	}
	h := helpText(p)
	return &Slirp4netnsFeatures{
		Path:                p,
		DisableHostLoopback: strings.Contains(h, "--disable-host-loopback"),
		Sandbox:             strings.Contains(h, "--enable-sandbox"),
		Seccomp:             strings.Contains(h, "--enable-seccomp"),
		ExitFD:              strings.Contains(h, "--exit-fd"),
		ReadyFD:             strings.Contains(h, "--ready-fd"),
	}, nil
}

// MissingError says a helper program is not installed.
type MissingError struct{ Program, Package string }

func (e *MissingError) Error() string { return e.Program + " is not installed" }
func (e *MissingError) Hint() string {
	return fmt.Sprintf("install it (Debian/Ubuntu: sudo apt-get install %s), or pick another network mode", e.Package)
}

// Config is a network namespace to connect.
type Config struct {
	// PID is a process in the target user and network namespaces.
	PID int
	// HostLoopback lets the namespace reach the host's 127.0.0.1 through
	// the gateway address (10.0.2.2 for slirp4netns).
	HostLoopback bool
	// MTU of the tap device; 0 picks 65520, which is several times faster
	// than 1500 through slirp.
	MTU int
}

// Slirp4netns addresses (its defaults for 10.0.2.0/24).
const (
	SlirpGateway = "10.0.2.2"
	SlirpDNS     = "10.0.2.3"
	SlirpGuest   = "10.0.2.100"
)

// StartSlirp4netns connects cfg.PID's network namespace through a tap
// device and returns once it is configured.
func StartSlirp4netns(f *Slirp4netnsFeatures, cfg Config) (*Handle, error) {
	if !f.ReadyFD || !f.ExitFD {
		return nil, fmt.Errorf("this slirp4netns lacks --ready-fd or --exit-fd (version 0.4 or later is needed)")
	}
	if !cfg.HostLoopback && !f.DisableHostLoopback {
		return nil, fmt.Errorf("this slirp4netns does not support --disable-host-loopback, so the host's loopback cannot be kept out")
	}
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = 65520
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return nil, err
	}
	// ExtraFiles land at 3 and 4 in the child.
	args := []string{"--configure", "--mtu=" + strconv.Itoa(mtu), "--ready-fd=3", "--exit-fd=4"}
	if !cfg.HostLoopback {
		args = append(args, "--disable-host-loopback")
	}
	if f.Sandbox {
		args = append(args, "--enable-sandbox")
	}
	if f.Seccomp {
		args = append(args, "--enable-seccomp")
	}
	args = append(args, strconv.Itoa(cfg.PID), "tap0")
	cmd := exec.Command(f.Path, args...)
	cmd.ExtraFiles = []*os.File{readyW, exitR}
	h, err := start(cmd)
	readyW.Close()
	exitR.Close()
	if err != nil {
		exitW.Close()
		return nil, fmt.Errorf("starting slirp4netns: %w", err)
	}
	h.exitW = exitW
	if err := h.waitReady("slirp4netns", readyR); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}
