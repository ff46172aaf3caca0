package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Registry is an in-process registry on 127.0.0.1.
type Registry struct {
	// Addr is "127.0.0.1:PORT".
	Addr string

	srv   *http.Server
	inner http.Handler
	blobs *blobStore

	mu         sync.Mutex
	requests   []string
	user, pass string
	interrupt  map[string]int64 // digest → bytes to serve before cutting
	hostile    map[string]Hostile
}

// StartRegistry serves a new, empty registry on a free port of 127.0.0.1.
func StartRegistry() (*Registry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	quiet := log.New(io.Discard, "", 0)
	r := &Registry{
		Addr:      ln.Addr().String(),
		blobs:     &blobStore{m: map[string][]byte{}, tampered: map[string]bool{}},
		interrupt: map[string]int64{},
		hostile:   map[string]Hostile{},
	}
	r.inner = registry.New(registry.Logger(quiet), registry.WithBlobHandler(r.blobs))
	r.srv = &http.Server{Handler: r, ErrorLog: quiet}
	go r.srv.Serve(ln)
	return r, nil
}

// Close stops the registry.
func (r *Registry) Close() {
	r.srv.Close()
}

// Requests returns the log of requests so far, one "METHOD PATH" line each,
// with " Range: VALUE" appended when the request had one.
func (r *Registry) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.requests...)
}

// ClearRequests empties the request log.
func (r *Registry) ClearRequests() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = nil
}

// SetAuth makes the registry refuse requests without these basic-auth
// credentials, with 401 and `WWW-Authenticate: Basic realm="test"`. An
// empty user turns auth off.
func (r *Registry) SetAuth(user, pass string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.user, r.pass = user, pass
}

// Options are the remote options that reach this registry: its credentials
// when SetAuth set some.
func (r *Registry) Options() []remote.Option {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.user == "" {
		return nil
	}
	return []remote.Option{remote.WithAuth(&authn.Basic{Username: r.user, Password: r.pass})}
}

// Tamper makes the registry serve the blob digest ("sha256:HEX") with one
// byte changed and its length kept, while still naming the true digest in
// Docker-Content-Digest. The change is chosen so that only a digest check
// catches it: a gzip blob has a byte of its header's mtime changed (it
// still decompresses to the same tar), a JSON blob the first hex digit
// after "sha256:" (it still parses); anything else has its last byte
// flipped. The blob need not be pushed yet.
func (r *Registry) Tamper(digest string) error {
	h, err := v1.NewHash(digest)
	if err != nil {
		return fmt.Errorf("tampering with %q: %w", digest, err)
	}
	r.blobs.mu.Lock()
	defer r.blobs.mu.Unlock()
	r.blobs.tampered[h.String()] = true
	return nil
}

