package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/userns"
)

// Mapping is the id mapping layers are unpacked with: the sandbox's, so
// that an image's uid N shows as N inside. Nil maps squash every owner to
// the user (no subordinate ids).
type Mapping struct {
	UIDMap, GIDMap       []userns.Mapping
	NewUIDMap, NewGIDMap string
}

// Mapped reports whether owners are kept (a subordinate range is mapped).
func (m Mapping) Mapped() bool { return len(m.UIDMap) > 0 && len(m.GIDMap) > 0 }

// key names the layer directory for this mapping.
func (m Mapping) key() string {
	if !m.Mapped() {
		return "squash"
	}
	h := sha256.Sum256([]byte(userns.Format(m.UIDMap) + "/" + userns.Format(m.GIDMap)))
	return "map-" + hex.EncodeToString(h[:6])
}

// Store is the user's image store.
type Store struct {
	Dir     string
	Mapping Mapping
	// Pins are layer directories (LayerPath's) that prune keeps although
	// no stored image lists them: kept sessions made on them.
	Pins []string
}

// Image is one named image in the store.
type Image struct {
	// Name is the image's name: a registry reference as DisplayName shows
	// it, or the name given on import.
	Name string `json:"name"`
	// Source is where it came from (a reference, or KIND:PATH).
	Source string `json:"source"`
	// Digest is the manifest's digest; ID the config's (as docker's image
	// ID).
	Digest   string `json:"digest"`
	ID       string `json:"id"`
	Platform string `json:"platform"`
	// Layers are the diff IDs, bottom first.
	Layers []string `json:"layers"`
	// Size is the bytes of file contents in its layers.
	Size int64 `json:"size"`
	// DevicesSkipped counts the device nodes its layers held, which a
	// rootless unpack cannot make (a sandbox's /dev is hutch's own).
	DevicesSkipped int       `json:"devices_skipped,omitempty"`
	Created        time.Time `json:"created,omitempty"`
	Stored         time.Time `json:"stored"`
}

type indexFile struct {
	Version int     `json:"version"`
	Images  []Image `json:"images"`
}

// layerMeta is layer.json: what a layer held.
type layerMeta struct {
	DiffID string      `json:"diff_id"`
	Digest string      `json:"digest,omitempty"`
	Stats  UnpackStats `json:"stats"`
	Stored time.Time   `json:"stored"`
}

// DefaultDir is the store's directory under hutch's data dir.
func DefaultDir(dataDir string) string { return filepath.Join(dataDir, "images") }

// Open opens (creating) the store at dir for a mapping.
func Open(dir string, m Mapping) (*Store, error) {
	s := &Store{Dir: dir, Mapping: m}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("creating the image store: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("creating the image store: %w", err)
	}
	// The store may hold setuid files owned by you or your subordinate ids:
	// nobody else may reach them.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("securing the image store %s: %w", dir, err)
	}
	for _, d := range []string{s.blobDir(), s.layerDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating the image store: %w", err)
		}
	}
	return s, nil
}

func (s *Store) blobDir() string  { return filepath.Join(s.Dir, "blobs", "sha256") }
func (s *Store) layerDir() string { return filepath.Join(s.Dir, "layers", s.Mapping.key()) }

// LayerPath is where the layer with diff ID d is unpacked.
func (s *Store) LayerPath(d string) string {
	return filepath.Join(s.layerDir(), digestHex(d), "fs")
}

func digestHex(d string) string { return strings.TrimPrefix(d, "sha256:") }

// lockFile takes an flock on path (created), exclusive or shared, waiting.
func lockFile(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// withIndex runs fn on the index under the store's lock and writes it back
// when fn reports a change.
func (s *Store) withIndex(fn func(*indexFile) (bool, error)) error {
	l, err := lockFile(filepath.Join(s.Dir, "lock"), unix.LOCK_EX)
	if err != nil {
		return fmt.Errorf("locking the image store: %w", err)
	}
	defer l.Close()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	changed, err := fn(idx)
	if err != nil || !changed {
		return err
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.Dir, "index.json"), append(b, '\n'))
}

