// Package testimage builds small OCI images for hutch's tests and serves or
// writes them: from an in-process registry, or as a `docker save` archive,
// an OCI image layout or an OCI archive.
//
// Layers are written in a tiny line language (see [Layer]) so that a test
// says what an image holds in a few lines of a txtar file instead of
// shipping binary fixtures. Everything is reproducible: tar entries carry a
// fixed mtime and gzip a fixed header, so two builds of the same spec give
// the same layer digest and two images can share a layer.
//
// The [Registry] is go-containerregistry's pkg/registry behind a thin
// handler that logs requests, can demand basic auth, understands open-ended
// Range requests (which pkg/registry refuses, and which resuming clients
// send) and can misbehave on purpose: serve a tampered blob ([Registry.Tamper]),
// cut a download short ([Registry.Interrupt]), or answer as a hostile
// registry would: redirects, a wrong Content-Range, an endless body,
// silence ([Registry.Hostile]).
//
// It is for tests only.
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Epoch is the time every entry, layer and image is stamped with.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// BusyboxPath is the host binary the busybox directive copies: Debian's
// busybox-static, which needs no shared libraries inside the image.
var BusyboxPath = "/bin/busybox"

// BusyboxApplets are the applets the busybox directive links to busybox.
var BusyboxApplets = []string{
	"sh", "cat", "ls", "id", "env", "pwd", "echo", "sleep", "test", "stat",
	"readlink", "mkdir", "rm", "touch", "wc", "head", "grep", "sed", "true",
	"false", "whoami", "printf", "chmod", "ln", "mv", "cp", "find", "uname",
	"hostname", "kill", "ps",
}

// RefNameAnnotation names an image in an OCI layout's index.json.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// SpecError is a bad line in a layer spec.
type SpecError struct {
	Line int    // 1-based
	Text string // the line, trimmed
	Err  error
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("line %d: %q: %v", e.Line, e.Text, e.Err)
}

func (e *SpecError) Unwrap() error { return e.Err }

// entry is one tar entry of a layer being built.
type entry struct {
	hdr  *tar.Header
	body []byte
}

// Layer builds one layer, an uncompressed tar, from spec lines:
//
//	dir PATH [MODE] [UID:GID]
//	file PATH [MODE] [UID:GID] [CONTENT...]
//	symlink PATH TARGET [UID:GID]
//	hardlink PATH TARGET
//	char PATH MAJOR MINOR
//	block PATH MAJOR MINOR
//	fifo PATH
//	whiteout PATH             an OCI whiteout: the entry DIR/.wh.BASE
//	opaque DIR                DIR/.wh..wh..opq
//	xattr PATH NAME VALUE     a PAX SCHILY.xattr record on the earlier entry PATH
//	busybox                   a small busybox userland (see below)
//	debian PKG...             a small Debian rootfs: the host's installed packages' files
//	# a comment
//
// PATHs are absolute; each is written without its leading '/' and
// otherwise as given, not cleaned, so that a test can build hostile
// entries such as /../escape. No parent directories are implied. MODE is
// octal, 3 to 5 digits (0644, 4755, 01777); the default is 0755 for
// directories, 0644 for files and fifos, 0666 for devices. UID:GID
// defaults to 0:0. MODE and UID:GID are recognised only as the first
// fields after PATH, so content that looks like a mode needs an explicit
// MODE before it. CONTENT is the rest of the line, leading blanks
// trimmed, with the escapes \n \t \r \\ and \xHH; there is no implicit
// trailing newline. A hardlink TARGET is absolute, like PATH; a symlink
// TARGET is written as given. xattr VALUE is the rest of the line, with
// the same escapes.
//
// busybox adds /bin/busybox (the host's [BusyboxPath]) with
// [BusyboxApplets] as symlinks to it; /etc/passwd with root (0, home
// /root), app (1000, home /home/app) and nobody (65534); /etc/group with
// root, app and nogroup; /etc/os-release (ID=hutchtest); and the
// directories /bin /etc /usr /var /home, /root 0700, /home/app 0755
// 1000:1000 and /tmp 1777.
func Layer(spec string) ([]byte, error) {
	var ents []*entry
	// The latest entry for each spec path, for xattr.
	byPath := map[string]*entry{}
	for i, line := range strings.Split(spec, "\n") {
		text := strings.TrimSpace(line)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		es, err := parseLine(text, byPath)
		if err != nil {
			return nil, &SpecError{Line: i + 1, Text: text, Err: err}
		}
		ents = append(ents, es...)
	}
	return writeTar(ents)
}

