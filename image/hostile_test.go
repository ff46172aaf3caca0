package image

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/hutch-sandbox/hutch/internal/testimage"
)

// hostileFixture is a registry holding one image of one layer, and that
// layer's digest and size.
func hostileFixture(t *testing.T) (*fixture, string, int64) {
	f := newFixture(t, Mapping{})
	img := f.push("h:1", baseLayer+"file /big 0644 0:0 "+strings.Repeat("0123456789abcdef", 4096)+"\n")
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	size, _ := ls[0].Size()
	return f, d.String(), size
}

func (f *fixture) pullWith(ref string, opts PullOptions) (*Image, error) {
	src, err := ParseSource(f.reg.Addr + "/" + ref)
	if err != nil {
		f.t.Fatal(err)
	}
	opts.Keychain = authn.NewMultiKeychain()
	return f.store.Pull(context.Background(), src, opts)
}

// countingListener accepts connections on addr (in 127.0.0.0/8) and
// counts them: a redirect there must be refused before it is dialed.
func countingListener(t *testing.T, addr string) (*atomic.Int32, string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return &n, ln.Addr().String()
}

// TestHostileRegistry pulls from a registry that misbehaves in each way a
// hostile one can: every pull fails with the error for it (a pull that
// succeeds, or fails otherwise, is ESCAPED: a defence did not hold), and
// nothing is stored.
func TestHostileRegistry(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    func(t *testing.T) testimage.Hostile
		want error
		// dialed, when set, counts connections that must not happen.
		dialed *atomic.Int32
	}{
		{"redirect loop", func(*testing.T) testimage.Hostile { return testimage.Hostile{RedirectLoop: true} }, ErrRedirect, nil},
		{"endless body", func(*testing.T) testimage.Hostile { return testimage.Hostile{Endless: true} }, ErrBlobSize, nil},
		{"never answers", func(*testing.T) testimage.Hostile { return testimage.Hostile{Hang: true} }, ErrStalled, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, digest, _ := hostileFixture(t)
			f.reg.Hostile(digest, tt.h(t))
			_, err := f.pullWith("h:1", PullOptions{Timeout: 200 * time.Millisecond})
			if !errors.Is(err, tt.want) {
				t.Fatalf("ESCAPED: pull: %v, want %v", err, tt.want)
			}
			t.Logf("refused: %v", err)
			if ims, _ := f.store.List(); len(ims) != 0 {
				t.Errorf("an image was stored: %+v", ims)
			}
		})
	}
}

// TestHostileRedirectInternal: a registry redirects a blob to another host
// on an internal address (here 127.0.0.2; in the world, 169.254.169.254 or
// a service on the LAN). The pull is refused before the address is dialed.
func TestHostileRedirectInternal(t *testing.T) {
	f, digest, _ := hostileFixture(t)
	dialed, addr := countingListener(t, "127.0.0.2:0")
	f.reg.Hostile(digest, testimage.Hostile{RedirectTo: "http://" + addr + "/v2/h/blobs/" + digest})
	_, err := f.pullWith("h:1", PullOptions{})
	if !errors.Is(err, ErrRedirect) || !strings.Contains(err.Error(), "internal address") {
		t.Fatalf("ESCAPED: pull: %v, want a refused redirect", err)
	}
	if n := dialed.Load(); n != 0 {
		t.Errorf("ESCAPED: the redirect target was dialed %d times", n)
	}
	// Positive control: the same registry serves the blob when it does
	// not redirect.
	f.reg.Hostile(digest, testimage.Hostile{})
	if _, err := f.pullWith("h:1", PullOptions{}); err != nil {
		t.Fatalf("control pull: %v", err)
	}
}

// TestHostileWrongContentRange: a resumed download answered at the wrong
// offset is not appended (it would corrupt the blob): the pull starts over
// and gets the right bytes.
func TestHostileWrongContentRange(t *testing.T) {
	f, digest, size := hostileFixture(t)
	f.reg.Interrupt(digest, size/2)
	if _, err := f.pull("h:1"); err == nil {
		t.Fatal("the interrupted pull succeeded")
	}
	f.reg.Hostile(digest, testimage.Hostile{WrongRange: true})
	f.reg.ClearRequests()
	if _, err := f.pull("h:1"); err != nil {
		t.Fatalf("ESCAPED: pull after a wrong Content-Range: %v", err)
	}
	var blobGets []string
	for _, r := range f.reg.Requests() {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, digest) {
			blobGets = append(blobGets, r)
		}
	}
	want := []string{fmt.Sprintf("GET /v2/h/blobs/%s Range: bytes=%d-", digest, size/2), "GET /v2/h/blobs/" + digest}
	if strings.Join(blobGets, "\n") != strings.Join(want, "\n") {
		t.Errorf("blob requests:\n%s\nwant a resume, then a fresh start:\n%s", strings.Join(blobGets, "\n"), strings.Join(want, "\n"))
	}
	if _, err := os.Stat(filepath.Join(f.store.blobDir(), strings.TrimPrefix(digest, "sha256:")+".partial")); !os.IsNotExist(err) {
		t.Errorf("partial download left behind: %v", err)
	}
}

