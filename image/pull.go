package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// Error is a failure with what the user can do about it.
type Error struct {
	Err error
	Tip string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }
func (e *Error) Hint() string  { return e.Tip }

func hinted(err error, format string, args ...any) error {
	return &Error{Err: err, Tip: fmt.Sprintf(format, args...)}
}

// Sentinel errors callers and tests branch on.
var (
	ErrUnknownImage  = errors.New("image not found")
	ErrUnauthorized  = errors.New("not authorized")
	ErrUnreachable   = errors.New("registry unreachable")
	ErrDigest        = errors.New("content does not match its digest")
	ErrNoSpace       = errors.New("no space left on device")
	ErrPlatform      = errors.New("no image for the platform")
	ErrUnsupportedMT = errors.New("unsupported layer media type")
)

// PullOptions tune Pull and Import.
type PullOptions struct {
	// Platform picks the image of a multi-platform index (default: the
	// host's, DefaultPlatform).
	Platform *v1.Platform
	// Name is what the image is stored as; "" is the reference (pull) or
	// the archive's own tag (import).
	Name string
	// Progress receives updates as layers arrive; nil for none.
	Progress func(Progress)
	// Keychain resolves registry credentials; nil is ~/.docker/config.json
	// and its credential helpers (authn.DefaultKeychain).
	Keychain authn.Keychain
	// Timeout is how long a registry may keep the pull waiting for an
	// answer, or for the next bytes of one; 0 is DefaultTimeout.
	Timeout time.Duration
}

// Progress is the state of a pull.
type Progress struct {
	Name               string
	Layers, LayersDone int
	// Bytes are compressed bytes from a registry, uncompressed ones from a
	// local source.
	Total, Done int64
}

// source is a resolved image and how to read its layers.
type source struct {
	img  v1.Image
	name string // what to store it as by default
	desc string // Image.Source
	// blobURL and client fetch registry blobs with Range (resumable).
	blobURL func(digest string) string
	client  *http.Client
	cleanup func()
}

// Pull fetches src (any kind) into the store and returns its entry.
func (s *Store) Pull(ctx context.Context, src Source, opts PullOptions) (*Image, error) {
	if opts.Platform == nil {
		p := DefaultPlatform()
		opts.Platform = &p
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	var so *source
	var err error
	if src.Kind == KindRegistry {
		so, err = openRemote(ctx, src.Ref, opts)
	} else {
		so, err = s.openLocal(src, opts)
	}
	if err != nil {
		return nil, err
	}
	if so.cleanup != nil {
		defer so.cleanup()
	}
	if opts.Name != "" {
		so.name = opts.Name
	}
	if so.name == "" {
		// Untagged (an OCI layout whose ref.name is a bare tag, or none):
		// known by where it came from, as hutch run --image names it.
		so.name = src.String()
	}
	// Held shared until the image is recorded: prune must not take the
	// layers this pull has stored but not yet listed.
	gc, err := lockFile(filepath.Join(s.Dir, "gc.lock"), unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	im, replaced, err := s.store(ctx, so, opts)
	gc.Close()
	if replaced {
		// The tag moved: what only its old image used goes, unless a
		// sandbox still runs on it (then the next prune frees it).
		s.Prune()
	}
	return im, err
}

func openRemote(ctx context.Context, ref name.Reference, opts PullOptions) (*source, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	guard := &guardTransport{inner: remote.DefaultTransport, timeout: timeout}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(opts.Keychain), remote.WithUserAgent("hutch"),
		remote.WithTransport(guard)}
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return nil, registryError(ref, err)
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, registryError(ref, err)
		}
		d, err := pickPlatform(idx, *opts.Platform, DisplayName(ref))
		if err != nil {
			return nil, err
		}
		img, err = remote.Image(ref.Context().Digest(d.Digest.String()), ropts...)
		if err != nil {
			return nil, registryError(ref, err)
		}
	} else if img, err = desc.Image(); err != nil {
		return nil, registryError(ref, err)
	}
	if err := checkPlatform(img, *opts.Platform, DisplayName(ref)); err != nil {
		return nil, err
	}
	auth, err := opts.Keychain.Resolve(ref.Context())
	if err != nil {
		return nil, registryError(ref, err)
	}
	tr, err := transport.NewWithContext(ctx, ref.Context().Registry, auth, guard, []string{ref.Context().Scope(transport.PullScope)})
	if err != nil {
		return nil, registryError(ref, err)
	}
	repo := ref.Context()
	return &source{
		img:  img,
		name: DisplayName(ref),
		desc: DisplayName(ref),
		blobURL: func(d string) string {
			u := url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/blobs/" + d}
			return u.String()
		},
		// guardTransport bounds and checks redirects, as it does for
		// go-containerregistry's own clients.
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return nil }},
	}, nil
}