func (s *Store) readIndex() (*indexFile, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir, "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return &indexFile{Version: 1}, nil
	}
	if err != nil {
		return nil, err
	}
	var idx indexFile
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("reading %s: %w (remove it and pull your images again)", filepath.Join(s.Dir, "index.json"), err)
	}
	return &idx, nil
}

// writeFileAtomic writes a file through a temporary one, synced and
// renamed: a crash leaves the old or the new, never half of one.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// List returns the stored images, sorted by name.
func (s *Store) List() ([]Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	sort.Slice(idx.Images, func(i, j int) bool { return idx.Images[i].Name < idx.Images[j].Name })
	return idx.Images, nil
}

// ErrNotFound is returned when no stored image has the name.
var ErrNotFound = errors.New("image not found in the store")

// find looks an image up by name (as the user wrote it), by a source
// string as given to import, or by a prefix of its ID of at least 6 hex
// digits.
func find(images []Image, want string) (int, error) {
	norm, nerr := NormalizeName(want)
	for i, im := range images {
		if im.Name == want || nerr == nil && im.Name == norm || im.Source == want {
			return i, nil
		}
	}
	id := strings.TrimPrefix(want, "sha256:")
	if len(id) >= 6 && isHex(id) {
		found := -1
		for i, im := range images {
			if strings.HasPrefix(digestHex(im.ID), id) {
				if found >= 0 && images[found].ID != im.ID {
					return -1, fmt.Errorf("%q matches more than one image ID; give more of it", want)
				}
				found = i
			}
		}
		if found >= 0 {
			return found, nil
		}
	}
	return -1, fmt.Errorf("%s: %w", want, ErrNotFound)
}

func isHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// Get returns the stored image named want.
func (s *Store) Get(want string) (*Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	i, err := find(idx.Images, want)
	if err != nil {
		return nil, err
	}
	return &idx.Images[i], nil
}

// hasLayer reports whether the layer with diff ID d is unpacked.
func (s *Store) hasLayer(d string) bool {
	_, err := os.Stat(filepath.Join(s.layerDir(), digestHex(d), "layer.json"))
	return err == nil
}

// putIndex records im, replacing an image of the same name; replaced
// reports whether it did, with another digest.
func (s *Store) putIndex(im Image) (replaced bool, err error) {
	err = s.withIndex(func(idx *indexFile) (bool, error) {
		for i := range idx.Images {
			if idx.Images[i].Name == im.Name {
				replaced = idx.Images[i].Digest != im.Digest
				idx.Images[i] = im
				return true, nil
			}
		}
		idx.Images = append(idx.Images, im)
		return true, nil
	})
	return replaced, err
}

// Remove drops the named images from the index and frees the layers no
// other image uses. It returns the names removed.
func (s *Store) Remove(names []string) ([]string, error) {
	var removed []string
	err := s.withIndex(func(idx *indexFile) (bool, error) {
		for _, n := range names {
			i, err := find(idx.Images, n)
			if err != nil {
				return len(removed) > 0, err
			}
			removed = append(removed, idx.Images[i].Name)
			idx.Images = append(idx.Images[:i], idx.Images[i+1:]...)
		}
		return true, nil
	})
	if err != nil {
		return removed, err
	}
	_, err = s.Prune()
	return removed, err
}

// PruneReport says what Prune freed.
type PruneReport struct {
	Layers  int   `json:"layers"`
	Blobs   int   `json:"blobs"`
	Partial int   `json:"partial"`
	Bytes   int64 `json:"bytes"`
	Skipped bool  `json:"skipped,omitempty"` // layers in use by running sandboxes: left alone
	Pinned  int   `json:"pinned,omitempty"`  // layers kept for sessions made on them
}

// ErrInUse is returned when layers cannot be freed because a sandbox runs
// on them.
var ErrInUse = errors.New("images are in use by running sandboxes or pulls")

