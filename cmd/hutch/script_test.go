package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hutch-sandbox/hutch/internal/testenv"
	"github.com/hutch-sandbox/hutch/sandbox"
)

// TestMain lets the test binary act as hutch and as the hidden hutch-init
// entry: hutch re-executes /proc/self/exe with argv[0] "hutch-init", and
// testscript dispatches on argv[0].
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"hutch": func() {
			os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr))
		},
		sandbox.InitName: func() { os.Exit(sandbox.InitMain()) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			// Scripts run with a clean environment; give them the host's
			// PATH so helpers (newuidmap, fuse-overlayfs, ...) are found.
			env.Setenv("PATH", os.Getenv("PATH"))
			if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
				env.Setenv("XDG_RUNTIME_DIR", d)
			}
			env.Setenv("HUTCH_TEST_STRICT", os.Getenv("HUTCH_TEST_STRICT"))
			return nil
		},
		Condition: condition,
	})
}

// condition evaluates the custom script conditions. Under
// HUTCH_TEST_STRICT=1 a missing capability is an error, not a false
// condition, so "[!userns] skip" fails the script instead of skipping it.
func condition(cond string) (bool, error) {
	var reason string
	switch cond {
	case "userns":
		reason = testenv.UserNSReason()
	case "root":
		return os.Geteuid() == 0, nil
	default:
		if prog, ok := cutPrefix(cond, "prog:"); ok {
			if _, err := exec.LookPath(prog); err != nil {
				reason = prog + " is not installed"
			}
			break
		}
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	if reason != "" && testenv.Strict() {
		return false, fmt.Errorf("HUTCH_TEST_STRICT=1 forbids skipping: %s", reason)
	}
	return reason == "", nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}
