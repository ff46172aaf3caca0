package main

import (
	"os"
	"testing"
)

// TestCgoBuild keeps make test-cgo honest: with HUTCH_TEST_CGO=1 the
// privilege checks must run in a cgo build (a plain `go build` on a
// machine with a C compiler), where init drops its capabilities through
// libc's threads rather than syscall.AllThreadsSyscall.
func TestCgoBuild(t *testing.T) {
	want := os.Getenv("HUTCH_TEST_CGO") == "1"
	if want != cgoBuild {
		t.Fatalf("HUTCH_TEST_CGO=%q but this test binary has cgo=%v", os.Getenv("HUTCH_TEST_CGO"), cgoBuild)
	}
}
