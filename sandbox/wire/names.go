package wire

// InitName is the fixed argv[0] of the hidden child entry. A fixed name
// (not /proc/self/exe) lets main and test binaries dispatch on it.
const InitName = "hutch-init"

// Stage2Name is the fixed argv[0] of the second hidden entry: the
// command's own PID 1, one pid namespace below hutch-init, used with the
// fuse driver (docs/internals.md):
//
//	hutch-init      PID 1 of the outer pid ns; runs the FUSE daemons, builds the root
//	├─ fuse-overlayfs
//	└─ hutch-stage2 clone(NEWPID|NEWNS): mounts /proc of its own pid ns, pivots,
//	   └─ command   starts the command as init would, reaps
//
// A FUSE daemon in the command's pid namespace would be an escape: through
// /proc/<daemon>/fd the command could reach the host's files.
const Stage2Name = "hutch-stage2"

// ExecStageName is argv[1] of the process hutch exec starts inside a
// running sandbox: nsenter has joined the sandbox's namespaces and root,
// and executed hutch through /proc/self/fd (the sandbox's own files never
// run here). It starts the command exactly as hutch-init starts a run's
// (startCommand: the plan's ids, capabilities, rlimits, no_new_privs,
// seccomp filter, a new session or a pty of the sandbox's own devpts),
// waits for it and exits with its status.
const ExecStageName = "hutch-exec"

// ServiceName is the fixed argv[0] of a service's own PID 1: hutch-init
// clones it into new mount, pid and ipc namespaces (the pod's user and
// network namespaces stay shared), and it builds the service's root,
// starts the service as init starts the command, checks that it is
// ready, and forwards signals to it (docs/services.md):
//
//	hutch-init        user, net, uts, ... namespaces: the pod
//	├─ hutch-service  clone(NEWNS|NEWPID|NEWIPC), one per service
//	│  └─ service
//	└─ hutch-stage2   clone(NEWNS|NEWPID|NEWIPC)
//	   └─ command
const ServiceName = "hutch-service"
