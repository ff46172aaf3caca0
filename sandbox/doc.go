// Package sandbox is hutch's model: Spec (validated intent), Host (facts
// probed once, before anything forks), and Plan (everything resolved,
// built by the pure NewPlan). Launching a plan is sandbox/supervise's;
// what runs inside the namespaces is sandbox/pid1's; the messages between
// them are sandbox/wire's; kept sessions are sandbox/session's.
//
// It runs in the caller's namespaces and must never import either side of
// a run: a plan can be built and golden-tested without namespaces
// (testdata/plans, hutch run --dry-run --json).
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
// The supervisor (hutch run, sandbox/supervise) stays in the host
// namespaces, relays signals and the terminal, and owns the per-run state
// directory. hutch-init (sandbox/pid1) is PID 1 of new user, mount, pid,
// ipc, uts, net (and cgroup) namespaces: it builds the new root, drops
// privileges, starts the command and reaps orphans.
package sandbox