func writeTar(ents []*entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, fmt.Errorf("writing %q: %w", e.hdr.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("writing %q: %w", e.hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var (
	modeRE  = regexp.MustCompile(`^[0-7]{3,5}$`)
	ownerRE = regexp.MustCompile(`^[0-9]+:[0-9]+$`)
)

// cutField splits off the first blank-separated field of s.
func cutField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// attrs is what may follow a PATH: [MODE] [UID:GID], then the rest.
type attrs struct {
	mode     int64
	uid, gid int
	rest     string
}

func parseAttrs(s string, mode int64, allowMode bool) (attrs, error) {
	a := attrs{mode: mode, rest: s}
	f, r := cutField(a.rest)
	if allowMode && modeRE.MatchString(f) {
		m, err := strconv.ParseInt(f, 8, 64)
		if err != nil {
			return a, fmt.Errorf("mode %q: %w", f, err)
		}
		a.mode, a.rest = m, r
		f, r = cutField(a.rest)
	}
	if ownerRE.MatchString(f) {
		u, g, _ := strings.Cut(f, ":")
		var err error
		if a.uid, err = strconv.Atoi(u); err != nil {
			return a, fmt.Errorf("owner %q: %w", f, err)
		}
		if a.gid, err = strconv.Atoi(g); err != nil {
			return a, fmt.Errorf("owner %q: %w", f, err)
		}
		a.rest = r
	}
	return a, nil
}

// tarName turns a spec path into an entry name.
func tarName(p string) (string, error) {
	if p == "" {
		return "", errors.New("missing PATH")
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q is not absolute", p)
	}
	return strings.TrimPrefix(p, "/"), nil
}

func newHeader(typ byte, name string, mode int64, uid, gid int) *tar.Header {
	return &tar.Header{
		Typeflag: typ,
		Name:     name,
		Mode:     mode,
		Uid:      uid,
		Gid:      gid,
		ModTime:  Epoch,
	}
}

func parseLine(text string, byPath map[string]*entry) ([]*entry, error) {
	verb, rest := cutField(text)
	if verb == "busybox" {
		if rest != "" {
			return nil, errors.New("busybox takes no arguments")
		}
		return busybox()
	}
	if verb == "debian" {
		return debian(strings.Fields(rest))
	}
	p, rest := cutField(rest)
	name, err := tarName(p)
	if err != nil {
		return nil, err
	}
	want := func(n int) ([]string, error) {
		f := strings.Fields(rest)
		if len(f) != n {
			return nil, fmt.Errorf("%s wants %d arguments after PATH, got %d", verb, n, len(f))
		}
		return f, nil
	}
	var e *entry
	switch verb {
	case "dir":
		a, err := parseAttrs(rest, 0o755, true)
		if err != nil {
			return nil, err
		}
		if a.rest != "" {
			return nil, fmt.Errorf("unexpected %q", a.rest)
		}
		if name == "" {
			name = "."
		}
		e = &entry{hdr: newHeader(tar.TypeDir, name+"/", a.mode, a.uid, a.gid)}
	case "file":
		a, err := parseAttrs(rest, 0o644, true)
		if err != nil {
			return nil, err
		}
		body, err := unescape(a.rest)
		if err != nil {
			return nil, err
		}
		e = &entry{hdr: newHeader(tar.TypeReg, name, a.mode, a.uid, a.gid), body: body}
		e.hdr.Size = int64(len(body))
	case "symlink":
		target, r := cutField(rest)
		if target == "" {
			return nil, errors.New("missing TARGET")
		}
		a, err := parseAttrs(r, 0o777, false)
		if err != nil {
			return nil, err
		}
		if a.rest != "" {
			return nil, fmt.Errorf("unexpected %q", a.rest)
		}
		e = &entry{hdr: newHeader(tar.TypeSymlink, name, 0o777, a.uid, a.gid)}
		e.hdr.Linkname = target
	case "hardlink":
		f, err := want(1)
		if err != nil {
			return nil, err
		}
		target, err := tarName(f[0])
		if err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		e = &entry{hdr: newHeader(tar.TypeLink, name, 0o644, 0, 0)}
		e.hdr.Linkname = target
	case "char", "block":
		f, err := want(2)
		if err != nil {
			return nil, err
		}
		if e, err = deviceEntry(verb, name, f[0], f[1]); err != nil {
			return nil, err
		}
	case "fifo":
		if _, err := want(0); err != nil {
			return nil, err
		}
		e = &entry{hdr: newHeader(tar.TypeFifo, name, 0o644, 0, 0)}
	case "whiteout":
		if _, err := want(0); err != nil {
			return nil, err
		}
		dir, base := path.Split(name)
		if base == "" {
			return nil, fmt.Errorf("whiteout of %q names no file", p)
		}
		e = &entry{hdr: newHeader(tar.TypeReg, dir+".wh."+base, 0o644, 0, 0)}
	case "opaque":
		if _, err := want(0); err != nil {
			return nil, err
		}
		if name != "" {
			name += "/"
		}
		e = &entry{hdr: newHeader(tar.TypeReg, name+".wh..wh..opq", 0o644, 0, 0)}
	case "xattr":
		return nil, setXattr(byPath[p], p, rest)
	default:
		return nil, fmt.Errorf("unknown directive %q", verb)
	}
	byPath[p] = e
	return []*entry{e}, nil
}

// deviceEntry is a char or block device node MAJOR MINOR at name.
func deviceEntry(verb, name, majorS, minorS string) (*entry, error) {
	major, err := strconv.ParseInt(majorS, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("major %q: %w", majorS, err)
	}
	minor, err := strconv.ParseInt(minorS, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("minor %q: %w", minorS, err)
	}
	typ := byte(tar.TypeChar)
	if verb == "block" {
		typ = tar.TypeBlock
	}
	e := &entry{hdr: newHeader(typ, name, 0o666, 0, 0)}
	e.hdr.Devmajor, e.hdr.Devminor = major, minor
	return e, nil
}

// setXattr records "NAME VALUE" (rest) as an xattr of the earlier entry
// at p (target, nil when there is none).
func setXattr(target *entry, p, rest string) error {
	key, val := cutField(rest)
	if key == "" {
		return errors.New("missing NAME")
	}
	if target == nil {
		return fmt.Errorf("no earlier entry %q in this spec", p)
	}
	v, err := unescape(val)
	if err != nil {
		return err
	}
	if target.hdr.PAXRecords == nil {
		target.hdr.PAXRecords = map[string]string{}
	}
	target.hdr.PAXRecords["SCHILY.xattr."+key] = string(v)
	return nil
}

// unescape reads \n \t \r \\ and \xHH.
func unescape(s string) ([]byte, error) {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		i++
		if i == len(s) {
			return nil, errors.New(`trailing '\'`)
		}
		switch s[i] {
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case 'r':
			b = append(b, '\r')
		case '\\':
			b = append(b, '\\')
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf(`short \x escape at %q`, s[i-1:])
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf(`bad \x escape %q`, s[i-1:i+3])
			}
			b = append(b, byte(v))
			i += 2
		default:
			return nil, fmt.Errorf(`unknown escape \%c`, s[i])
		}
	}
	return b, nil
}

// Config is the runtime part of an image's config.
type Config struct {
	Env        []string
	Entrypoint []string
	Cmd        []string
	WorkingDir string
	User       string
	// OS and Arch default to linux/amd64; Variant is optional (arm "v7").
	OS, Arch, Variant string
	// DockerMediaTypes builds a Docker schema 2 image instead of an OCI one.
	DockerMediaTypes bool
}

// Build makes an image whose layers are the given tars, bottom first,
// gzip-compressed (a layer already gzip-compressed is used as it is).
func Build(cfg Config, layers ...[]byte) (v1.Image, error) {
	manifestMT, configMT, layerMT := types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer
	if cfg.DockerMediaTypes {
		manifestMT, configMT, layerMT = types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, manifestMT), configMT)
	adds := make([]mutate.Addendum, len(layers))
	for i, tb := range layers {
		gz, err := Gzip(tb)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(gz)), nil
		}, tarball.WithMediaType(layerMT))
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		adds[i] = mutate.Addendum{
			Layer: l,
			History: v1.History{
				Created:   v1.Time{Time: Epoch},
				CreatedBy: fmt.Sprintf("testimage layer %d", i+1),
			},
		}
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = cfg.OS, cfg.Arch, cfg.Variant
	if cf.OS == "" {
		cf.OS = "linux"
	}
	if cf.Architecture == "" {
		cf.Architecture = "amd64"
	}
	cf.Created = v1.Time{Time: Epoch}
	cf.Config = v1.Config{
		Env:        cfg.Env,
		Entrypoint: cfg.Entrypoint,
		Cmd:        cfg.Cmd,
		WorkingDir: cfg.WorkingDir,
		User:       cfg.User,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	// Compute now, so that errors surface here and not in a push.
	if _, err := img.Digest(); err != nil {
		return nil, err
	}
	return img, nil
}

// Gzip compresses a tar reproducibly (no name, zero mtime in the header).
// Data that is already gzip-compressed is returned as it is.
func Gzip(b []byte) ([]byte, error) {
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		return b, nil
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Index makes a multi-platform image index of imgs, each described with
// the platform of its config. It is an OCI index unless every image is a
// Docker one, when it is a Docker manifest list.
func Index(imgs ...v1.Image) (v1.ImageIndex, error) {
	adds := make([]mutate.IndexAddendum, len(imgs))
	docker := len(imgs) > 0
	for i, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i+1, err)
		}
		mt, err := img.MediaType()
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i+1, err)
		}
		docker = docker && mt == types.DockerManifestSchema2
		adds[i] = mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{
				OS:           cf.OS,
				Architecture: cf.Architecture,
				Variant:      cf.Variant,
			}},
		}
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	if docker {
		idx = mutate.IndexMediaType(idx, types.DockerManifestList)
	}
	if _, err := idx.Digest(); err != nil {
		return nil, err
	}
	return idx, nil
}
