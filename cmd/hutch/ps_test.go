package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hutch-sandbox/hutch/internal/testenv"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
)

// TestPs: hutch ps lists a running sandbox with its command, network and
// session, and forgets it once it has ended or was killed with -9.
func TestPs(t *testing.T) {
	testenv.RequireUserNS(t)
	run := hutchCmd(t, "run", "--network", "none", "--", "sh", "-c", "echo ready; exec sleep 600")
	stdout, err := run.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { run.Process.Kill(); run.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("the sandbox did not start: %q %v", line, err)
	}

	ps := func() []supervise.RunInfo {
		t.Helper()
		cmd := hutchCmd(t, "ps", "--json")
		cmd.Env = run.Env // the same runtime directory
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("hutch ps: %v", err)
		}
		var list []supervise.RunInfo
		if err := json.Unmarshal(out, &list); err != nil {
			t.Fatalf("hutch ps --json: %v\n%s", err, out)
		}
		return list
	}
	var mine *supervise.RunInfo
	list := ps()
	for i := range list {
		if list[i].PID == run.Process.Pid {
			mine = &list[i]
		}
	}
	if mine == nil {
		t.Fatalf("hutch ps does not list the running sandbox (pid %d): %+v", run.Process.Pid, list)
	}
	if got := strings.Join(mine.Args, " "); got != "sh -c echo ready; exec sleep 600" || mine.Network != "none" || mine.InitPID == 0 || mine.Dir != run.Dir {
		t.Errorf("hutch ps says %+v", *mine)
	}
	table := hutchCmd(t, "ps")
	table.Env = run.Env
	out, err := table.Output()
	if err != nil || !strings.Contains(string(out), "sh -c echo ready; exec sleep 600") || !strings.HasPrefix(string(out), "ID ") {
		t.Errorf("hutch ps: %v\n%s", err, out)
	}

	// kill -9 of hutch: the run is gone from the list at once, though its
	// directory is collected only by the next run.
	run.Process.Kill()
	run.Wait()
	for _, r := range ps() {
		if r.PID == run.Process.Pid {
			t.Errorf("hutch ps still lists the killed run: %+v", r)
		}
	}
}
