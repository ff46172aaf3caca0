package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// forbidden are packages hutch-init must never link: the CLI's, the
// registry client's, the input format's and the HTTP stack. Each costs
// start-up time (package init, a larger binary to map) in every sandbox's
// PID 1, which uses none of them. A path prefix names a module or a tree.
var forbidden = []string{
	"net/http",
	"github.com/google/go-containerregistry",
	"github.com/opencontainers/go-digest",
	"github.com/klauspost/compress",
	"github.com/BurntSushi/toml",
	"github.com/urfave/cli",
	"github.com/hutch-sandbox/hutch/sandbox/supervise",
	"github.com/hutch-sandbox/hutch/sandbox/session",
	"github.com/hutch-sandbox/hutch/image",
	"github.com/hutch-sandbox/hutch/profiles",
	"github.com/hutch-sandbox/hutch/slirp/proxy",
}

// TestInitDeps fails if hutch-init's binary links any forbidden package,
// with and without cgo (whose psx differs), in a normal build and in make
// mutate's.
func TestInitDeps(t *testing.T) {
	for _, env := range [][]string{{"CGO_ENABLED=0"}, {"CGO_ENABLED=1"}, {"CGO_ENABLED=0", "GOFLAGS=-tags=hutch_mutate"}} {
		cmd := exec.Command("go", "list", "-deps", ".")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v go list -deps: %v", env, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 20 {
			t.Fatalf("%v go list -deps found only %d packages: %q", env, len(deps), deps)
		}
		for _, d := range deps {
			if d == "github.com/hutch-sandbox/hutch/sandbox" {
				t.Errorf("%v: hutch-init links package sandbox: the PID 1 side takes the plan's types from sandbox/model", env)
			}
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") || f == "net/http" && strings.Contains(d, "golang.org/x/net/http") {
					t.Errorf("%v: hutch-init links %s (forbidden: %s)", env, d, f)
				}
			}
		}
	}
}