// registryError turns a registry failure into one the user can act on.
func registryError(ref name.Reference, err error) error {
	reg := ref.Context().RegistryStr()
	n := DisplayName(ref)
	var te *transport.Error
	if errors.As(err, &te) {
		code := te.StatusCode
		var codes []string
		for _, d := range te.Errors {
			codes = append(codes, string(d.Code))
		}
		has := func(c transport.ErrorCode) bool {
			for _, x := range codes {
				if x == string(c) {
					return true
				}
			}
			return false
		}
		switch {
		case code == http.StatusUnauthorized || code == http.StatusForbidden || has(transport.UnauthorizedErrorCode) || has(transport.DeniedErrorCode):
			return hinted(fmt.Errorf("pulling %s: %w by %s (%v)", n, ErrUnauthorized, reg, err),
				"log in to the registry (docker login %s, or a credential helper in ~/.docker/config.json); hutch uses the same credentials as docker", reg)
		case code == http.StatusNotFound || has(transport.ManifestUnknownErrorCode) || has(transport.NameUnknownErrorCode):
			return hinted(fmt.Errorf("pulling %s: %w in %s", n, ErrUnknownImage, reg),
				"check the name and tag; private images also answer \"not found\" until you log in")
		}
		return fmt.Errorf("pulling %s from %s: %w", n, reg, err)
	}
	if errors.Is(err, ErrRedirect) || errors.Is(err, ErrStalled) {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // "Get URL: …" says nothing the message does not
		}
		return hinted(fmt.Errorf("pulling %s from %s: %w", n, reg, err),
			"the registry misbehaved (docs/security.md, hostile registries); try again, or pull from another mirror")
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, unix.ECONNREFUSED) {
		return hinted(fmt.Errorf("pulling %s: %w: %s: %v", n, ErrUnreachable, reg, rootCause(err)),
			"check the registry's address and that this machine can reach it (a proxy is used when HTTPS_PROXY is set)")
	}
	return fmt.Errorf("pulling %s: %w", n, err)
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// pickPlatform finds the manifest for p in an index.
func pickPlatform(idx v1.ImageIndex, p v1.Platform, what string) (*v1.Descriptor, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var have []string
	for i := range im.Manifests {
		d := &im.Manifests[i]
		if d.Platform == nil {
			continue
		}
		if platformMatches(p, *d.Platform) {
			return d, nil
		}
		have = append(have, platformString(*d.Platform))
	}
	return nil, hinted(fmt.Errorf("%s: %w %s (it has: %s)", what, ErrPlatform, platformString(p), strings.Join(have, ", ")),
		"pick one with --platform, as in --platform %s", firstOr(have, "linux/amd64"))
}

func firstOr(s []string, d string) string {
	if len(s) > 0 {
		return s[0]
	}
	return d
}

// checkPlatform refuses a single-platform image built for another one.
func checkPlatform(img v1.Image, p v1.Platform, what string) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading the config of %s: %w", what, err)
	}
	if cf.OS == "" && cf.Architecture == "" {
		return nil
	}
	have := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	if !platformMatches(p, have) {
		return hinted(fmt.Errorf("%s is built for %s, not %s: %w", what, platformString(have), platformString(p), ErrPlatform),
			"to store it anyway, pass --platform %s (its programs will not run here unless the kernel can emulate that platform)", platformString(have))
	}
	return nil
}

