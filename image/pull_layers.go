package image

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// progress serializes updates from the layer goroutines.
type progress struct {
	mu sync.Mutex
	fn func(Progress)
	p  Progress
}

func (p *progress) send() {
	if p.fn != nil {
		p.fn(p.p)
	}
}

func (p *progress) add(n int64) {
	p.mu.Lock()
	p.p.Done += n
	p.send()
	p.mu.Unlock()
}

func (p *progress) layerDone() {
	p.mu.Lock()
	p.p.LayersDone++
	p.send()
	p.mu.Unlock()
}

type countingWriter struct{ p *progress }

func (w countingWriter) Write(b []byte) (int, error) {
	w.p.add(int64(len(b)))
	return len(b), nil
}

// ensureLayer makes sure the layer is unpacked, fetching it if not, and
// returns its content size. Two pulls needing the same layer take turns on
// its lock; the second finds it done.
func (s *Store) ensureLayer(ctx context.Context, so *source, l v1.Layer, d v1.Descriptor, diffID string, pr *progress) (UnpackStats, error) {
	if !strings.HasPrefix(diffID, "sha256:") || len(digestHex(diffID)) != 64 || !isHex(digestHex(diffID)) {
		return UnpackStats{}, fmt.Errorf("%s: layer diff ID %q is not a sha256 digest", so.desc, diffID)
	}
	hexID := digestHex(diffID)
	final := filepath.Join(s.layerDir(), hexID)
	if s.hasLayer(diffID) {
		if so.client != nil {
			pr.add(d.Size)
		}
		return layerStats(final), nil
	}
	lock, err := lockFile(filepath.Join(s.layerDir(), hexID+".lock"), unix.LOCK_EX)
	if err != nil {
		return UnpackStats{}, storeError(fmt.Errorf("locking layer %s: %w", short(diffID), err), s.Dir)
	}
	defer lock.Close()
	if s.hasLayer(diffID) {
		if so.client != nil {
			pr.add(d.Size)
		}
		return layerStats(final), nil
	}
	// Leftovers of an unpack that was killed: we hold the lock, so they
	// are nobody's.
	if ents, err := os.ReadDir(s.layerDir()); err == nil {
		var stale []string
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".tmp-"+hexID+"-") {
				stale = append(stale, filepath.Join(s.layerDir(), e.Name()))
			}
		}
		s.removeAll(stale)
	}

	var tarStream io.ReadCloser
	if so.client != nil {
		blob, err := s.download(ctx, so, d, pr)
		if err != nil {
			return UnpackStats{}, err
		}
		defer os.Remove(blob) // unpacked or not, the next pull fetches anew only what is missing
		f, err := os.Open(blob)
		if err != nil {
			return UnpackStats{}, err
		}
		tarStream, err = decompress(f, d.MediaType)
		if err != nil {
			f.Close()
			return UnpackStats{}, fmt.Errorf("%s: layer %s: %w", so.desc, short(d.Digest.String()), err)
		}
	} else {
		rc, err := l.Uncompressed()
		if err != nil {
			return UnpackStats{}, fmt.Errorf("%s: reading layer %s: %w", so.desc, short(diffID), err)
		}
		tarStream = struct {
			io.Reader
			io.Closer
		}{io.TeeReader(rc, countingWriter{pr}), rc}
	}
	defer tarStream.Close()

	tmp, err := os.MkdirTemp(s.layerDir(), ".tmp-"+hexID+"-")
	if err != nil {
		return UnpackStats{}, storeError(err, s.Dir)
	}
	done := false
	defer func() {
		if !done {
			s.removeAll([]string{tmp})
		}
	}()
	if err := os.Mkdir(filepath.Join(tmp, "fs"), 0o755); err != nil {
		return UnpackStats{}, storeError(err, s.Dir)
	}
	h := sha256.New()
	stats, err := s.unpack(ctx, io.TeeReader(tarStream, h), filepath.Join(tmp, "fs"))
	if err != nil {
		return UnpackStats{}, storeError(fmt.Errorf("%s: unpacking layer %s: %w", so.desc, short(diffID), err), s.Dir)
	}
	// The tar's end-of-archive padding counts for the diff ID too.
	if _, err := io.Copy(h, tarStream); err != nil {
		return UnpackStats{}, fmt.Errorf("%s: reading layer %s: %w", so.desc, short(diffID), err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		return UnpackStats{}, digestError(so.desc, "layer "+short(diffID), diffID, got)
	}
	meta, _ := json.MarshalIndent(layerMeta{DiffID: diffID, Digest: d.Digest.String(), Stats: stats, Stored: time.Now().UTC()}, "", "  ")
	if err := writeFileAtomic(filepath.Join(tmp, "layer.json"), meta); err != nil {
		return UnpackStats{}, storeError(err, s.Dir)
	}
	if err := os.Rename(tmp, final); err != nil {
		return UnpackStats{}, storeError(err, s.Dir)
	}
	done = true
	return stats, nil
}

