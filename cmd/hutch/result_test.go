package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hutch-sandbox/hutch/internal/testenv"
	"github.com/hutch-sandbox/hutch/result"
)

// readResult decodes --result's document strictly: a field the schema
// does not name fails the test.
func readResult(t *testing.T, path string) *result.Result {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no result document: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r result.Result
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decoding the result: %v\n%s", err, data)
	}
	// Lists are [] when empty, never null: a consumer need not check.
	for _, key := range []string{`"denials": [`, `"services": [`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("the result lacks %s:\n%s", key, data)
		}
	}
	return &r
}

// TestResult: --result is written for each way a run ends: success, the
// command's failure, a signal, a timeout, hutch's own error before the
// start (a bad flag value, a profile) and after it (the command missing).
func TestResult(t *testing.T) {
	testenv.RequireUserNS(t)
	type want struct {
		code      int
		signal    int
		timedOut  bool
		usage     bool
		errKind   string
		errSubstr string
	}
	cases := []struct {
		name    string
		args    []string
		profile string // the project's hutch.toml
		want    want
	}{
		{"success", []string{"--", "true"}, "", want{code: 0, usage: true}},
		{"failure", []string{"--", "sh", "-c", "exit 3"}, "", want{code: 3, usage: true}},
		{"signal", []string{"--", "sh", "-c", "kill -KILL $$"}, "", want{code: 137, signal: 9, usage: true}},
		{"timeout", []string{"--timeout", "200ms", "--", "sleep", "600"}, "", want{code: 124, signal: 15, timedOut: true, usage: true}},
		{"bad-flag", []string{"--memory", "lots", "--", "true"}, "", want{code: 2, errKind: result.KindUsage, errSubstr: `"lots" is not a size`}},
		{"bad-profile", []string{"--", "true"}, "[network]\nmode = \"warp\"\n", want{code: 2, errKind: result.KindUsage, errSubstr: "warp"}},
		{"not-found", []string{"--", "no-such-command-here"}, "", want{code: 127, errKind: result.KindNotFound, errSubstr: "no-such-command-here"}},
		{"dry-run", []string{"--dry-run", "--", "true"}, "", want{code: 2, errKind: result.KindUsage, errSubstr: "--dry-run runs nothing"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := hutchCmd(t, append([]string{"run", "--result", "out/result.json"}, tc.args...)...)
			os.Mkdir(filepath.Join(cmd.Dir, "out"), 0o755)
			if tc.profile != "" {
				os.WriteFile(filepath.Join(cmd.Dir, "hutch.toml"), []byte(tc.profile), 0o644)
			}
			out, _ := cmd.CombinedOutput()
			if got := cmd.ProcessState.ExitCode(); got != tc.want.code {
				t.Errorf("hutch exited %d, want %d:\n%s", got, tc.want.code, out)
			}
			r := readResult(t, filepath.Join(cmd.Dir, "out/result.json"))
			w := tc.want
			if r.Version != result.Version || r.ExitCode != w.code || r.Signal != w.signal || r.TimedOut != w.timedOut {
				t.Errorf("version %d exit_code %d signal %d timed_out %v, want %d %d %d %v",
					r.Version, r.ExitCode, r.Signal, r.TimedOut, result.Version, w.code, w.signal, w.timedOut)
			}
			if (r.Usage != nil) != w.usage {
				t.Errorf("usage %+v, want present: %v", r.Usage, w.usage)
			}
			if r.Usage != nil && (r.Usage.WallSeconds <= 0 || r.Usage.MaxRSSBytes <= 0) {
				t.Errorf("usage %+v: no wall time or memory", r.Usage)
			}
			switch {
			case w.errKind == "" && r.Error != nil:
				t.Errorf("error %+v, want none", r.Error)
			case w.errKind != "" && (r.Error == nil || r.Error.Kind != w.errKind || !strings.Contains(r.Error.Message, w.errSubstr)):
				t.Errorf("error %+v, want kind %q with %q", r.Error, w.errKind, w.errSubstr)
			}
			// No temporary file is left beside the document.
			if ents, _ := os.ReadDir(filepath.Join(cmd.Dir, "out")); len(ents) != 1 {
				t.Errorf("out/ holds %d entries, want the document alone", len(ents))
			}
		})
	}
}

