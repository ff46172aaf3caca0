package supervise

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/internal/hint"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// serviceLogs are the host side of a run's services: one log file each,
// under $XDG_RUNTIME_DIR/hutch/logs/RUN/NAME.log (hidden from every
// sandbox with the rest of hutch's state), kept after the run so that
// hutch run can point at them; and what init reported of each.
type serviceLogs struct {
	dir    string
	names  []string
	paths  []string
	files  []*os.File // passed to init after the preserved fds
	events map[string]wire.ServiceEvent
}

// logKeep is how long a run's service logs stay; older ones go when a
// later run with services starts.
const logKeep = 7 * 24 * time.Hour

// tailLines and tailBytes bound what hutch prints of a service's log.
const (
	tailLines = 20
	tailBytes = 8 << 10
)

// openServiceLogs creates the run's log files; nil when the plan has no
// services.
func openServiceLogs(plan *sandbox.Plan, runDir string) (*serviceLogs, error) {
	if len(plan.Services) == 0 {
		return nil, nil
	}
	root := filepath.Join(plan.StateRoot, "logs")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("creating the services' log directory: %w", err)
	}
	pruneLogs(root)
	sl := &serviceLogs{dir: filepath.Join(root, filepath.Base(runDir)), events: map[string]wire.ServiceEvent{}}
	if err := os.Mkdir(sl.dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the services' log directory: %w", err)
	}
	for _, sv := range plan.Services {
		p := filepath.Join(sl.dir, sv.Name+".log")
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
		if err != nil {
			sl.closeFiles()
			return nil, fmt.Errorf("creating service %q's log: %w", sv.Name, err)
		}
		sl.names, sl.paths, sl.files = append(sl.names, sv.Name), append(sl.paths, p), append(sl.files, f)
	}
	return sl, nil
}

// pruneLogs removes the log directories of runs older than logKeep.
func pruneLogs(root string) {
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && e.IsDir() && time.Since(fi.ModTime()) > logKeep {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

// closeFiles closes hutch's copies once init holds its own.
func (sl *serviceLogs) closeFiles() {
	if sl == nil {
		return
	}
	for _, f := range sl.files {
		f.Close()
	}
	sl.files = nil
}

func (sl *serviceLogs) extraFiles() []*os.File {
	if sl == nil {
		return nil
	}
	return sl.files
}

func (sl *serviceLogs) record(ev *wire.ServiceEvent) {
	if sl == nil {
		return
	}
	if prev, ok := sl.events[ev.Name]; ok && prev.State == "failed" {
		return
	}
	sl.events[ev.Name] = *ev
}

// statuses is Result.Services: each service in start order.
func (sl *serviceLogs) statuses() []ServiceStatus {
	if sl == nil {
		return nil
	}
	var out []ServiceStatus
	for i, n := range sl.names {
		st := ServiceStatus{Name: n, State: "not-started", Log: sl.paths[i]}
		if ev, ok := sl.events[n]; ok {
			st.State, st.ExitCode, st.Signal = ev.State, ev.Code, ev.Signal
		}
		out = append(out, st)
	}
	return out
}

// report tells the user where the logs are, and shows the tail of each
// service that died or never became ready; err is the run's error, which
// a service that failed to become ready caused.
func (sl *serviceLogs) report(w io.Writer, err error) error {
	if sl == nil {
		return err
	}
	fmt.Fprintf(w, "hutch: services' logs: %s\n", sl.dir)
	for i, n := range sl.names {
		ev, ok := sl.events[n]
		if !ok || ev.State == "ready" {
			continue
		}
		tail := logTail(sl.paths[i])
		if ev.State == "failed" && err != nil {
			// The tail joins the error, which the CLI prints once.
			var he *sandbox.HintError
			if errors.As(err, &he) {
				return hint.With(fmt.Errorf("%v; the last lines of its log (%s):\n%s", he.Err, sl.paths[i], tail), "%s", he.Tip)
			}
			return fmt.Errorf("%v; the last lines of its log (%s):\n%s", err, sl.paths[i], tail)
		}
		if ev.State == "exited" {
			fmt.Fprintf(w, "hutch: warning: service %q exited with status %d while the command ran; the last lines of its log (%s):\n%s\n", n, ev.Code, sl.paths[i], tail)
		}
	}
	return err
}

// logTail is the end of a log, each line escaped: the service wrote it.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	defer f.Close()
	var data []byte
	if fi, err := f.Stat(); err == nil && fi.Size() > tailBytes {
		f.Seek(fi.Size()-tailBytes, io.SeekStart)
	}
	data, _ = io.ReadAll(io.LimitReader(f, tailBytes))
	lines := strings.Split(string(bytes.TrimRight(data, "\n")), "\n")
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "  (the log is empty)"
	}
	for i, l := range lines {
		lines[i] = "  | " + esc.Text(l)
	}
	return strings.Join(lines, "\n")
}