// openLocal opens a layout or archive.
func (s *Store) openLocal(src Source, opts PullOptions) (*source, error) {
	if _, err := os.Stat(src.Path); err != nil {
		return nil, fmt.Errorf("importing %s: %w", src, err)
	}
	so := &source{desc: src.String()}
	switch src.Kind {
	case KindDockerArchive:
		var tag *name.Tag
		if src.Tag != "" {
			t, err := name.NewTag(src.Tag)
			if err != nil {
				return nil, fmt.Errorf("importing %s: %w", src, err)
			}
			tag = &t
		}
		img, err := tarball.ImageFromPath(src.Path, tag)
		if err != nil {
			return nil, hinted(fmt.Errorf("importing %s: %w", src, err), "a docker-archive is what docker save or podman save --format docker-archive writes; name one image in it with docker-archive:FILE:NAME:TAG when it holds several")
		}
		so.img = img
		if src.Tag != "" {
			so.name, _ = NormalizeName(src.Tag)
		} else if t := archiveTag(src.Path); t != "" {
			so.name, _ = NormalizeName(t)
		}
	case KindOCIArchive:
		dir, err := os.MkdirTemp(s.Dir, ".tmp-oci-archive-")
		if err != nil {
			return nil, err
		}
		so.cleanup = func() { os.RemoveAll(dir) }
		if err := extractLayout(src.Path, dir); err != nil {
			so.cleanup()
			return nil, hinted(fmt.Errorf("importing %s: %w", src, err),
				"an oci-archive is a tar of an OCI image layout, as podman save --format oci-archive or skopeo copy … oci-archive:FILE writes")
		}
		if err := so.fromLayout(dir, src, opts); err != nil {
			so.cleanup()
			return nil, err
		}
	case KindOCILayout:
		if err := so.fromLayout(src.Path, src, opts); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown image source kind %q", src.Kind)
	}
	if err := checkPlatform(so.img, *opts.Platform, src.String()); err != nil {
		return nil, err
	}
	return so, nil
}

// archiveTag is the first RepoTags entry of a docker-archive's
// manifest.json.
func archiveTag(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			return ""
		}
		if h.Name != "manifest.json" {
			continue
		}
		var m []struct{ RepoTags []string }
		if json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m) == nil && len(m) > 0 && len(m[0].RepoTags) > 0 {
			return m[0].RepoTags[0]
		}
		return ""
	}
}

const refNameAnnotation = "org.opencontainers.image.ref.name"

// fromLayout picks the image of an OCI layout: by tag (the ref.name
// annotation), then by platform.
func (so *source) fromLayout(dir string, src Source, opts PullOptions) error {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return hinted(fmt.Errorf("importing %s: %w", src, err), "an OCI layout is a directory with oci-layout, index.json and blobs/")
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return fmt.Errorf("importing %s: %w", src, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("importing %s: %w", src, err)
	}
	var cands []v1.Descriptor
	var tags []string
	for _, d := range im.Manifests {
		t := d.Annotations[refNameAnnotation]
		if t != "" {
			tags = append(tags, t)
		}
		if src.Tag == "" || t == src.Tag {
			cands = append(cands, d)
		}
	}
	if len(cands) == 0 {
		return hinted(fmt.Errorf("importing %s: no image tagged %q in it", src, src.Tag), "its tags: %s", strings.Join(tags, ", "))
	}
	if len(cands) > 1 && src.Tag == "" {
		return hinted(fmt.Errorf("importing %s: it holds %d images", src, len(cands)), "name one: %s:TAG (its tags: %s)", src, strings.Join(tags, ", "))
	}
	d := cands[0]
	if d.MediaType.IsIndex() {
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return fmt.Errorf("importing %s: %w", src, err)
		}
		pd, err := pickPlatform(child, *opts.Platform, src.String())
		if err != nil {
			return err
		}
		so.img, err = child.Image(pd.Digest)
		if err != nil {
			return fmt.Errorf("importing %s: %w", src, err)
		}
	} else if so.img, err = idx.Image(d.Digest); err != nil {
		return fmt.Errorf("importing %s: %w", src, err)
	}
	if t := d.Annotations[refNameAnnotation]; t != "" {
		// A bare tag ("latest") names nothing on its own; a full
		// reference ("example.com/app:1") does.
		if strings.ContainsAny(t, "/:") {
			so.name, _ = NormalizeName(t)
		}
	}
	return nil
}

