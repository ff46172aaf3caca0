// Package model holds the plan's types: what the supervisor tells
// hutch-init (Plan, Mount, ServicePlan and their constants), and what
// hutch-init can answer when the command does not start (CommandError).
//
// Package sandbox builds plans (NewPlan) and names these types under its
// own names (type aliases); this package only declares them. It is a leaf
// apart from sandbox so that hutch-init, a binary of its own (cmd/hutch-init),
// links none of sandbox's dependencies: no image registry client, no HTTP
// proxy, no session store. TestInitDeps (cmd/hutch-init) keeps it so.
package model
