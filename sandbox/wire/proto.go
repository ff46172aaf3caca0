package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unsafe"

	"github.com/hutch-sandbox/hutch/internal/bytesjson"
	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/sandbox/model"
	"golang.org/x/sys/unix"
)

// The supervisor and hutch-init talk over two channels (docs/internals.md):
//
//   - fd 3 in init, a pipe from the supervisor: one length-prefixed JSON
//     Config (strings that are not UTF-8 as internal/bytesjson sends them), written after the id maps are in place. The supervisor
//     keeps its end open for its whole life, so EOF tells init that the
//     supervisor is gone.
//   - fd 4 in init, a SOCK_SEQPACKET socket to the supervisor: one JSON
//     message per packet; the pty master travels with a message as
//     SCM_RIGHTS.
const (
	ConfigFD = 3
	StatusFD = 4
	FirstFD  = 5 // preserved fds start here in init, at 3 in the command
)

// Config is everything init needs: the plan, and facts of this launch.
type Config struct {
	Plan    *model.Plan `json:"plan"`
	RootDir string      `json:"root_dir"` // an empty host directory to build the root on
	Winsize *Winsize    `json:"winsize,omitempty"`
	// StdioTTY says which of the caller's fds 0-2 are terminals: those are
	// replaced by the pty's slave.
	StdioTTY [3]bool `json:"stdio_tty"`
	UsePTY   bool    `json:"use_pty"`
	// NeedNet says a NetFrame follows on fd 3 once the user-mode network
	// helper has configured the namespace; init waits for it before it
	// starts the command.
	NeedNet bool `json:"need_net,omitempty"`
	// Hold keeps the command from starting once the root is built: init
	// reports Status.Held and waits for a NetFrame with Start (OCI's
	// create, then start). A signal that would end the command ends the
	// held sandbox instead.
	Hold bool `json:"hold,omitempty"`
	// Seccomp is the compiled filter for the command, as the kernel's
	// struct sock_filter array in raw bytes (JSON of 200 small structs
	// costs a noticeable part of a millisecond each way); empty for none.
	Seccomp []byte `json:"seccomp,omitempty"`
	// SeccompExtra is a second filter, installed after Seccomp (an OCI
	// bundle's own); empty for none.
	SeccompExtra []byte `json:"seccomp_extra,omitempty"`
	// Listeners are the pathname unix sockets bound in the caller's
	// network namespace (/proc/net/unix): init covers those inside binds.
	Listeners []string `json:"listeners,omitempty"`
	// Layers says how to mount the plan's overlays (overlay_init.go).
	Layers *LayersInit `json:"layers,omitempty"`
	// TimingOrigin, when not 0, asks init to print its phases (--debug-timing).
	TimingOrigin int64 `json:"timing_origin,omitempty"`
	// NoRedirect keeps network mode proxy to the explicit proxy, without
	// the transparent redirect rules: set only by the test binary's hook
	// (supervise.NoRedirect), to test the fallback.
	NoRedirect bool `json:"no_redirect,omitempty"`
}

// NetFrame follows Config on fd 3 when NeedNet is set.
type NetFrame struct {
	Ready bool `json:"ready,omitempty"`
	// Start releases a held command (Config.Hold).
	Start bool   `json:"start,omitempty"`
	Error string `json:"error,omitempty"`
}

// Request is a message from the supervisor to init on fd 4.
type Request struct {
	// Connect asks init to connect to a port on the sandbox's loopback and
	// send back the connected socket: how published ports get in without
	// any route from the host into the namespace.
	Connect *ConnRequest `json:"connect,omitempty"`
}

type ConnRequest struct {
	ID   uint64 `json:"id"`
	Port int    `json:"port"`
	// Proto is "tcp" ("" too) or "udp" (a connected UDP socket).
	Proto string `json:"proto,omitempty"`
}

// ConnReply answers a ConnRequest; on success the socket is attached.
type ConnReply struct {
	ID  uint64 `json:"id"`
	Err string `json:"err,omitempty"`
}

type Winsize struct {
	Rows, Cols uint16
}