// extractLayout unpacks an OCI archive (a tar of a layout) into dir,
// taking only plain files and directories, and nothing outside dir.
func extractLayout(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReader(f))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		n := filepath.Clean("/" + h.Name)
		if n == "/" {
			continue
		}
		p := filepath.Join(dir, n)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return err
			}
			w, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(w, tr)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return storeError(err, dir)
			}
		}
	}
}

// store brings every layer of so into the store, then records the image.
func (s *Store) store(ctx context.Context, so *source, opts PullOptions) (im *Image, replaced bool, err error) {
	img := so.img
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, false, fmt.Errorf("reading the manifest of %s: %w", so.desc, err)
	}
	mf, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return nil, false, fmt.Errorf("reading the manifest of %s: %w", so.desc, err)
	}
	digest := sha256Digest(rawManifest)
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, false, fmt.Errorf("reading the config of %s: %w", so.desc, err)
	}
	if got := sha256Digest(rawConfig); got != mf.Config.Digest.String() {
		return nil, false, digestError(so.desc, "config", mf.Config.Digest.String(), got)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, false, fmt.Errorf("reading the config of %s: %w", so.desc, err)
	}
	if len(cf.RootFS.DiffIDs) != len(mf.Layers) {
		return nil, false, fmt.Errorf("%s is malformed: its manifest lists %d layers, its config %d", so.desc, len(mf.Layers), len(cf.RootFS.DiffIDs))
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, false, fmt.Errorf("reading the layers of %s: %w", so.desc, err)
	}

	pr := &progress{fn: opts.Progress, p: Progress{Name: so.name, Layers: len(mf.Layers)}}
	for i, d := range mf.Layers {
		if so.client != nil {
			pr.p.Total += d.Size
		} else if !s.hasLayer(cf.RootFS.DiffIDs[i].String()) {
			if sz, err := layers[i].Size(); err == nil {
				pr.p.Total += sz
			}
		}
	}
	pr.send()

	// Three layers at a time, as docker pulls them.
	sem := make(chan struct{}, 3)
	errs := make([]error, len(mf.Layers))
	var stats = make([]UnpackStats, len(mf.Layers))
	var wg sync.WaitGroup
	for i := range mf.Layers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				errs[i] = ctx.Err()
				return
			}
			stats[i], errs[i] = s.ensureLayer(ctx, so, layers[i], mf.Layers[i], cf.RootFS.DiffIDs[i].String(), pr)
			pr.layerDone()
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, false, firstErr(errs)
	}
	// Config and manifest are small; they go in last, with the index.
	for _, b := range [][]byte{rawConfig, rawManifest} {
		p := filepath.Join(s.blobDir(), digestHex(sha256Digest(b)))
		if err := writeFileAtomic(p, b); err != nil {
			return nil, false, storeError(err, s.Dir)
		}
	}
	rec := Image{
		Name: so.name, Source: so.desc, Digest: digest, ID: mf.Config.Digest.String(),
		Platform: platformString(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}),
		Created:  cf.Created.Time, Stored: time.Now().UTC().Truncate(time.Second),
	}
	for i, d := range cf.RootFS.DiffIDs {
		rec.Layers = append(rec.Layers, d.String())
		rec.Size += stats[i].Bytes
		rec.DevicesSkipped += stats[i].DevicesSkipped
	}
	if replaced, err = s.putIndex(rec); err != nil {
		return nil, false, storeError(err, s.Dir)
	}
	return &rec, replaced, nil
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil && !errors.Is(e, context.Canceled) {
			return e
		}
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func sha256Digest(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func digestError(what, part, want, got string) error {
	return hinted(fmt.Errorf("%s: the %s's %w: expected %s, got %s; nothing of it was stored", what, part, ErrDigest, want, got),
		"the registry, the archive or something in between served corrupted or tampered data; pull again, and if it persists, do not trust the source")
}

// storeError makes a full disk say so.
func storeError(err error, dir string) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) || errors.Is(err, ErrNoSpace) {
		return hinted(fmt.Errorf("storing the image under %s: %w", dir, ErrNoSpace),
			"free some space, or remove images you no longer need: hutch image ls, hutch image rm NAME, hutch image prune")
	}
	return err
}
