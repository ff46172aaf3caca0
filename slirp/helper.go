package slirp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"github.com/hutch-sandbox/hutch/internal/lockedexec"
)

// Handle is a running helper.
type Handle struct {
	cmd    *exec.Cmd
	exitW  *os.File // closing it tells slirp4netns to exit
	stderr *lockedBuffer
	waited chan error
	done   chan struct{} // closed when the helper has exited
	once   sync.Once
}

// Done is closed when the helper has exited, for whatever reason: the
// sandbox's network is gone with it.
func (h *Handle) Done() <-chan struct{} { return h.done }

// Close asks the helper to exit and returns at once: teardown is slow and
// nothing needs to wait for it. PDEATHSIG ends it if we exit first.
func (h *Handle) Close() {
	h.once.Do(func() {
		if h.exitW != nil {
			h.exitW.Close()
		} else if h.cmd.Process != nil {
			h.cmd.Process.Signal(syscall.SIGTERM)
		}
	})
}

// Pid is the helper's process id.
func (h *Handle) Pid() int { return h.cmd.Process.Pid }

// start runs cmd so that PDEATHSIG ends it when we die (lockedexec).
func start(cmd *exec.Cmd) (*Handle, error) {
	h := &Handle{cmd: cmd, stderr: &lockedBuffer{}, waited: make(chan error, 1), done: make(chan struct{})}
	cmd.Stderr = h.stderr
	cmd.Stdout = h.stderr
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	exited, err := lockedexec.Start(cmd)
	if err != nil {
		return nil, err
	}
	go func() {
		h.waited <- <-exited
		close(h.done)
	}()
	return h, nil
}

// waitReady blocks until the helper writes to ready or exits.
func (h *Handle) waitReady(name string, ready *os.File) error {
	got := make(chan error, 1)
	go func() {
		var b [1]byte
		n, err := ready.Read(b[:])
		if n == 1 {
			got <- nil
			return
		}
		if err == nil {
			err = errors.New("closed")
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err == nil {
			return nil
		}
		// The helper closed the pipe: it is exiting; wait for its words.
		werr := <-h.waited
		h.waited <- werr
		return h.failure(name, werr)
	case werr := <-h.waited:
		h.waited <- werr
		return h.failure(name, werr)
	}
}

func (h *Handle) failure(name string, err error) error {
	msg := strings.TrimSpace(h.stderr.String())
	if msg == "" && err != nil {
		msg = err.Error()
	}
	return fmt.Errorf("%s failed: %s", name, msg)
}

// helpText runs "bin --help" and returns what it printed.
func helpText(bin string) string {
	out, _ := exec.Command(bin, "--help").CombinedOutput()
	return string(out)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