// Status is a message from init to the supervisor.
type Status struct {
	// Exactly one of these is set.
	Error   *InitError `json:"error,omitempty"`   // setup failed
	PTY     bool       `json:"pty,omitempty"`     // the pty master is attached
	Started int        `json:"started,omitempty"` // the command runs (its pid inside)
	Held    bool       `json:"held,omitempty"`    // the root is built; the command waits for Start
	Exit    *ExitInfo  `json:"exit,omitempty"`    // the command ended
	// ProxyListener: the allowlist proxy's listening socket, opened inside
	// the sandbox's net namespace, is attached.
	ProxyListener bool `json:"proxy_listener,omitempty"`
	// DNSSocket: the UDP socket on 127.0.0.1:53 inside the sandbox's net
	// namespace (network modes none and proxy) is attached; the supervisor answers
	// the command's lookups on it.
	DNSSocket bool `json:"dns_socket,omitempty"`
	// DNSListener: the TCP listener on 127.0.0.1:53 inside, beside the
	// DNSSocket, is attached.
	DNSListener bool       `json:"dns_listener,omitempty"`
	Conn        *ConnReply `json:"conn,omitempty"`
	// Redirect says whether init installed the transparent redirect
	// rules (network mode proxy); on success a netfilter netlink socket
	// inside the namespace is attached, to read the refused UDP from.
	Redirect *Redirect `json:"redirect,omitempty"`
	// HelperDied names a helper of init's that died (fuse-overlayfs):
	// the sandbox cannot go on without it.
	HelperDied string `json:"helper_died,omitempty"`
	// Service is a service's change of state (docs/services.md).
	Service *ServiceEvent `json:"service,omitempty"`
}

// ServiceEvent is a service's change of state, in the order they happen:
// "ready", then "exited" if it ends before hutch stops it; or "failed"
// when it never became ready (Reason says why).
type ServiceEvent struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Code   int    `json:"code,omitempty"`
	Signal int    `json:"signal,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Redirect is the outcome of installing the redirect rules.
type Redirect struct {
	// Err says why they are not in place; "" when they are.
	Err string `json:"err,omitempty"`
}

type InitError struct {
	Msg     string                 `json:"msg"`
	Hint    string                 `json:"hint,omitempty"`
	Command model.CommandErrorKind `json:"command,omitempty"` // set when the command could not be started
	Name    string                 `json:"name,omitempty"`
}

type ExitInfo struct {
	Code   int `json:"code"`
	Signal int `json:"signal,omitempty"`
	// Home is what the command left in a temporary home (homewrites.go).
	Home *model.HomeWrites `json:"home,omitempty"`
	// Usage is what the command's tree used, as its PID 1 measured it.
	Usage *Usage `json:"usage,omitempty"`
}

// Usage is the resources a command's tree used, measured by the PID 1
// that reaped it: the supervisor cannot wait for processes across the
// pid namespace, and its own wait for hutch-init would count init too.
type Usage struct {
	// WallNS is from the fork of the command to its reaping (CLOCK_MONOTONIC).
	WallNS int64 `json:"wall_ns"`
	// UserUS and SysUS are getrusage(RUSAGE_CHILDREN) of that PID 1 once
	// the command was reaped: the command and each descendant reaped by
	// then (by its parent, or by PID 1 as an orphan).
	UserUS int64 `json:"user_us"`
	SysUS  int64 `json:"sys_us"`
	// MaxRSSKiB is the largest resident set of any one of those processes
	// (ru_maxrss of RUSAGE_CHILDREN: a maximum, not a sum).
	MaxRSSKiB int64 `json:"max_rss_kib"`
}

func WriteFrame(w io.Writer, v any) error {
	data, err := bytesjson.MarshalFrame(v)
	if err != nil {
		return err
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(data)))
	if _, err := w.Write(append(hdr[:], data...)); err != nil {
		return err
	}
	return nil
}

const maxFrame = 64 << 20

func ReadFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return fmt.Errorf("frame of %d bytes is too large", n)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return err
	}
	return bytesjson.UnmarshalFrame(data, v)
}

// FilterBytes and BytesFilter convert a BPF program to and from the raw
// bytes Config carries.
func FilterBytes(prog []unix.SockFilter) []byte {
	if len(prog) == 0 {
		return nil
	}
	n := len(prog) * int(unsafe.Sizeof(prog[0]))
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), n)...)
}

func BytesFilter(b []byte) []unix.SockFilter {
	size := int(unsafe.Sizeof(unix.SockFilter{}))
	if len(b) == 0 || len(b)%size != 0 {
		return nil
	}
	out := make([]unix.SockFilter, len(b)/size)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), len(b)), b)
	return out
}

// Err is the error init reported, as the CLI words it.
func (e *InitError) Err() error {
	if e.Command != 0 {
		return &model.CommandError{Kind: e.Command, Name: e.Name, Msg: e.Msg}
	}
	err := errors.New(e.Msg)
	if e.Hint != "" {
		return &hint.Error{Err: err, Tip: e.Hint}
	}
	return err
}
