package supervise

import (
	"os"
	"testing"

	"github.com/hutch-sandbox/hutch/internal/initexe"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/userns"
)

// TestPrestartedFits: Launch takes a prestarted init only when it is the
// process initCommand would start for the plan, the id maps aside (which
// Launch then writes): any other namespace set, fd count, stdio or
// attribute makes it start its own.
func TestPrestartedFits(t *testing.T) {
	t.Run("reexec", func(t *testing.T) { testPrestartedFits(t, nil) })
	// make build's: init from the memfd, passed as init's last fd.
	t.Run("memfd", func(t *testing.T) {
		initexe.Bytes = []byte("hutch-init")
		defer func() { initexe.Bytes = nil }()
		exe, err := initexe.File(t.TempDir()) // no Sum: the memfd
		if err != nil || exe == nil {
			t.Fatalf("initexe.File: %v, %v", exe, err)
		}
		testPrestartedFits(t, exe)
	})
}

func testPrestartedFits(t *testing.T, exe *os.File) {
	stdio := Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	all := []string{"user", "mount", "pid", "ipc", "uts", "net", "cgroup"}
	started := &sandbox.Plan{Namespaces: all, PreserveFDs: 1, MapHelpers: true}
	pre := &Prestarted{stdio: stdio, plan: started,
		ip: &initProc{cmd: initCommand(started, stdio, make([]*os.File, 3), exe)}}

	helpers := &sandbox.Plan{Namespaces: all, PreserveFDs: 1, MapHelpers: true,
		UIDMap: []userns.Mapping{{Inside: 0, Outside: 100000, Size: 65536}}}
	single := &sandbox.Plan{Namespaces: all, PreserveFDs: 1,
		UIDMap: userns.Single(1000, 1000), GIDMap: userns.Single(1000, 1000)}
	hostNet := &sandbox.Plan{Namespaces: []string{"user", "mount", "pid", "ipc", "uts", "cgroup"}, PreserveFDs: 1, MapHelpers: true}
	otherFDs := &sandbox.Plan{Namespaces: all, PreserveFDs: 2, MapHelpers: true}
	otherStdio := stdio
	otherStdio.Stdin = nil

	for _, tc := range []struct {
		name  string
		plan  *sandbox.Plan
		stdio Stdio
		want  bool
	}{
		{"subuid maps", helpers, stdio, true},
		{"one id, mapped by Launch", single, stdio, true},
		{"host network", hostNet, stdio, false},
		{"other preserved fds", otherFDs, stdio, false},
		{"other stdio", helpers, otherStdio, false},
	} {
		if got := pre.fits(tc.plan, tc.stdio); got != tc.want {
			t.Errorf("%s: fits = %v, want %v", tc.name, got, tc.want)
		}
	}
}
