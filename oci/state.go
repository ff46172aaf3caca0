package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/internal/mutate"
)

// Container states (runtime-spec, runtime.md), and "creating" while the
// supervisor builds the sandbox.
const (
	Creating = "creating"
	Created  = "created"
	Running  = "running"
	Stopped  = "stopped"
)

// OCIVersion is the runtime-spec version hutch's state answers with.
const OCIVersion = "1.0.2"

// record is a container's state file, state.json in its state directory.
// The caller writes it; root may read it (delete) and must trust none of
// it but what it checks: the pids are signalled only when the process's
// owner and start time match (proc.go), and no path in it is ever used.
type record struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Pid         int               `json:"pid,omitempty"`
	PidStart    uint64            `json:"pid_start,omitempty"`
	Super       int               `json:"supervisor"`
	SuperStart  uint64            `json:"supervisor_start"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Created     time.Time         `json:"created"`
	ExitCode    *int              `json:"exit_code,omitempty"`
}

// State is what hutch oci state prints (runtime-spec's state, and when
// the container was created).
type State struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Pid         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Created     time.Time         `json:"created"`
}

// Names in a state directory; nothing else is ever made there.
const (
	stateFile = "state.json"
	ctlSocket = "ctl"
	tmpPrefix = ".state-"
)

// maxState bounds a state file read (root reads files the caller wrote).
const maxState = 64 << 10

// validID is runc's rule for container ids (^[A-Za-z0-9_+\-.]+$), with a
// length bound. A loop, not a regexp: compiling `{1,200}` cost 0.7 ms at
// the start of every hutch command (issue 20).
func validID(id string) bool {
	if len(id) < 1 || len(id) > 200 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '_', c == '+', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// CheckID refuses an id that is not a plain name.
func CheckID(id string) error {
	if !validID(id) || id == "." || id == ".." {
		return fmt.Errorf("container id %q is invalid: use letters, digits, '_', '+', '-' and '.' (at most 200), not . or ..", id)
	}
	return nil
}

// DefaultRoot is where containers' state lives: $XDG_RUNTIME_DIR/hutch/oci.
func DefaultRoot() (string, error) {
	d := os.Getenv("XDG_RUNTIME_DIR")
	if d == "" || !filepath.IsAbs(d) {
		return "", hint.With(errors.New("XDG_RUNTIME_DIR is not set, so hutch oci has no state directory"),
			"pass --root DIR (a directory of yours, such as /run/user/%d/hutch/oci)", os.Getuid())
	}
	return filepath.Join(d, "hutch", "oci"), nil
}

// store is an opened state root: a directory reached without following
// any symlink, owned by its caller (or by root).
type store struct {
	path string
	fd   int
	uid  uint32 // the root directory's owner
}

// openStore opens root with no symlink on the way (openat2
// RESOLVE_NO_SYMLINKS), so that root, deleting a user's container, never
// lands outside the directory its command line names. create makes it
// (0700) when missing.
func openStore(root string, create bool) (*store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("--root %s is not an absolute path", root)
	}
	root = filepath.Clean(root)
	if create {
		if err := os.MkdirAll(root, 0o700); err != nil {
			return nil, fmt.Errorf("creating the state directory %s: %w", root, err)
		}
	}
	fd, err := openat2(unix.AT_FDCWD, root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("opening the state directory %s: %w", root, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if st.Mode&0o022 != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("the state directory %s is writable by others", root)
	}
	if uid := uint32(os.Getuid()); uid != 0 && st.Uid != uid {
		unix.Close(fd)
		return nil, fmt.Errorf("the state directory %s is not yours", root)
	}
	return &store{path: root, fd: fd, uid: st.Uid}, nil
}

func (s *store) close() { unix.Close(s.fd) }

// openat2 opens name beneath dir without following any symlink, magic
// links (/proc/self/fd/N) included.
func openat2(dir int, name string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags) | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	if mutate.Off("oci-nofollow") {
		how = unix.OpenHow{Flags: uint64(flags)}
	}
	for {
		fd, err := unix.Openat2(dir, name, &how)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// container is one container's state directory, opened.
type container struct {
	s   *store
	id  string
	fd  int
	uid uint32 // its owner: the only uid its pids may belong to
}

// errNotExist: no container has that id.
var errNotExist = errors.New("no such container")

// open opens the state directory of id, beneath the store, checking that
// it is a directory owned by the store's owner (or, in a store of root's,
// by anyone but another's) and closed to others.
func (s *store) open(id string) (*container, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	fd, err := openat2(s.fd, id, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("container %s: %w", id, errNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: opening its state directory: %w", id, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if st.Uid != s.uid && s.uid != 0 || st.Mode&0o077 != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("container %s: its state directory is not its owner's alone (uid %d, mode %o)", id, st.Uid, st.Mode&0o7777)
	}
	return &container{s: s, id: id, fd: fd, uid: st.Uid}, nil
}

// create makes the state directory of a new id (0700).
func (s *store) create(id string) (*container, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	if err := unix.Mkdirat(s.fd, id, 0o700); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("container %s already exists (hutch oci delete %s removes it)", id, id)
		}
		return nil, fmt.Errorf("container %s: creating its state directory: %w", id, err)
	}
	return s.open(id)
}

func (c *container) close() { unix.Close(c.fd) }

// dir is the state directory's path through the opened handle: for the
// caller's own use (the control socket), never root's.
func (c *container) dir() string { return "/proc/self/fd/" + strconv.Itoa(c.fd) }

// read reads state.json: a regular file of the directory's owner, read
// without following a link, without blocking on a FIFO, and bounded.
func (c *container) read() (*record, error) {
	fd, err := openat2(c.fd, stateFile, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("container %s: reading its state: %w", c.id, err)
	}
	f := os.NewFile(uintptr(fd), stateFile)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != c.uid {
		return nil, fmt.Errorf("container %s: its state file is not a regular file of its owner's", c.id)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxState+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxState {
		return nil, fmt.Errorf("container %s: its state file is larger than %d bytes", c.id, maxState)
	}
	var r record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("container %s: its state file: %w", c.id, err)
	}
	if r.ID != c.id {
		return nil, fmt.Errorf("container %s: its state file names %q", c.id, r.ID)
	}
	return &r, nil
}

// write replaces state.json through a temporary file: a reader sees the
// old state or the new, never half of one. Only the owner writes.
func (c *container) write(r *record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := tmpPrefix + strconv.Itoa(os.Getpid())
	fd, err := unix.Openat(c.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("container %s: writing its state: %w", c.id, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(c.fd, tmp, c.fd, stateFile)
	}
	if err != nil {
		unix.Unlinkat(c.fd, tmp, 0)
		return fmt.Errorf("container %s: writing its state: %w", c.id, err)
	}
	return nil
}

// remove unlinks the names hutch makes in the state directory, never
// following anything (unlinkat removes a link, not its target), then the
// directory itself. A directory holding anything else stays, named.
func (c *container) remove() error {
	names := []string{stateFile, ctlSocket}
	if ents, err := readNames(c.fd); err == nil {
		for _, n := range ents {
			if strings.HasPrefix(n, tmpPrefix) {
				names = append(names, n)
			}
		}
	}
	for _, n := range names {
		if err := unix.Unlinkat(c.fd, n, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("container %s: removing %s: %w", c.id, n, err)
		}
	}
	if err := unix.Unlinkat(c.s.fd, c.id, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("container %s: removing its state directory %s: %w", c.id, filepath.Join(c.s.path, c.id), err)
	}
	return nil
}

// readNames lists a directory through a fresh handle of it.
func readNames(dirfd int) ([]string, error) {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), ".")
	defer f.Close()
	return f.Readdirnames(1024)
}
