// Package mutate switches hutch's defences off one at a time, to prove that
// the tests notice (scripts/mutate.sh, "make mutate").
//
// Each defence asks Off with its name before it acts:
//
//	if !mutate.Off("nnp") { ... set no_new_privs ... }
//
// In a normal build Off is a constant false, which the compiler removes
// with the branch around it: release binaries carry no switch. Built with
// -tags hutch_mutate, Off reports whether HUTCH_MUTATE names the defence.
// hutch-init and hutch-stage2 start with a cleared environment; the
// supervisor passes the variable on to them through Env.
package mutate

// Var is the environment variable that names the defence to switch off.
const Var = "HUTCH_MUTATE"
