package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// asTestUser runs the bench as $HUTCH_TEST_USER when started as root, the
// way `make test` runs the test suite: through scripts/run-as-test-user.sh,
// on a copy of the tree the user owns. The results come back into -out.
func asTestUser(o *options, args []string, stdout, stderr io.Writer) int {
	refuse := func(why, hint string) int {
		fmt.Fprintf(stderr, "bench: error: running as root: %s\n", why)
		fmt.Fprintf(stderr, "bench: hint: %s\n", hint)
		return 2
	}
	const why = "hutch is rootless, and as root hutch, bwrap, unshare and podman take privileged paths, so the numbers would mean nothing"
	name := os.Getenv("HUTCH_TEST_USER")
	if name == "" {
		return refuse(why, "run it as a normal user, or as root with HUTCH_TEST_USER=NAME to run it as that user (make bench sets it; make test-user creates the user)")
	}
	u, err := user.Lookup(name)
	if err != nil {
		return refuse(fmt.Sprintf("and the test user %q does not exist", name), "create it with make test-user, or run the bench as a normal user")
	}
	script := filepath.Join(o.src, "scripts", "run-as-test-user.sh")
	if _, err := os.Stat(script); err != nil {
		return refuse(why+"; and "+script+" is missing", "run it as a normal user")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(stderr, "bench: error: %v\n", err)
		return 1
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	tmp, err := os.MkdirTemp("", "hutch-bench-results-")
	if err != nil {
		fmt.Fprintf(stderr, "bench: error: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if err := os.Chown(tmp, uid, gid); err != nil {
		fmt.Fprintf(stderr, "bench: error: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "bench: running as root: measuring as the unprivileged user %s (HUTCH_TEST_USER), on a copy of the tree\n", name)
	// The copy has no .git: say here what it is a copy of. Later flags win.
	child := append([]string{goBin, "run", "./bench"}, args...)
	child = append(child, "-src", ".", "-out", tmp, "-commit", gitDescribe(o.src))
	cmd := exec.Command(script, child...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	err = cmd.Run()
	status := 0
	if err != nil {
		status = 1
		if ee, ok := err.(*exec.ExitError); ok {
			status = ee.ExitCode()
		}
	}
	// Bring the JSON home.
	ents, _ := os.ReadDir(tmp)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(tmp, e.Name()))
		if err != nil {
			continue
		}
		path, err := writeFile(o.out, strings.TrimSuffix(e.Name(), ".json"), data)
		if err != nil {
			fmt.Fprintf(stderr, "bench: error: copying the results: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "JSON (copied back): %s\n", path)
	}
	return status
}
