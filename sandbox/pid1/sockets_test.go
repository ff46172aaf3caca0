package pid1

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestScanSockets: the scan finds sockets in a tree's top two levels, and
// not deeper (those are /proc/net/unix's).
func TestScanSockets(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"top.sock", "sub/sub.sock", "sub/deeper/deep.sock"} {
		p = filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		l, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var found []string
	b := &rootBuilder{}
	if err := b.scanSockets(fd, func(rel string) error { found = append(found, rel); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(found)
	if want := []string{"sub/sub.sock", "top.sock"}; !slices.Equal(found, want) {
		t.Errorf("found %q, want %q", found, want)
	}
}

// BenchmarkScanSockets times init's scan of a project shaped like a
// JavaScript one: 20k files, most of them in node_modules.
func BenchmarkScanSockets(b *testing.B) {
	dir := b.TempDir()
	for _, d := range []string{"src", "test", "docs", "scripts", "dist", ".github"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	for i := 0; i < 256; i++ {
		os.MkdirAll(filepath.Join(dir, ".git", "objects", fmt.Sprintf("%02x", i)), 0o755)
	}
	for p := 0; p < 1500; p++ {
		lib := filepath.Join(dir, "node_modules", fmt.Sprintf("pkg%d", p), "lib")
		os.MkdirAll(lib, 0o755)
		for j := 0; j < 12; j++ {
			os.WriteFile(filepath.Join(lib, fmt.Sprintf("m%d.js", j)), nil, 0o644)
		}
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rb := &rootBuilder{}
		rb.scanSockets(fd, func(string) error { return nil })
	}
}

// BenchmarkOpenHost times opening a bind source one component at a time.
func BenchmarkOpenHost(b *testing.B) {
	dir := b.TempDir()
	for i := 0; i < b.N; i++ {
		fd, err := openHost(dir)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
}
