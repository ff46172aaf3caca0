// Package session is the store of kept sessions: the upper layers of runs
// that overlay the project, home or system directories, in
// $XDG_DATA_HOME/hutch/sessions, and what hutch diff, apply, sessions,
// discard and prune do with them.
//
// A session directory, sessions/[@SCOPE/]NAME (0700):
//
//	session.json   Meta
//	lock           flock'd by whoever uses the session; holds its pid
//	running.*      a run in progress (RunMark)
//	baseline       the project as the session began (layers.Baseline)
//	baseline-files the modified files' content, for apply --merge
//	layers/LAYER/upper, layers/LAYER/work
//
// A run that keeps nothing uses a directory ".run-XXXX" beside them,
// removed when it ends (or by the next run, if it was killed).
//
// It runs in the caller's namespaces: in the CLI's commands, and in the
// supervisor of a run, which opens, locks and records its session through
// this package (sandbox's run_layers.go) before PID 1 starts and after it
// ends. Files owned by subordinate ids are read and removed by the hidden
// hutch-layers entry (helper.go) inside a user namespace with the
// session's maps.
//
// It sits below the model: it never imports sandbox (Spec, Plan), the
// supervisor or the PID 1 side, and it never mounts anything. The diff and
// apply mechanisms themselves are the layers leaf's.
package session
