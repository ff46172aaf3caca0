// Package initexe holds hutch-init, the sandbox's PID 1, as the binary
// hutch starts it from.
//
// hutch-init is a small program of its own (cmd/hutch-init): it links the
// PID 1 side only (sandbox/pid1), none of the CLI, the registry client or
// the HTTP proxy, and so starts in about half the CPU time hutch's whole
// binary takes. `make build` embeds it in hutch (build tag
// hutch_embed_init), so that one installed file remains. At run time
// hutch copies it into a memfd, seals it against every change, and the
// supervisor execs that: no file on disk is ever init's executable, so no
// handle to /proc/1/exe can write hutch's binary (runc's CVE-2019-5736).
//
// A build without the tag (plain `go build` or `go install` of
// ./cmd/hutch) has no embedded init: hutch-init is then hutch itself,
// re-executed through /proc/self/exe under the argv[0] "hutch-init",
// with the same privileges (docs/security.md, "Build variants").
package initexe

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/mutate"
)

// Bytes is the hutch-init binary: embedded by `make build`, or set by the
// tests (cmd/hutch's TestMain builds ./cmd/hutch-init); nil in a build
// without it.
var Bytes []byte

// Seals are what the memfd holding init is sealed with: nothing can
// change its contents or its size, nor remove a seal.
const Seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

var (
	once    sync.Once
	memfd   *os.File
	loadErr error
)

// File returns the sealed memfd holding hutch-init, made on the first
// call (it stays open, close-on-exec, for the process's life); nil
// without an embedded init: the caller then execs /proc/self/exe.
func File() (*os.File, error) {
	if Bytes == nil {
		return nil, nil
	}
	once.Do(func() { memfd, loadErr = load(Bytes) })
	return memfd, loadErr
}

// load copies bin into a new memfd and seals it.
func load(bin []byte) (*os.File, error) {
	// MFD_EXEC says the memfd is to be executed, where vm.memfd_noexec
	// (Linux 6.3) would otherwise make it not; older kernels refuse the
	// flag (EINVAL) and execute any memfd.
	fd, err := unix.MemfdCreate("hutch-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL {
		fd, err = unix.MemfdCreate("hutch-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, hint.With(fmt.Errorf("loading hutch-init into memory: memfd_create: %w", err),
			"vm.memfd_noexec = 2 forbids executable memfds; a hutch built without the embedded init (go build ./cmd/hutch) re-executes itself instead")
	}
	f := os.NewFile(uintptr(fd), "hutch-init")
	for b := bin; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("loading hutch-init: writing its memfd: %w", err)
		}
		b = b[n:]
	}
	if mutate.Off("init-seal") {
		return f, nil
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, Seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("loading hutch-init: sealing its memfd: %w", err)
	}
	return f, nil
}