func short(d string) string {
	h := digestHex(d)
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

// decompress reads a layer blob by its media type, or by its magic bytes
// when the type does not say.
func decompress(f *os.File, mt types.MediaType) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(f, 1<<16)
	magic, _ := br.Peek(4)
	t := string(mt)
	switch {
	case strings.HasSuffix(t, "+zstd") || bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{zr, closerFunc(func() error { zr.Close(); return f.Close() })}, nil
	case strings.HasSuffix(t, "gzip") || bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{zr, closerFunc(func() error { zr.Close(); return f.Close() })}, nil
	case strings.Contains(t, "nondistributable") || strings.HasSuffix(t, ".tar") || t == "" || strings.HasSuffix(t, "tar.diff"):
		return struct {
			io.Reader
			io.Closer
		}{br, f}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnsupportedMT, t)
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }

// download fetches a registry blob into blobs/sha256/HEX.partial, resuming
// what an interrupted pull left there, and verifies it. It returns the
// verified file's path.
func (s *Store) download(ctx context.Context, so *source, d v1.Descriptor, pr *progress) (string, error) {
	dg := d.Digest.String()
	if d.Digest.Algorithm != "sha256" {
		return "", fmt.Errorf("%s: layer digest %s: only sha256 is supported", so.desc, dg)
	}
	part := filepath.Join(s.blobDir(), d.Digest.Hex+".partial")
	f, err := os.OpenFile(part, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return "", storeError(err, s.Dir)
	}
	defer f.Close()
	h := sha256.New()
	// What an interrupted pull left is hashed again: the digest covers the
	// whole blob.
	have, err := io.Copy(h, f)
	if err != nil {
		return "", err
	}
	if d.Size <= 0 {
		return "", fmt.Errorf("%s: layer %s: %w: its manifest gives no size (%d)", so.desc, short(dg), ErrBlobSize, d.Size)
	}
	restart := func() {
		pr.add(-have)
		f.Truncate(0)
		f.Seek(0, io.SeekStart)
		h.Reset()
		have = 0
	}
	pr.add(have)
	if have > d.Size {
		restart()
	}
	// Two tries: a resume the registry answers at the wrong offset starts
	// over once.
	for try := 0; have < d.Size; try++ {
		err := s.fetch(ctx, so, d, f, h, &have, pr, restart)
		if errors.Is(err, ErrContentRange) && try == 0 {
			restart()
			continue
		}
		if err != nil {
			return "", err
		}
	}
	if err := f.Sync(); err != nil {
		return "", storeError(err, s.Dir)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != dg {
		f.Close()
		os.Remove(part)
		return "", digestError(so.desc, "layer "+short(dg), dg, got)
	}
	return part, nil
}

func nameOf(so *source) name.Reference {
	ref, err := name.ParseReference(so.desc)
	if err != nil {
		ref, _ = name.ParseReference("invalid.invalid/unknown")
	}
	return ref
}