// TestResultUsage: usage covers the command's tree: a grandchild that
// touches 96 MiB and burns CPU, reaped by its parent shell, counts; with
// the fuse overlay driver too, where hutch-stage2 reaps the command.
func TestResultUsage(t *testing.T) {
	testenv.RequireUserNS(t)
	testenv.RequireProgram(t, "python3")
	for _, extra := range [][]string{nil, {"--project-mode", "overlay", "--overlay", "fuse"}} {
		if extra != nil {
			testenv.RequireProgram(t, "fuse-overlayfs")
		}
		args := append(append([]string{"run", "--result", "../r.json"}, extra...), "--", "sh", "-c",
			`python3 -c 'b = bytearray(96 << 20); n = sum(range(3000000))'; true`)
		cmd := hutchCmd(t, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		r := readResult(t, filepath.Join(cmd.Dir, "../r.json"))
		u := r.Usage
		if u == nil || u.MaxRSSBytes < 96<<20 || u.CPUSeconds <= 0 || u.CPUSeconds != roundUS(u.UserSeconds+u.SysSeconds) {
			t.Errorf("%v: usage %+v: want max_rss_bytes >= 96 MiB and cpu = user + sys > 0", extra, u)
		}
	}
}

// TestScriptFlag: --script FILE shows that one file, read-only, at its own
// path, and appends it to the command; its directory's other files stay
// out of sight. Without it the same file is not there: the control.
func TestScriptFlag(t *testing.T) {
	testenv.RequireUserNS(t)
	dir := t.TempDir() // outside the project and the sandbox's view
	script := filepath.Join(dir, "step.sh")
	os.WriteFile(filepath.Join(dir, "other-secret"), []byte("x\n"), 0o600)
	os.WriteFile(script, []byte(`echo "ran $0 $#"
if echo >> "$0"; then echo "script: writable"; else echo "script: read-only"; fi
ls "$(dirname "$0")"
`), 0o644)
	cmd := hutchCmd(t, "run", "--script", script, "--", "sh")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{"ran " + script + " 0\n", "script: read-only\n", "step.sh\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "other-secret") {
		t.Errorf("the script's neighbour is visible:\n%s", got)
	}
	cmd = hutchCmd(t, "run", "--", "sh", script)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("control: the script is visible without --script:\n%s", out)
	}
	cmd = hutchCmd(t, "run", "--script", filepath.Join(dir, "missing.sh"), "--", "sh")
	if out, _ := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "missing.sh") {
		t.Errorf("a missing --script: exit %d, want 2 naming it:\n%s", cmd.ProcessState.ExitCode(), out)
	}
}

func roundUS(s float64) float64 {
	return float64(int64(s*1e6+0.5)) / 1e6
}

// TestResultChanges: an overlaid project's changes are counted, thrown
// away or kept in a session.
func TestResultChanges(t *testing.T) {
	testenv.RequireUserNS(t)
	for _, keep := range []bool{false, true} {
		args := []string{"run", "--result", "../r.json", "--project-mode", "overlay"}
		if keep {
			args = []string{"run", "--result", "../r.json", "--keep", "s1"}
		}
		cmd := hutchCmd(t, append(args, "--", "sh", "-c", "echo new > a; echo more >> old; rm gone")...)
		os.WriteFile(filepath.Join(cmd.Dir, "old"), []byte("old\n"), 0o644)
		os.WriteFile(filepath.Join(cmd.Dir, "gone"), []byte("x\n"), 0o644)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		r := readResult(t, filepath.Join(cmd.Dir, "../r.json"))
		c := r.Changes
		if c == nil || c.Kept != keep || len(c.Layers) != 1 {
			t.Fatalf("keep %v: changes %+v", keep, c)
		}
		l := c.Layers[0]
		if l.Layer != "project" || l.Root != cmd.Dir || l.Added != 1 || l.Modified != 1 || l.Deleted != 1 {
			t.Errorf("keep %v: layer %+v, want project %s: 1 added, 1 modified, 1 deleted", keep, l, cmd.Dir)
		}
		if keep && c.Session != "s1" {
			t.Errorf("session %q, want s1", c.Session)
		}
		if keep {
			// The session's layers hold directories only it can remove.
			d := &exec.Cmd{Path: cmd.Path, Args: []string{"hutch", "discard", "s1"}, Dir: cmd.Dir, Env: cmd.Env}
			if out, err := d.CombinedOutput(); err != nil {
				t.Errorf("hutch discard s1: %v\n%s", err, out)
			}
		}
	}
}

