// Package seccomp compiles syscall policies to classic BPF and installs
// them, without cgo or libseccomp.
//
// A [Policy] is an ordered list of rules: the first rule whose syscall and
// argument conditions match decides the action, else the default does.
// Every program starts by refusing foreign architectures (ia32 and x32 on
// amd64), whose syscall numbers would otherwise slip past rules written for
// the native table. [Default] is hutch's built-in policy; [ParseOCI] reads
// the seccomp section of an OCI runtime spec or a Docker seccomp profile.
//
// This is a leaf: it knows nothing of sandboxes or profiles.
package seccomp
