package layers

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Stamp is what a host path looked like: enough to tell that it changed.
// ctime moves on every write, chmod, rename or link change and cannot be
// set back by a user, so an equal stamp means an untouched file.
type Stamp struct {
	Type  Type
	Mode  uint32
	Size  int64
	Mtime int64
	Ctime int64
	Ino   uint64
}

func stampOf(st *unix.Stat_t) Stamp {
	return Stamp{Type: typeOf(st.Mode), Mode: st.Mode & 0o7777, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino}
}

// Same reports whether a host path is as recorded. A directory's times
// move whenever an entry in it comes or goes (our own applies included),
// so only its identity and mode count.
func (s Stamp) Same(o Stamp) bool {
	if s.Type != o.Type || s.Ino != o.Ino || s.Mode != o.Mode {
		return false
	}
	if s.Type == TypeDir {
		return true
	}
	return s.Size == o.Size && s.Mtime == o.Mtime && s.Ctime == o.Ctime
}

// Baseline records a lower tree as it was when a session began, so that
// apply can tell the host's own changes since then from the session's.
type Baseline struct {
	Taken   time.Time
	Entries map[string]Stamp // by slash-separated path relative to the root
}

// TakeBaseline walks root without following symlinks. Directories are
// read in parallel: a project with node_modules has tens of thousands of
// entries, and the walk runs while a sandbox starts.
func TakeBaseline(root string) (*Baseline, error) {
	b := &Baseline{Taken: time.Now(), Entries: map[string]Stamp{}}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	w := &walker{b: b, sem: make(chan struct{}, 8)}
	w.wg.Add(1)
	w.dir(fd, "")
	w.wg.Wait()
	if w.err != nil {
		return nil, w.err
	}
	return b, nil
}

type walker struct {
	b   *Baseline
	mu  sync.Mutex
	wg  sync.WaitGroup
	sem chan struct{}
	err error
}

// dir records the directory open at fd (and closes it), and walks its
// subdirectories, in new goroutines while there is room.
func (w *walker) dir(fd int, rel string) {
	defer w.wg.Done()
	f := os.NewFile(uintptr(fd), rel)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		if rel == "" {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
		}
		return // unreadable: recorded as the directory alone
	}
	local := make(map[string]Stamp, len(names))
	var subdirs []string
	for _, n := range names {
		var st unix.Stat_t
		if unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue
		}
		s := stampOf(&st)
		local[join(rel, n)] = s
		if s.Type == TypeDir {
			subdirs = append(subdirs, n)
		}
	}
	w.mu.Lock()
	for p, s := range local {
		w.b.Entries[p] = s
	}
	w.mu.Unlock()
	for _, n := range subdirs {
		cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		w.wg.Add(1)
		select {
		case w.sem <- struct{}{}:
			go func(cfd int, p string) {
				w.dir(cfd, p)
				<-w.sem
			}(cfd, join(rel, n))
		default:
			w.dir(cfd, join(rel, n))
		}
	}
	f.Close()
}

// Refresh re-records the paths the session has not changed (not in
// touched, and not beneath one of them): a kept session sees the host's
// later edits to files it never wrote, and those are no conflict.
func (b *Baseline) Refresh(root string, touched func(rel string) bool) error {
	fresh, err := TakeBaseline(root)
	if err != nil {
		return err
	}
	for p, s := range fresh.Entries {
		if !touched(p) {
			b.Entries[p] = s
		}
	}
	for p := range b.Entries {
		if _, ok := fresh.Entries[p]; !ok && !touched(p) {
			delete(b.Entries, p)
		}
	}
	b.Taken = fresh.Taken
	return nil
}

// Forget drops p and everything beneath it.
func (b *Baseline) Forget(p string) {
	delete(b.Entries, p)
	for q := range b.Entries {
		if strings.HasPrefix(q, p+"/") {
			delete(b.Entries, q)
		}
	}
}

const baselineHeader = "hutch-baseline 1"

// Save writes the baseline to file atomically.
func (b *Baseline) Save(file string) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".baseline-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	fmt.Fprintf(w, "%s %d\n", baselineHeader, b.Taken.UnixNano())
	paths := make([]string, 0, len(b.Entries))
	for p := range b.Entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	line := make([]byte, 0, 256)
	for _, p := range paths {
		s := b.Entries[p]
		line = append(line[:0], s.Type...)
		line = append(line, ' ')
		line = strconv.AppendUint(line, uint64(s.Mode), 8)
		for _, n := range []int64{s.Size, s.Mtime, s.Ctime} {
			line = append(line, ' ')
			line = strconv.AppendInt(line, n, 10)
		}
		line = append(line, ' ')
		line = strconv.AppendUint(line, s.Ino, 10)
		line = append(line, ' ')
		line = strconv.AppendQuote(line, p)
		line = append(line, '\n')
		w.Write(line)
	}
	// No fsync: a baseline lost to a crash of the machine makes apply ask
	// for --force, and syncing costs more than the walk.
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// LoadBaseline reads what Save wrote.
func LoadBaseline(file string) (*Baseline, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBaseline(f)
}

func readBaseline(r io.Reader) (*Baseline, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() {
		return nil, errors.New("empty baseline")
	}
	var taken int64
	if _, err := fmt.Sscanf(sc.Text(), baselineHeader+" %d", &taken); err != nil {
		return nil, fmt.Errorf("baseline header %q: %v", sc.Text(), err)
	}
	b := &Baseline{Taken: time.Unix(0, taken), Entries: map[string]Stamp{}}
	for sc.Scan() {
		line := sc.Text()
		f := strings.SplitN(line, " ", 7)
		if len(f) != 7 {
			return nil, fmt.Errorf("bad baseline line %q", line)
		}
		var s Stamp
		s.Type = Type(f[0])
		mode, err1 := strconv.ParseUint(f[1], 8, 32)
		size, err2 := strconv.ParseInt(f[2], 10, 64)
		mt, err3 := strconv.ParseInt(f[3], 10, 64)
		ct, err4 := strconv.ParseInt(f[4], 10, 64)
		ino, err5 := strconv.ParseUint(f[5], 10, 64)
		p, err6 := strconv.Unquote(f[6])
		if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
			return nil, fmt.Errorf("bad baseline line %q: %v", line, err)
		}
		s.Mode, s.Size, s.Mtime, s.Ctime, s.Ino = uint32(mode), size, mt, ct, ino
		b.Entries[p] = s
	}
	return b, sc.Err()
}