// Prune frees what no stored image needs: unreferenced layers (of every
// mapping), manifests and configs, partial downloads and leftovers of
// interrupted unpacks. Running sandboxes and pulls hold the store's gc
// lock shared (a pull's new layers are unreferenced until it records the
// image); Prune needs it exclusive and does not wait.
func (s *Store) Prune() (PruneReport, error) {
	var rep PruneReport
	gc, err := os.OpenFile(filepath.Join(s.Dir, "gc.lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return rep, err
	}
	defer gc.Close()
	if err := unix.Flock(int(gc.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		rep.Skipped = true
		return rep, fmt.Errorf("%w: their layers stay until they end (then run hutch image prune)", ErrInUse)
	}
	l, err := lockFile(filepath.Join(s.Dir, "lock"), unix.LOCK_EX)
	if err != nil {
		return rep, err
	}
	defer l.Close()
	idx, err := s.readIndex()
	if err != nil {
		return rep, err
	}
	keepLayers, keepBlobs := map[string]bool{}, map[string]bool{}
	for _, im := range idx.Images {
		for _, d := range im.Layers {
			keepLayers[digestHex(d)] = true
		}
		keepBlobs[digestHex(im.Digest)], keepBlobs[digestHex(im.ID)] = true, true
	}
	pinned := map[string]bool{}
	for _, p := range s.Pins {
		pinned[filepath.Clean(p)] = true
	}
	var doomed []string
	maps, _ := os.ReadDir(filepath.Join(s.Dir, "layers"))
	for _, m := range maps {
		dir := filepath.Join(s.Dir, "layers", m.Name())
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			n := e.Name()
			switch {
			case strings.HasPrefix(n, ".tmp-"):
				// An unpack killed midway; a live one holds its layer's
				// lock, which a pull takes before making the directory.
				if lockFree(filepath.Join(dir, tmpLayerHex(n)+".lock")) {
					doomed = append(doomed, filepath.Join(dir, n))
				}
			case strings.HasSuffix(n, ".lock"):
				if !keepLayers[strings.TrimSuffix(n, ".lock")] && lockFree(filepath.Join(dir, n)) {
					os.Remove(filepath.Join(dir, n))
				}
			case e.IsDir() && !keepLayers[n]:
				if pinned[filepath.Join(dir, n, "fs")] {
					rep.Pinned++
					continue
				}
				if lockFree(filepath.Join(dir, n+".lock")) {
					rep.Layers++
					rep.Bytes += layerSize(filepath.Join(dir, n))
					// Out of the way first, in one rename: a prune killed
					// midway must not leave a half-removed layer that a
					// later pull would take as stored.
					gone := filepath.Join(dir, fmt.Sprintf(".tmp-%s-gc%d", n, time.Now().UnixNano()))
					if err := os.Rename(filepath.Join(dir, n), gone); err != nil {
						return rep, err
					}
					doomed = append(doomed, gone)
				}
			}
		}
	}
	blobs, _ := os.ReadDir(s.blobDir())
	for _, e := range blobs {
		n := e.Name()
		p := filepath.Join(s.blobDir(), n)
		if strings.HasSuffix(n, ".partial") || strings.HasPrefix(n, ".tmp-") {
			if lockFree(filepath.Join(s.layerDir(), strings.TrimSuffix(n, ".partial")+".lock")) {
				if fi, err := e.Info(); err == nil {
					rep.Bytes += fi.Size()
				}
				rep.Partial++
				os.Remove(p)
			}
			continue
		}
		if !keepBlobs[n] {
			if fi, err := e.Info(); err == nil {
				rep.Bytes += fi.Size()
			}
			rep.Blobs++
			os.Remove(p)
		}
	}
	// An OCI archive extracted for an import, or an index write, cut short
	// by kill -9: no pull runs now (each holds the gc lock), so they are
	// nobody's.
	tops, _ := os.ReadDir(s.Dir)
	for _, e := range tops {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			doomed = append(doomed, filepath.Join(s.Dir, e.Name()))
		}
	}
	if err := s.removeAll(doomed); err != nil {
		return rep, err
	}
	return rep, nil
}

