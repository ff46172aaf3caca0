package image

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/userns"
)

// HelperName is the fixed argv[0] of the hidden entry that unpacks and
// removes layers as root of a user namespace with the store's id maps: only
// there can files be given the image's owners (your subordinate ids), and
// only there can they be removed again.
const HelperName = "hutch-unpack"

// IsHelper reports whether argv0 names the helper.
func IsHelper(argv0 string) bool { return filepath.Base(argv0) == HelperName }

type helperRequest struct {
	Op    string   `json:"op"` // "unpack" (the tar follows on stdin) or "remove"
	Dir   string   `json:"dir,omitempty"`
	Paths []string `json:"paths,omitempty"`
	// UIDMap and GIDMap are the namespace's maps, for MappedUID/GID.
	UIDMap []userns.Mapping `json:"uid_map,omitempty"`
	GIDMap []userns.Mapping `json:"gid_map,omitempty"`
}

type helperReply struct {
	Stats UnpackStats `json:"stats"`
	Err   string      `json:"err,omitempty"`
	Errno int         `json:"errno,omitempty"`
}

// unpack extracts a layer's tar into dir: in the helper when owners are
// mapped, here when they are squashed to the user.
func (s *Store) unpack(ctx context.Context, r io.Reader, dir string) (UnpackStats, error) {
	if !s.Mapping.Mapped() {
		return Unpack(r, dir, UnpackOptions{})
	}
	rep, err := s.helper(helperRequest{Op: "unpack", Dir: dir}, r)
	if err != nil {
		return UnpackStats{}, err
	}
	return rep.Stats, nil
}

// helper runs one request in a new user namespace whose maps newuidmap and
// newgidmap write: the store's.
func (s *Store) helper(req helperRequest, in io.Reader) (*helperReply, error) {
	m := s.Mapping
	req.UIDMap, req.GIDMap = m.UIDMap, m.GIDMap
	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{HelperName},
		Env:  []string{"GOMAXPROCS=2"},
		SysProcAttr: &syscall.SysProcAttr{
			// The caps it needs as root of its namespace, kept across
			// exec: owners, modes over others' files, file capabilities.
			AmbientCaps: []uintptr{unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_FOWNER, unix.CAP_FSETID, unix.CAP_SETFCAP, unix.CAP_MKNOD},
		},
		Stderr: os.Stderr,
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// A pipe of our own, not StdoutPipe: the goroutine waiting for the
	// helper would close that one under our reads.
	stdout, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	cmd.Stdout = w
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exited, err := userns.Start(ctx, cmd, userns.Helpers{NewUIDMap: m.NewUIDMap, NewGIDMap: m.NewGIDMap}, m.UIDMap, m.GIDMap)
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", HelperName, err)
	}
	// The request goes once the maps are written: the helper waits for it.
	werr := make(chan error, 1)
	go func() {
		b, _ := json.Marshal(req)
		_, err := stdin.Write(append(b, '\n'))
		if err == nil && in != nil {
			_, err = io.Copy(stdin, in)
		}
		stdin.Close()
		werr <- err
	}()
	var rep helperReply
	derr := json.NewDecoder(stdout).Decode(&rep)
	io.Copy(io.Discard, stdout)
	waitErr := <-exited
	inErr := <-werr
	if derr != nil {
		if inErr != nil && !errors.Is(inErr, syscall.EPIPE) {
			return nil, inErr
		}
		return nil, fmt.Errorf("%s ended without a reply (%v)", HelperName, waitErr)
	}
	if rep.Err != "" {
		err := errors.New(rep.Err)
		if rep.Errno != 0 {
			err = fmt.Errorf("%s: %w", rep.Err, syscall.Errno(rep.Errno))
		}
		return &rep, err
	}
	if inErr != nil && !errors.Is(inErr, syscall.EPIPE) {
		// Reading the layer failed (a download cut short, a corrupt gzip).
		return &rep, inErr
	}
	return &rep, nil
}

// HelperMain is hutch-unpack: it reads one request line on stdin (sent once
// its maps are written), does it, and writes a reply on stdout.
func HelperMain() int {
	in := bufio.NewReaderSize(os.Stdin, 1<<16)
	line, err := in.ReadBytes('\n')
	if err != nil {
		fmt.Fprintln(os.Stderr, "hutch-unpack: this is hutch's helper; run hutch instead")
		return 125
	}
	var req helperRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return 125
	}
	var rep helperReply
	switch req.Op {
	case "unpack":
		rep.Stats, err = Unpack(in, req.Dir, UnpackOptions{
			Chown:     true,
			MappedUID: func(id uint32) bool { return userns.Contains(req.UIDMap, id) },
			MappedGID: func(id uint32) bool { return userns.Contains(req.GIDMap, id) },
		})
		// Drain what is left so the sender's digest covers the whole tar.
		io.Copy(io.Discard, in)
	case "remove":
		for _, p := range req.Paths {
			if e := removeTree(p); e != nil && err == nil {
				err = e
			}
		}
	default:
		err = fmt.Errorf("unknown request %q", req.Op)
	}
	if err != nil {
		rep.Err = strings.TrimSpace(err.Error())
		var errno syscall.Errno
		if errors.As(err, &errno) {
			rep.Errno = int(errno)
			rep.Err = strings.TrimSuffix(rep.Err, ": "+errno.Error())
		}
	}
	json.NewEncoder(os.Stdout).Encode(rep)
	return 0
}