// TestEscapeResultRedirect: the command can write where the result goes
// (the project), and tries to point hutch's write, made as you outside
// the sandbox, at a file of yours elsewhere: a symlink in the document's
// place, or its directory moved away and a symlink put in its stead.
// hutch writes into the directory it opened before the run, and renames
// over the name: the symlink is replaced, never followed. --report is
// written the same way.
func TestEscapeResultRedirect(t *testing.T) {
	testenv.RequireUserNS(t)
	cases := []struct{ name, flag, result, attack string }{
		{"file-symlink", "--result", "result.json", `ln -s "$V/victim" result.json`},
		{"dir-symlink", "--result", "out/result.json", `mv out out.old && ln -s "$V" out`},
		// --report (the proxy's denials) is written the same way.
		{"report-file-symlink", "--report", "result.json", `ln -s "$V/victim" result.json`},
		{"report-dir-symlink", "--report", "out/result.json", `mv out out.old && ln -s "$V" out`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			victims := t.TempDir() // outside the project, and not in the sandbox
			victim := filepath.Join(victims, "victim")
			os.WriteFile(victim, []byte("precious\n"), 0o644)
			cmd := hutchCmd(t, "run", tc.flag, tc.result, "--env", "V="+victims, "--", "sh", "-c", tc.attack)
			os.Mkdir(filepath.Join(cmd.Dir, "out"), 0o755)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			data, _ := os.ReadFile(victim)
			ents, _ := os.ReadDir(victims)
			if string(data) != "precious\n" || len(ents) != 1 {
				t.Fatalf("ESCAPED: hutch's result was written through the command's symlink into %s (victim now %q, %d entries)", victims, data, len(ents))
			}
			t.Logf("blocked: result redirect (%s)", tc.name)
			// The document is where the path led when the run began.
			where := filepath.Join(cmd.Dir, tc.result)
			if strings.HasSuffix(tc.name, "dir-symlink") {
				where = filepath.Join(cmd.Dir, "out.old/result.json")
			}
			if tc.flag == "--report" {
				if data, err := os.ReadFile(where); err != nil || !strings.Contains(string(data), `"blocked": []`) {
					t.Errorf("the report at %s: %v %q", where, err, data)
				}
			} else if r := readResult(t, where); r.ExitCode != 0 {
				t.Errorf("exit_code %d", r.ExitCode)
			}
		})
	}
}

// TestEscapeResultFD: with --preserve-fds N the sandbox gets fds 3 ..
// 2+N as they are in hutch; a caller that did not open them all would
// hand over whatever hutch holds there. The handle on --result's (and
// --report's) directory is numbered above that range: through it the
// command would reach the host's files (/proc/self/fd/N/..). Mutation
// result-fd (the handle where open(2) puts it, fd 5 or so) makes it
// ESCAPED.
func TestEscapeResultFD(t *testing.T) {
	testenv.RequireUserNS(t)
	outside := t.TempDir() // not in the sandbox
	list := `for f in /proc/self/fd/*; do readlink "$f"; done`
	// Twice: with the hutch-init started before the profiles are read
	// (whose fds are the caller's of that moment, before FILE's directory
	// is opened), and with one Launch starts itself (--network host: no
	// early init), which gets its fds when the directory is open.
	for _, extra := range [][]string{nil, {"--network", "host"}} {
		for _, flag := range []string{"--result", "--report"} {
			args := append([]string{"run", "--preserve-fds", "8", flag, filepath.Join(outside, "r.json")}, extra...)
			cmd := hutchCmd(t, append(args, "--", "sh", "-c", list)...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			if strings.Contains(string(out), outside) {
				t.Errorf("ESCAPED: %s's directory reached the sandbox as a preserved fd (%q):\n%s", flag, extra, out)
			} else {
				t.Logf("blocked: %s's directory is not among the preserved fds (%q)", flag, extra)
			}
		}
	}
}

// TestResultWriteFails: a document that cannot be written (the command
// made a directory in its place) is an error of hutch's: exit 125 though
// the command succeeded, and no temporary file is left behind.
func TestResultWriteFails(t *testing.T) {
	testenv.RequireUserNS(t)
	cmd := hutchCmd(t, "run", "--result", "out/r.json", "--", "mkdir", "out/r.json")
	os.Mkdir(filepath.Join(cmd.Dir, "out"), 0o755)
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 125 || !strings.Contains(string(out), "hutch: error: writing ") {
		t.Errorf("exit %d, want 125 with the write's error:\n%s", code, out)
	}
	if ents, _ := os.ReadDir(filepath.Join(cmd.Dir, "out")); len(ents) != 1 {
		t.Errorf("out/ holds %d entries, want the command's directory alone", len(ents))
	}
}