// Interrupt makes the next GET of the blob digest stop after n bytes of
// the response body, as a dropped connection would, for tests of resumed
// downloads.
func (r *Registry) Interrupt(digest string, n int64) error {
	h, err := v1.NewHash(digest)
	if err != nil {
		return fmt.Errorf("interrupting %q: %w", digest, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.interrupt[h.String()] = n
	return nil
}

// ServeHTTP logs, checks auth and fixes up Range before the ggcr registry
// sees the request.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	line := req.Method + " " + req.URL.Path
	if rg := req.Header.Get("Range"); rg != "" {
		line += " Range: " + rg
	}
	r.mu.Lock()
	r.requests = append(r.requests, line)
	user, pass := r.user, r.pass
	r.mu.Unlock()

	if user != "" {
		u, p, ok := req.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`+"\n")
			return
		}
	}

	digest, isBlob := blobDigest(req.URL.Path)
	if isBlob && req.Method == http.MethodGet {
		r.mu.Lock()
		h, hostile := r.hostile[digest]
		r.mu.Unlock()
		if hostile && r.serveHostile(w, req, h, digest) {
			return
		}
	}
	if isBlob && req.Method == http.MethodGet {
		if size, ok := r.blobs.size(digest); ok {
			if rg := req.Header.Get("Range"); rg != "" {
				fixed, ok := fixRange(rg, size)
				if !ok {
					w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
					http.Error(w, "range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
					return
				}
				req.Header.Set("Range", fixed)
			}
			r.mu.Lock()
			n, cut := r.interrupt[digest]
			delete(r.interrupt, digest)
			r.mu.Unlock()
			if cut {
				w = &cutWriter{ResponseWriter: w, left: n}
			}
		}
	}
	r.inner.ServeHTTP(w, req)
}

// blobDigest reads /v2/NAME/blobs/DIGEST.
func blobDigest(p string) (string, bool) {
	dir, last := path.Split(p)
	if !strings.HasPrefix(p, "/v2/") || path.Base(dir) != "blobs" || !strings.Contains(last, ":") {
		return "", false
	}
	return last, true
}

// fixRange turns the forms pkg/registry does not read ("bytes=N-",
// "bytes=-N", an end past the blob) into "bytes=N-M".
func fixRange(rg string, size int64) (string, bool) {
	spec, ok := strings.CutPrefix(rg, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return rg, true // let pkg/registry refuse it
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return rg, true
	}
	var start, end int64
	var err error
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil {
			return rg, true
		}
		start, end = max(size-n, 0), size-1
	default:
		if start, err = strconv.ParseInt(a, 10, 64); err != nil {
			return rg, true
		}
		end = size - 1
		if b != "" {
			if end, err = strconv.ParseInt(b, 10, 64); err != nil {
				return rg, true
			}
			end = min(end, size-1)
		}
	}
	if start >= size || start > end {
		return "", false
	}
	return fmt.Sprintf("bytes=%d-%d", start, end), true
}

// cutWriter aborts the response after left body bytes.
type cutWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= c.left {
		c.left -= int64(len(p))
		return c.ResponseWriter.Write(p)
	}
	c.ResponseWriter.Write(p[:c.left])
	c.left = 0
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	// net/http closes the connection and logs nothing.
	panic(http.ErrAbortHandler)
}

// blobStore is pkg/registry's in-memory blob handler, plus tampering.
type blobStore struct {
	mu       sync.Mutex
	m        map[string][]byte
	tampered map[string]bool
}

func (s *blobStore) size(digest string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[digest]
	return int64(len(b)), ok
}

func (s *blobStore) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	n, ok := s.size(h.String())
	if !ok {
		return 0, registry.ErrNotFound
	}
	return n, nil
}

func (s *blobStore) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[h.String()]
	if !ok {
		return nil, registry.ErrNotFound
	}
	if s.tampered[h.String()] {
		b = tamper(b)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *blobStore) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[h.String()] = b
	return nil
}

func (s *blobStore) Delete(_ context.Context, _ string, h v1.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[h.String()]; !ok {
		return registry.ErrNotFound
	}
	delete(s.m, h.String())
	return nil
}

// tamper returns a copy of b with one byte changed (see Registry.Tamper).
func tamper(b []byte) []byte {
	t := bytes.Clone(b)
	switch {
	case len(t) == 0:
	case len(t) > 8 && t[0] == 0x1f && t[1] == 0x8b:
		t[4] ^= 0xff // gzip MTIME, which readers do not check
	case json.Valid(t) && bytes.Contains(t, []byte("sha256:")):
		i := bytes.Index(t, []byte("sha256:")) + len("sha256:")
		if t[i] == '0' {
			t[i] = '1'
		} else {
			t[i] = '0'
		}
	default:
		t[len(t)-1] ^= 1
	}
	return t
}

// parseRef reads a reference to a registry on 127.0.0.1, which speaks
// plain HTTP.
func parseRef(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("parsing reference %q: %w", ref, err)
	}
	return r, nil
}

// Push pushes img to ref, e.g. reg.Addr+"/busybox:latest"; pass
// reg.Options()... for a registry that wants auth.
func Push(ref string, img v1.Image, opts ...remote.Option) error {
	r, err := parseRef(ref)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img, opts...); err != nil {
		return fmt.Errorf("pushing %q: %w", ref, err)
	}
	return nil
}

// PushIndex pushes idx and its images to ref.
func PushIndex(ref string, idx v1.ImageIndex, opts ...remote.Option) error {
	r, err := parseRef(ref)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(r, idx, opts...); err != nil {
		return fmt.Errorf("pushing %q: %w", ref, err)
	}
	return nil
}

// Pull reads back the image at ref, resolving an index to linux/amd64.
func Pull(ref string, opts ...remote.Option) (v1.Image, error) {
	r, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, opts...)
	if err != nil {
		return nil, fmt.Errorf("pulling %q: %w", ref, err)
	}
	return img, nil
}

// WriteDockerArchive writes img in the format of `docker save`, tagged tag
// (e.g. "busybox:latest") unless tag is "".
func WriteDockerArchive(path, tag string, img v1.Image) error {
	var ref name.Reference
	if tag != "" {
		t, err := name.NewTag(tag)
		if err != nil {
			return fmt.Errorf("parsing tag %q: %w", tag, err)
		}
		ref = t
	}
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	return nil
}

// WriteOCILayout adds img to the OCI image layout dir, creating it if
// needed; its descriptor in index.json is annotated with
// org.opencontainers.image.ref.name=tag unless tag is "".
func WriteOCILayout(dir, tag string, img v1.Image) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("writing %q: %w", dir, err)
		}
	}
	var opts []layout.Option
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{RefNameAnnotation: tag}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		return fmt.Errorf("writing %q: %w", dir, err)
	}
	return nil
}

// WriteOCIArchive writes img as a tar of an OCI image layout, as
// `skopeo copy ... oci-archive:PATH:TAG` does.
func WriteOCIArchive(path, tag string, img v1.Image) error {
	dir, err := os.MkdirTemp("", "testimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := WriteOCILayout(dir, tag, img); err != nil {
		return err
	}
	var ents []*entry
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			ents = append(ents, &entry{hdr: newHeader(tar.TypeDir, rel+"/", 0o755, 0, 0)})
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := newHeader(tar.TypeReg, rel, 0o644, 0, 0)
		h.Size = int64(len(b))
		ents = append(ents, &entry{hdr: h, body: b})
		return nil
	})
	if err != nil {
		return err
	}
	b, err := writeTar(ents)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	return nil
}
