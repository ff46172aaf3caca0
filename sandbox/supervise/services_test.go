package supervise

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// TestServiceReport: where the logs are; a service that exited while the
// command ran is a warning with its log's end; one that never became
// ready joins the run's error (its hint kept); every line from the log is
// escaped, and only the last lines are shown.
func TestServiceReport(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := 0; i < 30; i++ {
		lines = append(lines, "line "+string(rune('a'+i%26)))
	}
	lines = append(lines, "evil \x1b]0;owned\x07 end")
	write := func(name, data string) string {
		p := filepath.Join(dir, name+".log")
		os.WriteFile(p, []byte(data), 0o600)
		return p
	}
	sl := &serviceLogs{dir: dir, names: []string{"db", "cache", "web", "idle"},
		paths:  []string{write("db", strings.Join(lines, "\n")+"\n"), write("cache", "bye\n"), write("web", ""), write("idle", "")},
		events: map[string]wire.ServiceEvent{}}
	sl.record(&wire.ServiceEvent{Name: "db", State: "ready"})
	sl.record(&wire.ServiceEvent{Name: "cache", State: "ready"})
	sl.record(&wire.ServiceEvent{Name: "cache", State: "exited", Code: 1})
	sl.record(&wire.ServiceEvent{Name: "web", State: "failed", Reason: "no"})

	var w bytes.Buffer
	err := sl.report(&w, hint.With(errors.New(`service "web" did not become ready: no`), "read its log"))
	out := w.String()
	if !strings.Contains(out, "hutch: services' logs: "+dir+"\n") {
		t.Errorf("no line saying where the logs are:\n%s", out)
	}
	if !strings.Contains(out, `service "cache" exited with status 1 while the command ran`) || !strings.Contains(out, "  | bye") {
		t.Errorf("no warning with the tail of the service that exited:\n%s", out)
	}
	var he *hint.Error
	if err == nil || !errors.As(err, &he) || he.Tip != "read its log" || !strings.Contains(err.Error(), "the last lines of its log ("+sl.paths[2]+"):\n  (the log is empty)") {
		t.Errorf("the failed service's error: %v", err)
	}
	got := logTail(sl.paths[0])
	if n := strings.Count(got, "\n") + 1; n != tailLines {
		t.Errorf("tail has %d lines, want %d", n, tailLines)
	}
	if strings.ContainsAny(got, "\x1b\x07") || !strings.HasSuffix(got, `  | evil \x1b]0;owned\a end`) {
		t.Errorf("tail not escaped: %q", got)
	}
	st := sl.statuses()
	want := []string{"db ready 0", "cache exited 1", "web failed 0", "idle not-started 0"}
	for i, s := range st {
		if got := s.Name + " " + s.State + " " + string(rune('0'+s.ExitCode)); got != want[i] || s.Log != sl.paths[i] {
			t.Errorf("status %d: %q (%s), want %q", i, got, s.Log, want[i])
		}
	}
}
