// Package oci is hutch oci: the part of runc's command line that engines
// (Slurm's oci.conf, containerd, podman) call, on hutch's sandbox.
//
// # Lifecycle
//
// create plans the bundle (sandbox/ocispec reads config.json, the site
// profile's policy is laid over it, sandbox.Prepare plans it) and starts
// a supervisor of its own, detached (argv[0] "hutch-oci-shim"), which
// launches the sandbox held: hutch-init builds the root and waits. create
// returns once the sandbox is held (state "created"); start asks the
// supervisor, over a unix socket in the container's state directory, to
// release the command ("running"); when it ends the supervisor records
// "stopped" and its exit status, and exits. run does the same in the
// foreground, with no hold, and removes the container when it ends.
//
// # State
//
// Each container has a directory, $XDG_RUNTIME_DIR/hutch/oci/ID (or under
// --root), 0700, holding state.json and the supervisor's socket. delete
// may be run by root for a container a user created (Slurm does): so
// every read of a state directory goes through handles opened without
// following any symlink, every file is checked for its type and owner,
// a recorded pid is signalled only through a pidfd whose process has the
// recorded start time and the directory owner's uid (proc.go), and only
// the names hutch makes are removed. No path written in a state file is
// ever used.
package oci