// TestRedirectDowngrade: an https registry that redirects to http is
// refused before the http address is dialed; an https redirect within the
// same server is followed (positive control).
func TestRedirectDowngrade(t *testing.T) {
	dialed, plain := countingListener(t, "127.0.0.1:0")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/down":
			http.Redirect(w, r, "http://"+plain+"/blob", http.StatusFound)
		case "/same":
			http.Redirect(w, r, "/blob", http.StatusFound)
		default:
			fmt.Fprint(w, "blob")
		}
	}))
	srv.Listener.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.StartTLS()
	defer srv.Close()
	client := &http.Client{Transport: &guardTransport{inner: srv.Client().Transport, timeout: time.Minute}}
	_, err = client.Get(srv.URL + "/down")
	if !errors.Is(err, ErrRedirect) || !strings.Contains(err.Error(), "from https down to") {
		t.Fatalf("ESCAPED: https → http redirect: %v", err)
	}
	if n := dialed.Load(); n != 0 {
		t.Errorf("ESCAPED: the http address was dialed %d times", n)
	}
	resp, err := client.Get(srv.URL + "/same")
	if err != nil {
		t.Fatalf("control: same-server redirect: %v", err)
	}
	resp.Body.Close()
}

// TestCheckRedirect is the redirect policy on requests that are never
// sent: the addresses outside 127.0.0.0/8 are only parsed.
func TestCheckRedirect(t *testing.T) {
	chain := func(urls ...string) *http.Request {
		var prev *http.Request
		for _, u := range urls {
			pu, _ := url.Parse(u)
			r := &http.Request{URL: pu}
			if prev != nil {
				r.Response = &http.Response{Request: prev}
			}
			prev = r
		}
		return prev
	}
	loop := []string{"https://r.example/a"}
	for i := 0; i < 11; i++ {
		loop = append(loop, "https://r.example/a")
	}
	for _, tt := range []struct {
		name string
		req  *http.Request
		ok   bool
	}{
		{"no redirect", chain("http://r.example/v2/"), true},
		{"to a CDN", chain("https://r.example/v2/x", "https://cdn.example.net/blob"), true},
		{"same host, other port", chain("https://r.example/v2/x", "https://r.example:8443/blob"), true},
		{"http registry to http", chain("http://127.0.0.1:5000/v2/x", "http://127.0.0.1:5000/blob"), true},
		{"10 hops", chain(loop[:11]...), true},
		{"11 hops", chain(loop...), false},
		{"https to http", chain("https://r.example/v2/x", "http://r.example/blob"), false},
		{"https to http later", chain("https://r.example/v2/x", "https://cdn.example.net/b", "http://cdn.example.net/b"), false},
		{"to the metadata service", chain("https://r.example/v2/x", "https://169.254.169.254/latest/meta-data"), false},
		{"to the LAN", chain("https://r.example/v2/x", "https://10.0.0.1/blob"), false},
		{"to loopback", chain("https://r.example/v2/x", "https://127.0.0.1/blob"), false},
		{"to IPv6 loopback", chain("https://r.example/v2/x", "https://[::1]/blob"), false},
		{"to link-local v6", chain("https://r.example/v2/x", "https://[fe80::1]/blob"), false},
		{"to file", chain("https://r.example/v2/x", "file:///etc/passwd"), false},
	} {
		err := checkRedirect(tt.req)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrRedirect) {
			t.Errorf("%s: %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestCheckContentRange(t *testing.T) {
	for _, tt := range []struct {
		cr string
		ok bool
	}{
		{"bytes 100-999/1000", true},
		{"bytes 100-999/*", true},
		{"bytes 0-999/1000", false},
		{"bytes 100-998/1000", false},
		{"bytes 100-999/2000", false},
		{"", false},
		{"bytes */1000", false},
		{"items 100-999/1000", false},
	} {
		if err := checkContentRange(tt.cr, 100, 1000); (err == nil) != tt.ok {
			t.Errorf("%q: %v, want ok=%v", tt.cr, err, tt.ok)
		}
	}
}
