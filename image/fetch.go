package image

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sys/unix"
)

// A registry is a server hutch does not control. Every request to one (the
// manifests go-containerregistry fetches and the blobs download fetches)
// goes through guardTransport, which holds the rules go-containerregistry
// applies to its own redirects, and bounds time: the registry must answer,
// and keep sending, within the pull's timeout. download bounds size and
// checks a resumed range.

// Errors a hostile or broken registry gets.
var (
	ErrRedirect     = errors.New("redirect refused")
	ErrStalled      = errors.New("the registry stopped sending")
	ErrBlobSize     = errors.New("blob larger than its manifest says")
	ErrContentRange = errors.New("resumed download at the wrong offset")
)

// DefaultTimeout is how long a registry may keep a pull waiting, for an
// answer or for the next bytes of one.
const DefaultTimeout = 60 * time.Second

// maxRedirects is net/http's default, and the bound go-containerregistry
// puts on token-server redirects.
const maxRedirects = 10

// guardTransport checks redirects before they are dialed and cancels a
// request that has been silent for timeout.
type guardTransport struct {
	inner   http.RoundTripper
	timeout time.Duration
}

func (g *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkRedirect(req); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	stalled := fmt.Errorf("%w: no answer within %v from %s", ErrStalled, g.timeout, req.URL.Host)
	t := time.AfterFunc(g.timeout, func() { cancel(stalled) })
	resp, err := g.inner.RoundTrip(req.WithContext(ctx))
	if err != nil {
		t.Stop()
		if context.Cause(ctx) == stalled {
			err = stalled
		}
		cancel(nil)
		return nil, err
	}
	t.Stop() // until the next read: a slow reader is not a slow registry
	resp.Body = &stallBody{rc: resp.Body, t: t, timeout: g.timeout, ctx: ctx, cancel: cancel,
		stalled: fmt.Errorf("%w: nothing for %v from %s", ErrStalled, g.timeout, req.URL.Host)}
	return resp, nil
}

// stallBody fails a read that waits longer than timeout for a byte.
type stallBody struct {
	rc      io.ReadCloser
	t       *time.Timer
	timeout time.Duration
	ctx     context.Context
	cancel  context.CancelCauseFunc
	stalled error
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.t.Reset(b.timeout)
	n, err := b.rc.Read(p)
	b.t.Stop()
	if err != nil && err != io.EOF && errors.Is(context.Cause(b.ctx), ErrStalled) {
		err = b.stalled
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.t.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// checkRedirect holds a redirected request to go-containerregistry's rules:
// at most maxRedirects hops, never from https down to http, and never from
// one host to another whose address is loopback, private or link-local (a
// registry must not make hutch reach a service inside the network, such
// as 169.254.169.254). It runs before the request is dialed. A request
// that is not a redirect passes.
func checkRedirect(req *http.Request) error {
	hops := 0
	first := req
	secure := false
	for r := req; r.Response != nil && r.Response.Request != nil; r = r.Response.Request {
		hops++
		first = r.Response.Request
		if first.URL.Scheme == "https" {
			secure = true
		}
	}
	if hops == 0 {
		return nil
	}
	to := req.URL.Redacted()
	switch {
	case hops > maxRedirects:
		return fmt.Errorf("%w: more than %d redirects, the last to %s", ErrRedirect, maxRedirects, to)
	case req.URL.Scheme != "https" && req.URL.Scheme != "http":
		return fmt.Errorf("%w: to %s, which is not http or https", ErrRedirect, to)
	case secure && req.URL.Scheme != "https":
		return fmt.Errorf("%w: from https down to %s", ErrRedirect, to)
	}
	if h := req.URL.Hostname(); h != first.URL.Hostname() && internalIP(h) {
		return fmt.Errorf("%w: from %s to %s, an internal address", ErrRedirect, first.URL.Host, to)
	}
	return nil
}

// internalIP reports whether host is an IP literal of loopback, private,
// link-local or unspecified address.
func internalIP(host string) bool {
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast())
}

// checkContentRange checks a 206 answer to "Range: bytes=have-" for a blob
// of size bytes: it must start at have, and end at the blob's end.
func checkContentRange(cr string, have, size int64) error {
	bad := fmt.Errorf("%w: asked for bytes %d- of %d, the registry sent %q", ErrContentRange, have, size, cr)
	spec, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return bad
	}
	rng, total, ok := strings.Cut(spec, "/")
	if !ok {
		return bad
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return bad
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start != have || end != size-1 {
		return bad
	}
	if total != "*" {
		if n, err := strconv.ParseInt(total, 10, 64); err != nil || n != size {
			return bad
		}
	}
	return nil
}

// fetch GETs the rest of blob d from *have on, appending it to f and h.
// A registry that sends more than d.Size in all gets ErrBlobSize: the
// manifest's size is the bound, not what the registry says.
func (s *Store) fetch(ctx context.Context, so *source, d v1.Descriptor, f *os.File, h hash.Hash, have *int64, pr *progress, restart func()) error {
	dg := d.Digest.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, so.blobURL(dg), nil)
	if err != nil {
		return err
	}
	if *have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", *have))
	}
	resp, err := so.client.Do(req)
	if err != nil {
		return registryError(nameOf(so), err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && *have > 0:
		if err := checkContentRange(resp.Header.Get("Content-Range"), *have, d.Size); err != nil {
			return fmt.Errorf("%s: layer %s: %w", so.desc, short(dg), err)
		}
	case resp.StatusCode == http.StatusOK:
		// The registry ignored the Range: start over.
		if *have > 0 {
			restart()
		}
	default:
		return registryError(nameOf(so), transport.CheckError(resp, http.StatusOK, http.StatusPartialContent))
	}
	// One byte more than expected shows an oversized blob.
	n, err := io.Copy(io.MultiWriter(f, h, countingWriter{pr}), io.LimitReader(resp.Body, d.Size-*have+1))
	*have += n
	switch {
	case *have > d.Size:
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("%s: layer %s: %w: the registry sent more than the %d bytes it should be", so.desc, short(dg), ErrBlobSize, d.Size)
	case err != nil && (errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)):
		f.Close()
		os.Remove(f.Name())
		return storeError(err, s.Dir)
	case err != nil && (errors.Is(err, ErrStalled) || errors.Is(err, ErrRedirect)):
		return registryError(nameOf(so), err)
	case err != nil:
		// Kept: the next pull resumes from here.
		return fmt.Errorf("%s: downloading layer %s: %w (pull again to resume)", so.desc, short(dg), err)
	case *have < d.Size:
		return fmt.Errorf("%s: downloading layer %s: the registry sent %d of %d bytes (pull again to resume)", so.desc, short(dg), *have, d.Size)
	}
	return nil
}
