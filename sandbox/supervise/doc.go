// Package supervise is everything that runs in the caller's namespaces
// during a run: Launch starts hutch-init (sandbox/pid1) in new namespaces,
// writes its id maps, sends it the plan (wire.Config), then relays signals
// and the terminal, runs the user-mode network helper and published
// ports, owns the run's state directory and cgroup, opens and records the
// run's session (through sandbox/session), and reports how the command
// ended. hutch exec's host side and hutch ps (Running) are here too.
//
// It must never import the PID 1 side: the two meet only through the
// model and the wire package. It never builds the sandbox's root or runs
// the user's command itself.
package supervise
