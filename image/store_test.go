package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hutch-sandbox/hutch/internal/testimage"
	"github.com/hutch-sandbox/hutch/userns"
)

// TestMain lets the test binary act as the hutch-unpack helper, which the
// store re-executes from /proc/self/exe.
func TestMain(m *testing.M) {
	if IsHelper(os.Args[0]) {
		os.Exit(HelperMain())
	}
	os.Exit(m.Run())
}

// mappings are the ones a store is tested with: squashed always, mapped
// when this user has a subordinate range and the helpers (under
// HUTCH_TEST_STRICT=1, CI's test user must have them).
func mappings(t *testing.T) map[string]Mapping {
	out := map[string]Mapping{"squash": {}}
	if os.Geteuid() == 0 {
		return out // root's store would chown for real: not what users run
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	subu, _ := userns.ReadSubIDs("/etc/subuid", u.Username, os.Getuid())
	subg, _ := userns.ReadSubIDs("/etc/subgid", u.Username, os.Getgid())
	nu, err1 := exec.LookPath("newuidmap")
	ng, err2 := exec.LookPath("newgidmap")
	if len(subu) == 0 || len(subg) == 0 || err1 != nil || err2 != nil {
		if os.Getenv("HUTCH_TEST_STRICT") == "1" {
			t.Fatalf("HUTCH_TEST_STRICT=1: no subordinate ids or newuidmap for %s", u.Username)
		}
		return out
	}
	um, _ := userns.Full(0, uint32(os.Getuid()), subu)
	gm, _ := userns.Full(0, uint32(os.Getgid()), subg)
	out["mapped"] = Mapping{UIDMap: um, GIDMap: gm, NewUIDMap: nu, NewGIDMap: ng}
	return out
}

type fixture struct {
	t     *testing.T
	reg   *testimage.Registry
	store *Store
}

func newFixture(t *testing.T, m Mapping) *fixture {
	reg, err := testimage.StartRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	st, err := Open(filepath.Join(t.TempDir(), "images"), m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.removeAll([]string{st.Dir}) })
	return &fixture{t: t, reg: reg, store: st}
}

// push builds an image from layer specs and pushes it as name:tag.
func (f *fixture) push(ref string, specs ...string) v1.Image {
	f.t.Helper()
	var layers [][]byte
	for _, s := range specs {
		l, err := testimage.Layer(s)
		if err != nil {
			f.t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := testimage.Build(testimage.Config{Env: []string{"A=1"}, User: "app"}, layers...)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := testimage.Push(f.reg.Addr+"/"+ref, img, f.reg.Options()...); err != nil {
		f.t.Fatal(err)
	}
	return img
}

func (f *fixture) pull(ref string) (*Image, error) {
	src, err := ParseSource(f.reg.Addr + "/" + ref)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.store.Pull(context.Background(), src, PullOptions{Keychain: authn.NewMultiKeychain()})
}

func (f *fixture) layerDirs() []string {
	ents, _ := os.ReadDir(f.store.layerDir())
	var out []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			out = append(out, e.Name())
		}
	}
	return out
}

const baseLayer = "busybox\nfile /etc/base 0644 0:0 base\n"

