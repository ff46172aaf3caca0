package testimage

import (
	"fmt"
	"net/http"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Hostile is how a hostile registry answers a GET of one blob
// ([Registry.Hostile]). Set one field.
type Hostile struct {
	// RedirectTo answers with a 307 to this URL.
	RedirectTo string
	// RedirectLoop answers with a 307 to the same URL, every time.
	RedirectLoop bool
	// WrongRange answers a Range request with 206 and the whole blob,
	// under a Content-Range that says so ("bytes 0-N/SIZE"), as a broken
	// cache would; a request without Range is served as usual.
	WrongRange bool
	// Endless sends the blob, then zeros without end, with no
	// Content-Length.
	Endless bool
	// Hang never answers: the request waits until the client gives up or
	// the registry closes.
	Hang bool
}

// Hostile makes the registry answer every GET of the blob digest as h
// says, until called again with the zero Hostile.
func (r *Registry) Hostile(digest string, h Hostile) error {
	d, err := v1.NewHash(digest)
	if err != nil {
		return fmt.Errorf("hostile %q: %w", digest, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if h == (Hostile{}) {
		delete(r.hostile, d.String())
	} else {
		r.hostile[d.String()] = h
	}
	return nil
}

// serveHostile answers as h says; false when h leaves the request to the
// registry.
func (r *Registry) serveHostile(w http.ResponseWriter, req *http.Request, h Hostile, digest string) bool {
	blob := func() []byte {
		r.blobs.mu.Lock()
		defer r.blobs.mu.Unlock()
		return r.blobs.m[digest]
	}
	switch {
	case h.RedirectTo != "":
		http.Redirect(w, req, h.RedirectTo, http.StatusTemporaryRedirect)
	case h.RedirectLoop:
		http.Redirect(w, req, req.URL.String(), http.StatusTemporaryRedirect)
	case h.WrongRange && req.Header.Get("Range") != "":
		b := blob()
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(b)-1, len(b)))
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(b)
	case h.Endless:
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write(blob()); err != nil {
			return true
		}
		zeros := make([]byte, 32<<10)
		for {
			if _, err := w.Write(zeros); err != nil {
				return true // the client went
			}
		}
	case h.Hang:
		<-req.Context().Done()
	default:
		return false
	}
	return true
}
