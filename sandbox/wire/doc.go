// Package wire is what the two sides of a run share besides the model: the
// hidden entries' fixed argv[0] names, and the messages between the
// supervisor (sandbox/supervise) and PID 1 (sandbox/pid1): the
// length-prefixed Config frame on fd 3, NetFrame after it, and the
// SOCK_SEQPACKET messages on fd 4 (Request from the supervisor, Status
// from init). docs/internals.md draws the handshake.
//
// Both sides import it; it runs on either side of the boundary and does
// nothing by itself: it never starts a process, mounts, or reads the
// host. It imports only the model and leaves.
package wire