func TestPullShareAndRead(t *testing.T) {
	for name, m := range mappings(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, m)
			f.push("one:1", baseLayer, "file /etc/which 0644 0:0 one\ndir /home/app 0750 1000:1000\n")
			f.push("two:1", baseLayer, "file /etc/which 0644 0:0 two\nwhiteout /etc/base\n")
			for _, ref := range []string{"one:1", "two:1"} {
				if _, err := f.pull(ref); err != nil {
					t.Fatal(err)
				}
			}
			// The shared base is stored once: three layers, not four.
			if got := f.layerDirs(); len(got) != 3 {
				t.Errorf("layer dirs %v, want 3", got)
			}
			r1, err := f.store.Root(f.reg.Addr + "/one:1")
			if err != nil {
				t.Fatal(err)
			}
			defer r1.Close()
			if b, err := r1.ReadFile("/etc/which"); err != nil || string(b) != "one" {
				t.Errorf("one: /etc/which = %q, %v", b, err)
			}
			if b, err := r1.ReadFile("/etc/base"); err != nil || string(b) != "base" {
				t.Errorf("one: /etc/base = %q, %v", b, err)
			}
			u, err := r1.LookupUser(r1.Config.User)
			if err != nil || u.UID != 1000 || u.GID != 1000 || u.Home != "/home/app" || u.Name != "app" {
				t.Errorf("user app = %+v, %v", u, err)
			}
			if len(r1.Config.Env) != 1 || r1.Config.Env[0] != "A=1" {
				t.Errorf("env %v", r1.Config.Env)
			}
			// Ownership: mapped keeps the image's uid 1000 as a subordinate id.
			var st fileStat
			st.of(t, filepath.Join(r1.Layers[0], "home/app"))
			if m.Mapped() {
				want := m.UIDMap[len(m.UIDMap)-1].Outside + 999
				if len(m.UIDMap) > 1 {
					want = m.UIDMap[1].Outside + 999
				}
				if st.uid != want {
					t.Errorf("home/app owned by %d, want %d", st.uid, want)
				}
			} else if st.uid != uint32(os.Getuid()) {
				t.Errorf("squashed home/app owned by %d, want %d", st.uid, os.Getuid())
			}
			r2, err := f.store.Root("two:1")
			if err == nil {
				t.Errorf("a short name of another registry's image resolved: %+v", r2.Image)
			}
			r2, err = f.store.Root(f.reg.Addr + "/two:1")
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Close()
			if _, err := r2.ReadFile("/etc/base"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("two: whited-out /etc/base: %v", err)
			}
			// By ID prefix.
			if r, err := f.store.Root(r2.Image.ID[7:19]); err != nil || r.Image.Name != r2.Image.Name {
				t.Errorf("by id: %v", err)
			} else {
				r.Close()
			}
			// Removing one keeps the shared layer; prune waits for running sandboxes.
			if _, err := f.store.Remove([]string{f.reg.Addr + "/one:1"}); !errors.Is(err, ErrInUse) {
				t.Errorf("remove while in use: %v", err)
			}
			r1.Close()
			r2.Close()
			if _, err := f.store.Prune(); err != nil {
				t.Fatal(err)
			}
			if got := f.layerDirs(); len(got) != 2 {
				t.Errorf("after rm one: layer dirs %v, want 2", got)
			}
			if _, err := f.store.Remove([]string{f.reg.Addr + "/two:1"}); err != nil {
				t.Fatal(err)
			}
			if got := f.layerDirs(); len(got) != 0 {
				t.Errorf("after rm two: layer dirs %v, want none", got)
			}
		})
	}
}

type fileStat struct{ uid, gid, mode uint32 }

func (s *fileStat) of(t *testing.T, p string) {
	t.Helper()
	out, err := exec.Command("stat", "-c", "%u %g %a", p).Output()
	if err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	var u, g uint64
	var mode string
	fmt.Sscan(string(out), &u, &g, &mode)
	mo, _ := strconv.ParseUint(mode, 8, 32)
	s.uid, s.gid, s.mode = uint32(u), uint32(g), uint32(mo)
}

func TestTamperedBlobRejected(t *testing.T) {
	for name, m := range mappings(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, m)
			img := f.push("bad:1", baseLayer)
			ls, _ := img.Layers()
			d, _ := ls[0].Digest()
			f.reg.Tamper(d.String())
			_, err := f.pull("bad:1")
			if !errors.Is(err, ErrDigest) {
				t.Fatalf("pull of a tampered blob: %v, want ErrDigest", err)
			}
			if ims, _ := f.store.List(); len(ims) != 0 {
				t.Errorf("stored %+v", ims)
			}
			if got := f.layerDirs(); len(got) != 0 {
				t.Errorf("left layer dirs %v", got)
			}
			if ents, _ := os.ReadDir(f.store.blobDir()); len(ents) != 0 {
				t.Errorf("left blobs %v", ents)
			}
		})
	}
}

func TestInterruptedPullResumes(t *testing.T) {
	f := newFixture(t, Mapping{})
	img := f.push("big:1", baseLayer+"file /big 0644 0:0 "+strings.Repeat("0123456789abcdef", 4096)+"\n")
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	size, _ := ls[0].Size()
	f.reg.Interrupt(d.String(), size/2)
	if _, err := f.pull("big:1"); err == nil {
		t.Fatal("the interrupted pull succeeded")
	}
	part := filepath.Join(f.store.blobDir(), d.Hex+".partial")
	fi, err := os.Stat(part)
	if err != nil || fi.Size() != size/2 {
		t.Fatalf("partial download: %v, %v (want %d bytes)", fi, err, size/2)
	}
	if ims, _ := f.store.List(); len(ims) != 0 {
		t.Errorf("an interrupted image is listed: %+v", ims)
	}
	f.reg.ClearRequests()
	if _, err := f.pull("big:1"); err != nil {
		t.Fatal(err)
	}
	ranged := false
	for _, r := range f.reg.Requests() {
		if strings.Contains(r, d.String()) && strings.Contains(r, fmt.Sprintf("Range: bytes=%d-", size/2)) {
			ranged = true
		}
	}
	if !ranged {
		t.Errorf("the second pull did not resume with a Range request: %q", f.reg.Requests())
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Errorf("partial download left behind: %v", err)
	}
}

