// Package result is the document hutch run --result writes: one JSON
// object for machines (CI), written when a run ends whatever the outcome.
// Its schema is versioned and documented in docs/result.md; a test keeps
// the two in step.
//
// The document is written atomically into a directory opened before the
// run starts (Writer): the sandboxed command may write where the file
// goes, and must not be able to point hutch's write elsewhere.
package result

import (
	"math"

	"github.com/hutch-sandbox/hutch/sandbox/supervise"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
)

// Version is the schema's version: it changes when a field changes
// meaning or goes away, not when one is added.
const Version = 1

// Result is the document. Every field is always present: an empty list
// is [], an unknown value null.
type Result struct {
	Version int `json:"version"`
	// Hutch is hutch's own version.
	Hutch string `json:"hutch"`
	// ExitCode is what hutch run exited with: the command's status,
	// 128+signal, 124 for a timeout, or hutch's own (2 usage, 125 hutch,
	// 126 not executable, 127 not found).
	ExitCode int  `json:"exit_code"`
	Signal   int  `json:"signal"`
	TimedOut bool `json:"timed_out"`
	// Usage is null when the command never ran, or its tree was killed
	// before its PID 1 could measure it.
	Usage    *Usage                    `json:"usage"`
	Denials  []proxy.Denial            `json:"denials"`
	Changes  *Changes                  `json:"changes"`
	Services []supervise.ServiceStatus `json:"services"`
	// Error is hutch's own failure; null when hutch did its part (the
	// command's own failure is exit_code, not an error).
	Error *Error `json:"error"`
}

// Usage is what the command's tree used (wire.Usage says what it counts).
type Usage struct {
	WallSeconds float64 `json:"wall_seconds"`
	UserSeconds float64 `json:"user_seconds"`
	SysSeconds  float64 `json:"sys_seconds"`
	// CPUSeconds is user + sys.
	CPUSeconds  float64 `json:"cpu_seconds"`
	MaxRSSBytes int64   `json:"max_rss_bytes"`
}

// Changes are the overlay's changes when the run ended.
type Changes struct {
	// Session is the kept session's name, "" when the changes were thrown
	// away with the run (Kept false).
	Session string  `json:"session"`
	Kept    bool    `json:"kept"`
	Layers  []Layer `json:"layers"`
}

// Layer is one overlaid directory's change counts.
type Layer struct {
	Layer string `json:"layer"`
	// Root is the host directory the layer overlays.
	Root        string `json:"root"`
	Added       int    `json:"added"`
	Modified    int    `json:"modified"`
	Deleted     int    `json:"deleted"`
	TypeChanged int    `json:"type_changed"`
	ModeChanged int    `json:"mode_changed"`
}

// Error is hutch's own failure, as it printed it.
type Error struct {
	// Kind is one of the Kind* constants.
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Hint    string `json:"hint"`
}

// The kinds of Error.
const (
	KindUsage         = "usage"          // a flag, a profile or the command line (exit 2)
	KindNotFound      = "not-found"      // the command is not in the sandbox (127)
	KindNotExecutable = "not-executable" // it cannot be executed (126)
	KindHelperDied    = "helper-died"    // a helper the sandbox needs died (125)
	KindHutch         = "hutch"          // anything else hutch failed at (125)
)

// New assembles the document from how the run ended: run is nil when the
// command never ran, and may be partial when hutch failed after it
// started; code is hutch's exit status; e is hutch's own error or nil.
func New(version string, run *supervise.Result, code int, e *Error) *Result {
	r := &Result{
		Version:  Version,
		Hutch:    version,
		ExitCode: code,
		Denials:  []proxy.Denial{},
		Services: []supervise.ServiceStatus{},
		Error:    e,
	}
	if run == nil {
		return r
	}
	r.Signal, r.TimedOut = run.Signal, run.TimedOut
	r.Usage = usage(run.Usage)
	if run.Denials != nil {
		r.Denials = run.Denials
	}
	if run.Services != nil {
		r.Services = run.Services
	}
	if c := run.Changes; c != nil {
		r.Changes = &Changes{Session: c.Session, Kept: c.Session != "", Layers: []Layer{}}
		for _, l := range c.Layers {
			r.Changes.Layers = append(r.Changes.Layers, Layer{
				Layer: l.Layer, Root: l.Root, Added: l.Counts.Added, Modified: l.Counts.Modified,
				Deleted: l.Counts.Deleted, TypeChanged: l.Counts.TypeChanged, ModeChanged: l.Counts.ModeChanged,
			})
		}
	}
	return r
}

func usage(u *wire.Usage) *Usage {
	if u == nil {
		return nil
	}
	// Microseconds are what the kernel counts in; more digits would be noise.
	sec := func(us int64) float64 { return math.Round(float64(us)) / 1e6 }
	return &Usage{
		WallSeconds: sec(u.WallNS / 1000),
		UserSeconds: sec(u.UserUS),
		SysSeconds:  sec(u.SysUS),
		CPUSeconds:  sec(u.UserUS + u.SysUS),
		MaxRSSBytes: u.MaxRSSKiB * 1024,
	}
}
