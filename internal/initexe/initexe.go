// Package initexe holds hutch-init, the sandbox's PID 1, as the binary
// hutch starts it from.
//
// hutch-init is a small program of its own (cmd/hutch-init): it links the
// PID 1 side only (sandbox/pid1), none of the CLI, the registry client or
// the HTTP proxy, and so starts in about half the CPU time hutch's whole
// binary takes. `make build` embeds it in hutch (build tag
// hutch_embed_init), so that one installed file remains. At run time
// hutch execs it from a per-user cached copy that no one can write
// (cache.go), or else copies it into a memfd, sealed against every
// change: hutch's own binary is never init's executable, so no handle to
// /proc/1/exe can write it (runc's CVE-2019-5736), nor init's file.
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

// Sum is the sha256 of Bytes in hex, which names its cached copy: set by
// `make build` at link time (-X), or by the tests from the bytes. Without
// it init always runs from the memfd.
var Sum string

// Seals are what the memfd holding init is sealed with: nothing can
// change its contents or its size, nor remove a seal.
const Seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

var (
	once    sync.Once
	exe     *os.File
	loadErr error
)

// File returns hutch-init opened for exec, on the first call (it stays
// open, close-on-exec, for the process's life; later calls return the
// same file, whatever runtime): its cached copy under runtime, hutch's
// per-user runtime directory, or else a sealed memfd; nil without an
// embedded init: the caller then execs /proc/self/exe. The cache never
// fails a run: any trouble with it, and the memfd is used.
func File(runtime string) (*os.File, error) {
	if Bytes == nil {
		return nil, nil
	}
	once.Do(func() {
		if Sum != "" {
			if exe, loadErr = cached(runtime, Sum, Bytes); loadErr == nil {
				return
			}
		}
		exe, loadErr = load(Bytes)
	})
	return exe, loadErr
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