func TestConcurrentPulls(t *testing.T) {
	for name, m := range mappings(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, m)
			f.push("c:1", baseLayer, "file /x 0644 0:0 x\n")
			f.push("c:2", baseLayer, "file /y 0644 0:0 y\n")
			var wg sync.WaitGroup
			errs := make([]error, 6)
			for i := range errs {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					_, errs[i] = f.pull(fmt.Sprintf("c:%d", i%2+1))
				}(i)
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if got := f.layerDirs(); len(got) != 3 {
				t.Errorf("layer dirs %v, want 3", got)
			}
			if ims, _ := f.store.List(); len(ims) != 2 {
				t.Errorf("images %+v, want 2", ims)
			}
		})
	}
}

func TestRegistryErrors(t *testing.T) {
	f := newFixture(t, Mapping{})
	f.push("ok:1", baseLayer)
	if _, err := f.pull("missing:1"); !errors.Is(err, ErrUnknownImage) {
		t.Errorf("unknown image: %v", err)
	}
	f.reg.SetAuth("alice", "secret")
	if _, err := f.pull("ok:1"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("no credentials: %v", err)
	}
	src, _ := ParseSource("127.0.0.1:1/x:1")
	if _, err := f.store.Pull(context.Background(), src, PullOptions{Keychain: authn.NewMultiKeychain()}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("unreachable: %v", err)
	}
	arm := v1.Platform{OS: "linux", Architecture: "arm64"}
	f.reg.SetAuth("", "")
	src, _ = ParseSource(f.reg.Addr + "/ok:1")
	if _, err := f.store.Pull(context.Background(), src, PullOptions{Platform: &arm, Keychain: authn.NewMultiKeychain()}); !errors.Is(err, ErrPlatform) {
		t.Errorf("platform: %v", err)
	}
}

