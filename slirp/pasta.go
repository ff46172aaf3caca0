package slirp

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// PastaFeatures are the options this pasta binary takes.
type PastaFeatures struct {
	Path       string
	NoMapGW    bool
	DNSForward bool
	ConfigNet  bool
	PIDFile    bool
	Foreground bool
}

// PastaDNS is the address inside that pasta forwards to the host's first
// nameserver (--dns-forward), as podman uses it.
const PastaDNS = "169.254.1.1"

// ProbePasta finds pasta on PATH and reads its features.
func ProbePasta() (*PastaFeatures, error) {
	p, err := exec.LookPath("pasta")
	if err != nil {
		return nil, &MissingError{Program: "pasta", Package: "passt"}
	}
	h := helpText(p)
	return &PastaFeatures{
		Path:       p,
		NoMapGW:    strings.Contains(h, "--no-map-gw"),
		DNSForward: strings.Contains(h, "--dns-forward"),
		ConfigNet:  strings.Contains(h, "--config-net"),
		PIDFile:    strings.Contains(h, "--pid"),
		Foreground: strings.Contains(h, "--foreground"),
	}, nil
}

// StartPasta connects cfg.PID's network namespace through pasta and
// returns once it is configured. runDir is a private directory for the
// readiness FIFO.
//
// pasta stays in the foreground, as our child, so PDEATHSIG reaches it:
// started for a pid, pasta of 2023 never exits by itself. Its readiness is
// the pid it writes to -P once the namespace is configured; a FIFO there
// turns that write into a wake-up.
//
// Port forwarding between the namespaces is all off (-t, -u, -T, -U none):
// by default pasta would expose the host's loopback services inside (-T
// auto). Without HostLoopback the gateway address is not mapped to the
// host (--no-map-gw).
func StartPasta(f *PastaFeatures, cfg Config, runDir string) (*Handle, error) {
	if !f.ConfigNet || !f.PIDFile || !f.Foreground {
		return nil, fmt.Errorf("this pasta lacks --config-net, --pid or --foreground")
	}
	if !cfg.HostLoopback && !f.NoMapGW {
		return nil, fmt.Errorf("this pasta does not support --no-map-gw, so the host's loopback cannot be kept out")
	}
	fifo := filepath.Join(runDir, "pasta.pid")
	os.Remove(fifo)
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return nil, fmt.Errorf("creating pasta's readiness fifo: %w", err)
	}
	// Opened read-write, the FIFO never blocks our open or pasta's, and a
	// read waits for data rather than returning EOF while pasta has not
	// opened it yet (Linux allows O_RDWR on a FIFO for this).
	rfd, err := unix.Open(fifo, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ready := os.NewFile(uintptr(rfd), "pasta-ready")
	defer ready.Close()

	args := []string{"--foreground", "--quiet", "--config-net",
		"-t", "none", "-u", "none", "-T", "none", "-U", "none", "-P", fifo}
	if cfg.MTU > 0 {
		args = append(args, "--mtu", strconv.Itoa(cfg.MTU))
	}
	if !cfg.HostLoopback {
		args = append(args, "--no-map-gw")
	}
	if f.DNSForward {
		args = append(args, "--dns-forward", PastaDNS)
	}
	args = append(args, strconv.Itoa(cfg.PID))
	h, err := start(exec.Command(f.Path, args...))
	if err != nil {
		return nil, fmt.Errorf("starting pasta: %w", err)
	}
	if err := h.waitReady("pasta", ready); err != nil {
		h.cmd.Process.Kill()
		return nil, err
	}
	return h, nil
}
