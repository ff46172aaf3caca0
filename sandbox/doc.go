// Package sandbox is hutch's domain: it turns a validated Spec into a Plan
// resolved against the host, launches that plan in new namespaces, and runs
// the hidden child side (hutch-init) inside them.
//
// # Data flow
//
// Data flows one way:
//
//	Spec ──NewPlan(spec, ProbeHost())──▶ Plan ──Launch──▶ hutch-init ──▶ command
//
// [NewPlan] is pure, so plans can be golden-tested without namespaces. The
// child never reads flags or TOML: it receives the Plan as JSON on a file
// descriptor and reports back on another (docs/internals.md draws the
// handshake).
//
// # Process tree
//
// The supervisor (hutch run) stays in the host namespaces, relays signals and
// the terminal, and owns the per-run state directory. hutch-init is PID 1 of
// new user, mount, pid, ipc, uts, net (and cgroup) namespaces: it builds the
// new root, drops privileges, starts the command and reaps orphans.
package sandbox
