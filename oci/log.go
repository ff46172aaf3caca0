package oci

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hutch-sandbox/hutch/internal/esc"
)

// OpenLog is where hutch oci's messages go: with --log FILE, appended to
// it, one line each, as runc's logrus writes them (--log-format text:
// time="…" level=… msg="…"; json: {"level":…,"msg":…,"time":…}), which
// engines read back; without, "hutch: LEVEL: msg" on stderr. Debug lines
// only with --debug. The closer closes the file.
func OpenLog(file, format string, debug bool, stderr io.Writer) (func(level, msg string), func()) {
	var w io.Writer
	closer := func() {}
	if file != "" {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "hutch: warning: opening the log %s: %v; logging to stderr\n", file, err)
		} else {
			w, closer = f, func() { f.Close() }
		}
	}
	return func(level, msg string) {
		if level == "debug" && !debug {
			return
		}
		if w == nil {
			fmt.Fprintf(stderr, "hutch: %s: %s\n", level, esc.Text(msg))
			return
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		if format == "json" {
			line, _ := json.Marshal(struct {
				Level string `json:"level"`
				Msg   string `json:"msg"`
				Time  string `json:"time"`
			}{level, msg, now})
			fmt.Fprintf(w, "%s\n", line)
			return
		}
		q, _ := json.Marshal(msg)
		fmt.Fprintf(w, "time=%q level=%s msg=%s\n", now, level, q)
	}, closer
}
