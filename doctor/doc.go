// Package doctor is hutch doctor: it checks whether this machine can run a
// sandbox, and with which features, and words a fix for each problem
// (docs/doctor.md explains every check).
//
// Every check first gathers facts (gatherFacts touches the machine and,
// where that is cheap, tries the real thing through the hidden hutch-probe
// entry of internal/nsprobe), then judges them (diagnose, pure, so verdicts
// and fixes are table-tested).
//
// It runs in the caller's namespaces, beside the CLI, never during a run:
// it must never start a sandbox's PID 1 or a user's command, and nothing
// in sandbox/ imports it. It reads the model's conventions (sandbox.DataDir,
// sandbox.RuntimeDir, the cgroup lookups) and the leaves.
package doctor
