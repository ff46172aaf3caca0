package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// hdr is the part of a tar header the tests compare.
type hdr struct {
	Name     string
	Type     byte
	Mode     int64
	Uid, Gid int
	Link     string
	Major    int64
	Minor    int64
	Body     string
	PAX      map[string]string
}

func readTar(t *testing.T, b []byte) []hdr {
	t.Helper()
	var hs []hdr
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hs
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(Epoch) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, Epoch)
		}
		var pax map[string]string
		for k, v := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				if pax == nil {
					pax = map[string]string{}
				}
				pax[k] = v
			}
		}
		hs = append(hs, hdr{
			Name: h.Name, Type: h.Typeflag, Mode: h.Mode, Uid: h.Uid, Gid: h.Gid,
			Link: h.Linkname, Major: h.Devmajor, Minor: h.Devminor, Body: string(body), PAX: pax,
		})
	}
}

func TestLayer(t *testing.T) {
	for _, tt := range []struct {
		name, spec string
		want       []hdr
	}{
		{"dir defaults", "dir /etc", []hdr{{Name: "etc/", Type: tar.TypeDir, Mode: 0o755}}},
		{"dir mode owner", "dir /home/app 0700 1000:1000", []hdr{{Name: "home/app/", Type: tar.TypeDir, Mode: 0o700, Uid: 1000, Gid: 1000}}},
		{"dir sticky", "dir /tmp 1777", []hdr{{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777}}},
		{"dir owner only", "dir /x 5:6", []hdr{{Name: "x/", Type: tar.TypeDir, Mode: 0o755, Uid: 5, Gid: 6}}},
		{"root dir", "dir /", []hdr{{Name: "./", Type: tar.TypeDir, Mode: 0o755}}},
		{"empty file", "file /a", []hdr{{Name: "a", Type: tar.TypeReg, Mode: 0o644}}},
		{"file content", "file /etc/motd hello  world\\n", []hdr{{Name: "etc/motd", Type: tar.TypeReg, Mode: 0o644, Body: "hello  world\n"}}},
		{"file all", "file /bin/su 04755 0:0 #!/bin/sh\\necho hi\\n", []hdr{{Name: "bin/su", Type: tar.TypeReg, Mode: 0o4755, Body: "#!/bin/sh\necho hi\n"}}},
		{"file owner content", "file /f 1000:1000 x", []hdr{{Name: "f", Type: tar.TypeReg, Mode: 0o644, Uid: 1000, Gid: 1000, Body: "x"}}},
		{"file mode-like content", "file /f 0644 0:0 0755", []hdr{{Name: "f", Type: tar.TypeReg, Mode: 0o644, Body: "0755"}}},
		{"file escapes", `file /f a\tb\\n\x00\xff`, []hdr{{Name: "f", Type: tar.TypeReg, Mode: 0o644, Body: "a\tb\\n\x00\xff"}}},
		{"hostile name", "file /../escape x", []hdr{{Name: "../escape", Type: tar.TypeReg, Mode: 0o644, Body: "x"}}},
		{"symlink", "symlink /bin/sh busybox", []hdr{{Name: "bin/sh", Type: tar.TypeSymlink, Mode: 0o777, Link: "busybox"}}},
		{"symlink owner", "symlink /l /etc/passwd 7:8", []hdr{{Name: "l", Type: tar.TypeSymlink, Mode: 0o777, Link: "/etc/passwd", Uid: 7, Gid: 8}}},
		{"hardlink", "file /a x\nhardlink /b /a", []hdr{
			{Name: "a", Type: tar.TypeReg, Mode: 0o644, Body: "x"},
			{Name: "b", Type: tar.TypeLink, Mode: 0o644, Link: "a"},
		}},
		{"char", "char /dev/null 1 3", []hdr{{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 3}}},
		{"block", "block /dev/sda 8 0", []hdr{{Name: "dev/sda", Type: tar.TypeBlock, Mode: 0o666, Major: 8}}},
		{"fifo", "fifo /run/p", []hdr{{Name: "run/p", Type: tar.TypeFifo, Mode: 0o644}}},
		{"whiteout", "whiteout /etc/motd", []hdr{{Name: "etc/.wh.motd", Type: tar.TypeReg, Mode: 0o644}}},
		{"whiteout top", "whiteout /opt", []hdr{{Name: ".wh.opt", Type: tar.TypeReg, Mode: 0o644}}},
		{"opaque", "opaque /var/lib", []hdr{{Name: "var/lib/.wh..wh..opq", Type: tar.TypeReg, Mode: 0o644}}},
		{"xattr", "file /f x\nxattr /f user.foo bar baz\nxattr /f trusted.t \\x01", []hdr{
			{Name: "f", Type: tar.TypeReg, Mode: 0o644, Body: "x", PAX: map[string]string{
				"SCHILY.xattr.user.foo":  "bar baz",
				"SCHILY.xattr.trusted.t": "\x01",
			}},
		}},
		{"comments and blanks", "# a layer\n\n   \n  dir /d\r\n\t# indented\n", []hdr{{Name: "d/", Type: tar.TypeDir, Mode: 0o755}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Layer(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := readTar(t, b); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestLayerErrors(t *testing.T) {
	for _, tt := range []struct {
		spec, want string
	}{
		{"bogus /x", `line 1: "bogus /x": unknown directive "bogus"`},
		{"# c\n\ndir etc", `line 3: "dir etc": path "etc" is not absolute`},
		{"file", "line 1: \"file\": missing PATH"},
		{"dir /a\ndir /b 0755 0:0 extra", `line 2: "dir /b 0755 0:0 extra": unexpected "extra"`},
		{"dir /d # trailing", `unexpected "# trailing"`},
		{"symlink /a", "line 1: \"symlink /a\": missing TARGET"},
		{"symlink /a b c", `line 1: "symlink /a b c": unexpected "c"`},
		{"hardlink /a", "line 1: \"hardlink /a\": hardlink wants 1 arguments after PATH, got 0"},
		{"hardlink /a b", `line 1: "hardlink /a b": target: path "b" is not absolute`},
		{"char /c 1", "char wants 2 arguments after PATH, got 1"},
		{"block /c x 1", `major "x"`},
		{"char /c 1 y", `minor "y"`},
		{"fifo /p x", "fifo wants 0 arguments"},
		{"whiteout /", `whiteout of "/" names no file`},
		{"xattr /nope user.a b", `line 1: "xattr /nope user.a b": no earlier entry "/nope" in this spec`},
		{"file /a\nxattr /a", "missing NAME"},
		{`file /a \q`, `unknown escape \q`},
		{`file /a \x4`, `short \x escape`},
		{`file /a \xzz`, `bad \x escape`},
		{`file /a x\`, `trailing '\'`},
		{"busybox now", "busybox takes no arguments"},
	} {
		_, err := Layer(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Layer(%q) = %v, want error containing %q", tt.spec, err, tt.want)
			continue
		}
		var se *SpecError
		if !errors.As(err, &se) || se.Line < 1 {
			t.Errorf("Layer(%q) error %v is not a *SpecError with a line", tt.spec, err)
		}
	}
}

func TestBusybox(t *testing.T) {
	b, err := Layer("busybox")
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]hdr{}
	for _, h := range readTar(t, b) {
		got[h.Name] = h
	}
	if h := got["bin/busybox"]; h.Body != string(host) || h.Mode != 0o755 {
		t.Errorf("bin/busybox: mode %o, %d bytes; want 0755, %d bytes", h.Mode, len(h.Body), len(host))
	}
	for _, a := range append([]string{"sh", "cat", "ls", "id", "whoami", "ps", "hostname"}, BusyboxApplets...) {
		if h := got["bin/"+a]; h.Type != tar.TypeSymlink || h.Link != "busybox" {
			t.Errorf("bin/%s = %+v, want a symlink to busybox", a, h)
		}
	}
	for name, want := range map[string]hdr{
		"root/":     {Name: "root/", Type: tar.TypeDir, Mode: 0o700},
		"home/app/": {Name: "home/app/", Type: tar.TypeDir, Mode: 0o755, Uid: 1000, Gid: 1000},
		"tmp/":      {Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
		"etc/":      {Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
		"usr/":      {Name: "usr/", Type: tar.TypeDir, Mode: 0o755},
		"var/":      {Name: "var/", Type: tar.TypeDir, Mode: 0o755},
	} {
		if !reflect.DeepEqual(got[name], want) {
			t.Errorf("%s = %+v, want %+v", name, got[name], want)
		}
	}
	for file, want := range map[string][]string{
		"etc/passwd": {"root:x:0:0:root:/root:/bin/sh\n", "app:x:1000:1000:app:/home/app:/bin/sh\n",
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		"etc/group":      {"root:x:0:\n", "app:x:1000:\n", "nogroup:x:65534:\n"},
		"etc/os-release": {`NAME="hutch-test"`, "ID=hutchtest\n", `PRETTY_NAME="hutch test image (busybox)"`},
	} {
		for _, w := range want {
			if !strings.Contains(got[file].Body, w) {
				t.Errorf("%s = %q, want it to contain %q", file, got[file].Body, w)
			}
		}
	}

	// Reproducible: the same spec gives the same bytes, so the same digest.
	b2, err := Layer("# again\nbusybox\n")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Error("two builds of the busybox layer differ")
	}
}

func mustLayer(t *testing.T, spec string) []byte {
	t.Helper()
	b, err := Layer(spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustBuild(t *testing.T, cfg Config, layers ...[]byte) v1.Image {
	t.Helper()
	img, err := Build(cfg, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func startRegistry(t *testing.T) *Registry {
	t.Helper()
	reg, err := StartRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return reg
}

func TestBuild(t *testing.T) {
	base := mustLayer(t, "busybox")
	top := mustLayer(t, "file /etc/motd hi\\n\nwhiteout /tmp")
	cfg := Config{
		Env:        []string{"PATH=/bin", "A=b"},
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{"echo hi"},
		WorkingDir: "/home/app",
		User:       "app",
	}
	img := mustBuild(t, cfg, base, top)

	mt, err := img.MediaType()
	if err != nil || mt != types.OCIManifestSchema1 {
		t.Errorf("media type %q, %v; want %q", mt, err, types.OCIManifestSchema1)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	want := v1.Config{Env: cfg.Env, Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, WorkingDir: cfg.WorkingDir, User: cfg.User}
	if !reflect.DeepEqual(cf.Config, want) {
		t.Errorf("config %+v, want %+v", cf.Config, want)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 || len(cf.RootFS.DiffIDs) != 2 {
		t.Fatalf("%d layers, %d diff ids; want 2", len(layers), len(cf.RootFS.DiffIDs))
	}
	for i, l := range layers {
		diffID, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		if diffID != cf.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: diff id %v, config says %v", i, diffID, cf.RootFS.DiffIDs[i])
		}
		if mt, _ := l.MediaType(); mt != types.OCILayer {
			t.Errorf("layer %d: media type %q", i, mt)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := [][]byte{base, top}[i]; !bytes.Equal(got, want) {
			t.Errorf("layer %d: uncompressed differs from the tar built", i)
		}
	}

	// Reproducible, and a layer shared by two images has one digest.
	if d1, d2 := digest(t, img), digest(t, mustBuild(t, cfg, base, top)); d1 != d2 {
		t.Errorf("two builds: %v != %v", d1, d2)
	}
	other := mustBuild(t, Config{Arch: "arm64", Variant: "v8"}, base)
	ol, err := other.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, ol[0]) != digest(t, layers[0]) {
		t.Error("the shared busybox layer has two digests")
	}
	if cf, _ := other.ConfigFile(); cf.Architecture != "arm64" || cf.Variant != "v8" {
		t.Errorf("arch %q variant %q, want arm64 v8", cf.Architecture, cf.Variant)
	}

	docker := mustBuild(t, Config{DockerMediaTypes: true}, top)
	if mt, _ := docker.MediaType(); mt != types.DockerManifestSchema2 {
		t.Errorf("docker image media type %q", mt)
	}
}

func TestPushPull(t *testing.T) {
	reg := startRegistry(t)
	img := mustBuild(t, Config{Cmd: []string{"/bin/sh"}}, mustLayer(t, "busybox"), mustLayer(t, "file /a x"))
	ref := reg.Addr + "/busybox:latest"
	if err := Push(ref, img); err != nil {
		t.Fatal(err)
	}
	got, err := Pull(ref)
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, got) != digest(t, img) {
		t.Errorf("pulled %v, pushed %v", digest(t, got), digest(t, img))
	}
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, rc) // verifies the digest at EOF
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	reqs := strings.Join(reg.Requests(), "\n")
	for _, w := range []string{"PUT /v2/busybox/manifests/latest", "GET /v2/busybox/manifests/latest", "GET /v2/busybox/blobs/sha256:"} {
		if !strings.Contains(reqs, w) {
			t.Errorf("request log lacks %q:\n%s", w, reqs)
		}
	}
	reg.ClearRequests()
	if n := len(reg.Requests()); n != 0 {
		t.Errorf("%d requests after ClearRequests", n)
	}
}

func TestIndex(t *testing.T) {
	reg := startRegistry(t)
	base := mustLayer(t, "busybox")
	amd := mustBuild(t, Config{}, base)
	arm := mustBuild(t, Config{Arch: "arm", Variant: "v7"}, base, mustLayer(t, "file /arch arm"))
	idx, err := Index(amd, arm)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Addr + "/multi:1"
	if err := PushIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(ref, name.Insecure)
	got, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, got) != digest(t, idx) {
		t.Errorf("pulled index %v, pushed %v", digest(t, got), digest(t, idx))
	}
	im, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 2 {
		t.Fatalf("index %s with %d manifests", im.MediaType, len(im.Manifests))
	}
	for i, want := range []struct {
		img  v1.Image
		plat string
	}{{amd, "linux/amd64"}, {arm, "linux/arm/v7"}} {
		m := im.Manifests[i]
		if m.Platform == nil || m.Platform.String() != want.plat || m.Digest != digest(t, want.img) {
			t.Errorf("manifest %d: %v %v, want %s %v", i, m.Platform, m.Digest, want.plat, digest(t, want.img))
		}
	}
	// remote.Image resolves the index to the default platform.
	img, err := Pull(ref)
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, img) != digest(t, amd) {
		t.Error("the index did not resolve to its linux/amd64 image")
	}

	d, err := Index(mustBuild(t, Config{DockerMediaTypes: true}, base))
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := d.MediaType(); mt != types.DockerManifestList {
		t.Errorf("index of docker images: %q, want a manifest list", mt)
	}
}

func TestArchives(t *testing.T) {
	dir := t.TempDir()
	img := mustBuild(t, Config{Cmd: []string{"sh"}}, mustLayer(t, "busybox"))
	img2 := mustBuild(t, Config{}, mustLayer(t, "file /two 2"))

	// The same image, whatever the container, has the same config and
	// layers (a docker archive holds no manifest of its own).
	same := func(t *testing.T, got v1.Image, want v1.Image) {
		t.Helper()
		gc, err := got.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		wc, _ := want.ConfigName()
		if gc != wc {
			t.Errorf("config %v, want %v", gc, wc)
		}
		gl, err := got.Layers()
		if err != nil {
			t.Fatal(err)
		}
		wl, _ := want.Layers()
		if len(gl) != len(wl) {
			t.Fatalf("%d layers, want %d", len(gl), len(wl))
		}
		for i := range gl {
			gd, err := gl[i].DiffID()
			if err != nil {
				t.Fatal(err)
			}
			wd, _ := wl[i].DiffID()
			if gd != wd {
				t.Errorf("layer %d: %v, want %v", i, gd, wd)
			}
		}
	}

	t.Run("docker", func(t *testing.T) {
		p := filepath.Join(dir, "img.tar")
		if err := WriteDockerArchive(p, "busybox:1", img); err != nil {
			t.Fatal(err)
		}
		tag, _ := name.NewTag("busybox:1")
		got, err := tarball.ImageFromPath(p, &tag)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, img)
		other, _ := name.NewTag("busybox:2")
		if _, err := tarball.ImageFromPath(p, &other); err == nil {
			t.Error("found a tag the archive lacks")
		}

		p = filepath.Join(dir, "untagged.tar")
		if err := WriteDockerArchive(p, "", img); err != nil {
			t.Fatal(err)
		}
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(p) })
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 1 || len(m[0].RepoTags) != 0 {
			t.Errorf("untagged archive manifest %+v", m)
		}
		got, err = tarball.ImageFromPath(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, img)
	})

	t.Run("oci-layout", func(t *testing.T) {
		p := filepath.Join(dir, "layout")
		if err := WriteOCILayout(p, "v1", img); err != nil {
			t.Fatal(err)
		}
		if err := WriteOCILayout(p, "v2", img2); err != nil {
			t.Fatal(err)
		}
		checkLayout(t, p, map[string]v1.Image{"v1": img, "v2": img2})
	})

	t.Run("oci-archive", func(t *testing.T) {
		p := filepath.Join(dir, "oci.tar")
		if err := WriteOCIArchive(p, "latest", img); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "unpacked")
		untar(t, p, out)
		checkLayout(t, out, map[string]v1.Image{"latest": img})
	})
}

// checkLayout reads the layout at p and wants exactly the tagged images.
func checkLayout(t *testing.T, p string, want map[string]v1.Image) {
	t.Helper()
	lp, err := layout.FromPath(p)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(want) {
		t.Fatalf("%d manifests, want %d", len(im.Manifests), len(want))
	}
	for _, m := range im.Manifests {
		tag := m.Annotations[RefNameAnnotation]
		w, ok := want[tag]
		if !ok {
			t.Errorf("unexpected manifest %v tagged %q", m.Digest, tag)
			continue
		}
		if m.Digest != digest(t, w) {
			t.Errorf("%s: %v, want %v", tag, m.Digest, digest(t, w))
		}
		img, err := lp.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := validateLayers(img); err != nil {
			t.Errorf("%s: %v", tag, err)
		}
	}
}

func validateLayers(img v1.Image) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func get(t *testing.T, url, rng string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal(err)
	}
	return resp, b
}

func TestTamper(t *testing.T) {
	reg := startRegistry(t)
	img := mustBuild(t, Config{}, mustLayer(t, "file /a hello"))
	ref := reg.Addr + "/t:1"
	if err := Push(ref, img); err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	ld := digest(t, ls[0])
	orig, err := ls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	origBytes, _ := io.ReadAll(orig)
	cd, _ := img.ConfigName()
	if err := reg.Tamper(ld.String()); err != nil {
		t.Fatal(err)
	}
	if err := reg.Tamper(cd.String()); err != nil {
		t.Fatal(err)
	}
	if err := reg.Tamper("md5:nope"); err == nil {
		t.Error("Tamper accepted a bad digest")
	}

	pulled, err := Pull(ref)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := pulled.LayerByDigest(ld)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := pl.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	if err == nil || !strings.Contains(err.Error(), "error verifying sha256 checksum") {
		t.Errorf("reading the tampered layer: %v, want a digest error", err)
	}
	if _, err := pulled.RawConfigFile(); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("reading the tampered config: %v, want a digest error", err)
	}

	// Same length, still valid gzip of the same tar: only the digest tells.
	resp, body := get(t, "http://"+reg.Addr+"/v2/t/blobs/"+ld.String(), "")
	if resp.StatusCode != 200 || len(body) != len(origBytes) || bytes.Equal(body, origBytes) {
		t.Fatalf("tampered blob: status %d, %d bytes (want %d, different)", resp.StatusCode, len(body), len(origBytes))
	}
	if resp.Header.Get("Docker-Content-Digest") != ld.String() {
		t.Errorf("Docker-Content-Digest %q, want the true digest", resp.Header.Get("Docker-Content-Digest"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		t.Errorf("tampered gzip blob no longer decompresses: %v", err)
	}
	if h, _, _ := v1.SHA256(bytes.NewReader(body)); h == ld {
		t.Error("tampered blob has the true digest")
	}
}

func TestRangeAndInterrupt(t *testing.T) {
	reg := startRegistry(t)
	img := mustBuild(t, Config{}, mustLayer(t, "busybox"))
	if err := Push(reg.Addr+"/r:1", img); err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	ld := digest(t, ls[0])
	rc, _ := ls[0].Compressed()
	blob, _ := io.ReadAll(rc)
	url := "http://" + reg.Addr + "/v2/r/blobs/" + ld.String()
	n := len(blob)

	for _, tt := range []struct {
		rng    string
		status int
		want   []byte
	}{
		{"bytes=100-", 206, blob[100:]},
		{"bytes=0-9", 206, blob[:10]},
		{fmt.Sprintf("bytes=10-%d", n+50), 206, blob[10:]},
		{"bytes=-5", 206, blob[n-5:]},
		{fmt.Sprintf("bytes=%d-", n), 416, nil},
	} {
		resp, body := get(t, url, tt.rng)
		if resp.StatusCode != tt.status || (tt.want != nil && !bytes.Equal(body, tt.want)) {
			t.Errorf("Range %s: status %d, %d bytes; want %d, %d bytes", tt.rng, resp.StatusCode, len(body), tt.status, len(tt.want))
		}
	}
	if reqs := strings.Join(reg.Requests(), "\n"); !strings.Contains(reqs, "GET /v2/r/blobs/"+ld.String()+" Range: bytes=100-") {
		t.Errorf("request log lacks the Range:\n%s", reqs)
	}

	if err := reg.Interrupt(ld.String(), 1000); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, url, "")
	if len(body) != 1000 {
		t.Errorf("interrupted GET gave %d bytes, want 1000", len(body))
	}
	if _, body := get(t, url, "bytes=1000-"); !bytes.Equal(body, blob[1000:]) {
		t.Errorf("resumed GET gave %d bytes, want %d", len(body), n-1000)
	}
	if _, body := get(t, url, ""); !bytes.Equal(body, blob) {
		t.Error("a second GET was interrupted too")
	}
}

func TestAuth(t *testing.T) {
	reg := startRegistry(t)
	img := mustBuild(t, Config{}, mustLayer(t, "file /a x"))
	reg.SetAuth("alice", "s3cret")
	ref := reg.Addr + "/private:1"
	err := Push(ref, img)
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous push: %v, want 401", err)
	}
	if err := Push(ref, img, reg.Options()...); err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(ref); !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous pull: %v, want 401", err)
	}
	resp, _ := get(t, "http://"+reg.Addr+"/v2/", "")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="test"` {
		t.Errorf("GET /v2/: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if _, err := Pull(ref, remote.WithAuth(&authn.Basic{Username: "alice", Password: "wrong"})); err == nil {
		t.Error("pull with a wrong password succeeded")
	}
	got, err := Pull(ref, reg.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, got) != digest(t, img) {
		t.Error("pulled a different image")
	}
	reg.SetAuth("", "")
	if _, err := Pull(ref); err != nil {
		t.Errorf("anonymous pull after auth was turned off: %v", err)
	}
}
