package image

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Source kinds.
const (
	KindRegistry      = "registry"
	KindOCILayout     = "oci-layout"
	KindDockerArchive = "docker-archive"
	KindOCIArchive    = "oci-archive"
)

// Source is where an image comes from: a registry reference, or a local
// layout or archive.
type Source struct {
	Kind string
	// Ref is the registry reference (Kind "registry").
	Ref name.Reference
	// Path is the layout directory or archive file, absolute; Tag picks an
	// image in it ("" when it holds one).
	Path, Tag string
}

// ParseSource reads "oci-layout:PATH[:TAG]", "docker-archive:FILE[:TAG]",
// "oci-archive:FILE[:TAG]" or a registry reference such as
// "docker.io/library/alpine:3.20" (short names are Docker Hub's, as
// docker pull reads them).
func ParseSource(s string) (Source, error) {
	for _, k := range []string{KindOCILayout, KindDockerArchive, KindOCIArchive} {
		rest, ok := strings.CutPrefix(s, k+":")
		if !ok {
			continue
		}
		p, tag := rest, ""
		// The tag follows the last ':' after the last '/', as skopeo reads
		// these transports.
		if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
			p, tag = rest[:i], rest[i+1:]
		}
		if p == "" {
			return Source{}, fmt.Errorf("%q names no path: write %s:PATH[:TAG]", s, k)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return Source{}, err
		}
		return Source{Kind: k, Path: abs, Tag: tag}, nil
	}
	if strings.Contains(s, "://") {
		return Source{}, fmt.Errorf("%q is not an image reference: write it without a scheme, as in localhost:5000/app:latest", s)
	}
	ref, err := ParseReference(s)
	if err != nil {
		return Source{}, err
	}
	return Source{Kind: KindRegistry, Ref: ref}, nil
}

// ParseReference parses a registry reference; a missing tag is "latest".
func ParseReference(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("parsing image reference %q: %w", s, err)
	}
	return ref, nil
}

// String is the source as the user would write it.
func (s Source) String() string {
	if s.Kind == KindRegistry {
		return DisplayName(s.Ref)
	}
	if s.Tag != "" {
		return s.Kind + ":" + s.Path + ":" + s.Tag
	}
	return s.Kind + ":" + s.Path
}

// DisplayName is how hutch names a registry image: Docker Hub's
// "index.docker.io" shown as "docker.io", tags and digests kept.
func DisplayName(ref name.Reference) string {
	repo := ref.Context().Name()
	if r, ok := strings.CutPrefix(repo, name.DefaultRegistry+"/"); ok {
		repo = "docker.io/" + r
	}
	switch r := ref.(type) {
	case name.Tag:
		return repo + ":" + r.TagStr()
	case name.Digest:
		return repo + "@" + r.DigestStr()
	}
	return ref.String()
}

// NormalizeName turns a user's image name into the index's key: a
// reference's DisplayName, so that "busybox", "docker.io/busybox" and
// "index.docker.io/library/busybox:latest" are one image.
func NormalizeName(s string) (string, error) {
	ref, err := ParseReference(s)
	if err != nil {
		return "", err
	}
	return DisplayName(ref), nil
}

// DefaultPlatform is the host's: linux and the architecture hutch was
// built for (amd64 on x86-64 machines).
func DefaultPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// ParsePlatform reads "os/arch[/variant]".
func ParsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		return DefaultPlatform(), nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("platform %q is not OS/ARCH[/VARIANT], as in linux/amd64 or linux/arm64/v8", s)
	}
	return *p, nil
}

// platformMatches reports whether have (an image's or a descriptor's
// platform) runs as want; an unset variant matches any.
func platformMatches(want, have v1.Platform) bool {
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	return want.Variant == "" || have.Variant == "" || want.Variant == have.Variant
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// DetectLocal reads what kind of local source the file or directory at p
// is, for a path given without its KIND: prefix: a directory holding an
// oci-layout file, or a tar archive written by docker save (manifest.json,
// preferred, since it names its tags) or as an OCI archive (oci-layout).
// Only tar headers are read.
func DetectLocal(p string) (Source, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return Source{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return Source{}, err
	}
	if fi.IsDir() {
		if _, err := os.Stat(filepath.Join(abs, "oci-layout")); err != nil {
			return Source{}, fmt.Errorf("%s is a directory without an oci-layout file: not an OCI image layout", p)
		}
		return Source{Kind: KindOCILayout, Path: abs}, nil
	}
	f, err := os.Open(abs)
	if err != nil {
		return Source{}, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var docker, oci bool
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Source{}, fmt.Errorf("%s is not a tar archive (%v): docker save and OCI archives are uncompressed tar files", p, err)
		}
		switch path.Clean(h.Name) {
		case "manifest.json":
			docker = true
		case "oci-layout":
			oci = true
		}
	}
	switch {
	case docker:
		return Source{Kind: KindDockerArchive, Path: abs}, nil
	case oci:
		return Source{Kind: KindOCIArchive, Path: abs}, nil
	}
	return Source{}, fmt.Errorf("%s is a tar archive with neither manifest.json nor oci-layout: not an image archive", p)
}