// tmpLayerHex is the layer of a ".tmp-HEX-RANDOM" directory.
func tmpLayerHex(n string) string {
	n = strings.TrimPrefix(n, ".tmp-")
	if i := strings.LastIndex(n, "-"); i > 0 {
		return n[:i]
	}
	return n
}

// lockFree reports whether nobody holds the flock on path (or it does not
// exist).
func lockFree(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return true
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

func layerSize(dir string) int64 { return layerStats(dir).Bytes }

// layerStats is what an unpacked layer held, from its layer.json.
func layerStats(dir string) UnpackStats {
	b, err := os.ReadFile(filepath.Join(dir, "layer.json"))
	if err != nil {
		return UnpackStats{}
	}
	var m layerMeta
	json.Unmarshal(b, &m)
	return m.Stats
}

// removeAll removes trees of the store. Files owned by subordinate ids can
// only be removed from a user namespace holding them: with a mapping, the
// helper does it.
func (s *Store) removeAll(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	var foreignPaths []string
	for _, p := range paths {
		if err := removeTree(p); err != nil {
			if !s.Mapping.Mapped() {
				return err
			}
			foreignPaths = append(foreignPaths, p)
		}
	}
	if len(foreignPaths) == 0 {
		return nil
	}
	_, err := s.helper(helperRequest{Op: "remove", Paths: foreignPaths}, nil)
	return err
}

// removeTree removes p, making directories writable on the way (a layer
// may hold 0555 directories).
func removeTree(p string) error {
	err := os.RemoveAll(p)
	if err == nil {
		return nil
	}
	filepath.WalkDir(p, func(q string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}

// Root is a stored image ready to be a sandbox's root.
type Root struct {
	Image *Image
	// Layers are the unpacked layer directories, top first, as overlay's
	// lowerdir lists them.
	Layers []string
	Config v1.Config
	// unlock releases the gc lock that keeps the layers from being pruned.
	gc *os.File
}

// Close lets prune free the image's layers again.
func (r *Root) Close() {
	if r != nil && r.gc != nil {
		r.gc.Close()
		r.gc = nil
	}
}

// Root opens the stored image want for a sandbox. Until Close, prune
// leaves its layers alone.
func (s *Store) Root(want string) (*Root, error) {
	gc, err := lockFile(filepath.Join(s.Dir, "gc.lock"), unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	im, err := s.Get(want)
	if err != nil {
		gc.Close()
		return nil, err
	}
	r := &Root{Image: im, gc: gc}
	seen := map[string]bool{}
	for i := len(im.Layers) - 1; i >= 0; i-- {
		if !s.hasLayer(im.Layers[i]) {
			gc.Close()
			return nil, &MissingLayersError{Name: im.Name, Source: im.Source}
		}
		// A layer can appear twice (two identical RUN steps); overlay
		// refuses a lower twice. The topmost copy holds everything the
		// lower one does, so the view is the same without it.
		if p := s.LayerPath(im.Layers[i]); !seen[p] {
			seen[p] = true
			r.Layers = append(r.Layers, p)
		}
	}
	b, err := os.ReadFile(filepath.Join(s.blobDir(), digestHex(im.ID)))
	if err != nil {
		gc.Close()
		return nil, fmt.Errorf("reading the config of %s: %w", im.Name, err)
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(b, &cf); err != nil {
		gc.Close()
		return nil, fmt.Errorf("reading the config of %s: %w", im.Name, err)
	}
	r.Config = cf.Config
	return r, nil
}

// MissingLayersError is an image whose layers are not unpacked for the
// current id mapping (the user's subordinate ids changed since the pull).
type MissingLayersError struct{ Name, Source string }

func (e *MissingLayersError) Error() string {
	return fmt.Sprintf("image %s is stored, but not unpacked for your current id mapping (your /etc/subuid range or process.idmap changed since it was pulled)", e.Name)
}