func TestPlatformFromIndex(t *testing.T) {
	f := newFixture(t, Mapping{})
	var imgs []v1.Image
	for _, arch := range []string{"amd64", "arm64"} {
		l, _ := testimage.Layer("file /arch 0644 0:0 " + arch + "\n")
		img, err := testimage.Build(testimage.Config{OS: "linux", Arch: arch}, l)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	idx, err := testimage.Index(imgs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := testimage.PushIndex(f.reg.Addr+"/multi:1", idx); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		p := v1.Platform{OS: "linux", Architecture: arch}
		src, _ := ParseSource(f.reg.Addr + "/multi:1")
		im, err := f.store.Pull(context.Background(), src, PullOptions{Platform: &p, Keychain: authn.NewMultiKeychain()})
		if err != nil {
			t.Fatal(err)
		}
		r, err := f.store.Root(im.Name)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := r.ReadFile("/arch"); string(b) != arch {
			t.Errorf("--platform linux/%s stored /arch %q", arch, b)
		}
		r.Close()
	}
	p := v1.Platform{OS: "linux", Architecture: "s390x"}
	src, _ := ParseSource(f.reg.Addr + "/multi:1")
	_, err = f.store.Pull(context.Background(), src, PullOptions{Platform: &p, Keychain: authn.NewMultiKeychain()})
	if !errors.Is(err, ErrPlatform) || !strings.Contains(err.Error(), "linux/amd64, linux/arm64") {
		t.Errorf("s390x: %v", err)
	}
}

func TestParseSource(t *testing.T) {
	tests := []struct {
		in, kind, path, tag, name, err string
	}{
		{in: "alpine", kind: KindRegistry, name: "docker.io/library/alpine:latest"},
		{in: "docker.io/library/alpine:3.20", kind: KindRegistry, name: "docker.io/library/alpine:3.20"},
		{in: "localhost:5000/x", kind: KindRegistry, name: "localhost:5000/x:latest"},
		{in: "ghcr.io/o/r@sha256:" + strings.Repeat("a", 64), kind: KindRegistry, name: "ghcr.io/o/r@sha256:" + strings.Repeat("a", 64)},
		{in: "oci-layout:/tmp/l:v1", kind: KindOCILayout, path: "/tmp/l", tag: "v1"},
		{in: "oci-layout:/tmp/l", kind: KindOCILayout, path: "/tmp/l"},
		{in: "docker-archive:/a/b.tar", kind: KindDockerArchive, path: "/a/b.tar"},
		{in: "oci-archive:/a/b.tar:latest", kind: KindOCIArchive, path: "/a/b.tar", tag: "latest"},
		{in: "oci-layout:", err: "names no path"},
		{in: "https://x/y", err: "without a scheme"},
		{in: "UPPER/case", err: "parsing image reference"},
	}
	for _, tt := range tests {
		s, err := ParseSource(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if s.Kind != tt.kind || s.Path != tt.path || s.Tag != tt.tag || tt.name != "" && s.String() != tt.name {
			t.Errorf("%q: %+v (%s)", tt.in, s, s)
		}
	}
}

// TestFullDisk pulls into a store on a 512 KiB tmpfs, which the test
// mounts in a user and mount namespace of its own (re-executing itself):
// the pull fails saying the disk is full, and leaves nothing half stored.
func TestFullDisk(t *testing.T) {
	if dir := os.Getenv("HUTCH_TEST_FULLDISK"); dir != "" {
		fullDiskChild(t, dir)
		return
	}
	f := newFixture(t, Mapping{})
	f.push("big:1", baseLayer+"file /big 0644 0:0 "+strings.Repeat("x", 2<<20)+"\n")
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFullDisk$", "-test.v")
	cmd.Env = append(os.Environ(), "HUTCH_TEST_FULLDISK="+dir, "HUTCH_TEST_REGISTRY="+f.reg.Addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "full disk: ok") {
		t.Fatalf("%v\n%s", err, out)
	}
}

func fullDiskChild(t *testing.T, dir string) {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=512k"); err != nil {
		t.Fatalf("mounting a small tmpfs: %v", err)
	}
	st, err := Open(filepath.Join(dir, "images"), Mapping{})
	if err != nil {
		t.Fatal(err)
	}
	src, _ := ParseSource(os.Getenv("HUTCH_TEST_REGISTRY") + "/big:1")
	_, err = st.Pull(context.Background(), src, PullOptions{Keychain: authn.NewMultiKeychain()})
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("pull onto a full disk: %v, want ErrNoSpace", err)
	}
	var h interface{ Hint() string }
	if !errors.As(err, &h) || !strings.Contains(h.Hint(), "hutch image prune") {
		t.Errorf("no hint to free space: %v", err)
	}
	if ims, _ := st.List(); len(ims) != 0 {
		t.Errorf("stored %+v", ims)
	}
	ents, _ := os.ReadDir(st.layerDir())
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("left %s in the layer store", e.Name())
		}
	}
	if blobs, _ := os.ReadDir(st.blobDir()); len(blobs) != 0 {
		t.Errorf("left blobs %v", blobs)
	}
	fmt.Println("full disk: ok")
}

// TestMovedTag: pulling a tag that moved replaces the image and frees the
// layers only its old image used.
func TestMovedTag(t *testing.T) {
	f := newFixture(t, Mapping{})
	f.push("moving:1", "file /v 0644 0:0 1\n")
	if _, err := f.pull("moving:1"); err != nil {
		t.Fatal(err)
	}
	f.push("moving:1", "file /v 0644 0:0 2\n")
	im, err := f.pull("moving:1")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.layerDirs(); len(got) != 1 || "sha256:"+got[0] != im.Layers[0] {
		t.Errorf("layer dirs %v, want only %s", got, im.Layers[0])
	}
	if ims, _ := f.store.List(); len(ims) != 1 || ims[0].Digest != im.Digest {
		t.Errorf("images %+v", ims)
	}
}

// TestZstdAndUncompressedLayers: registries also serve zstd layers (OCI
// +zstd) and uncompressed ones; both unpack and verify.
func TestZstdAndUncompressedLayers(t *testing.T) {
	f := newFixture(t, Mapping{})
	raw1, _ := testimage.Layer("file /z 0644 0:0 zstd\n")
	raw2, _ := testimage.Layer("file /u 0644 0:0 plain\n")
	opener := func(b []byte) tarball.Opener {
		return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	zl, err := tarball.LayerFromOpener(opener(raw1), tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	ul, err := tarball.LayerFromOpener(opener(raw2), tarball.WithMediaType(types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), zl, ul)
	if err != nil {
		t.Fatal(err)
	}
	if err := testimage.Push(f.reg.Addr+"/zstd:1", img); err != nil {
		t.Fatal(err)
	}
	im, err := f.pull("zstd:1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.store.Root(im.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for p, want := range map[string]string{"/z": "zstd", "/u": "plain"} {
		if b, err := r.ReadFile(p); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v", p, b, err)
		}
	}
}
