// Package slirp gives a sandbox's network namespace a way out without
// privileges: user-mode NAT through slirp4netns or pasta.
//
// It is a leaf: it starts and stops the helper programs for a process's
// network namespace and knows nothing of profiles or sandboxes. Features
// are detected from each helper's --help, once, before anything forks, as
// rootlesskit does; versions are never compared.
//
// Both helpers are tied to their caller's life: a readiness pipe says when
// the namespace is configured (no sleeps), PDEATHSIG from a locked thread
// and, for slirp4netns, an exit fd end them when the caller dies, even by
// SIGKILL. Their teardown takes tens of milliseconds, so Close never waits
// for it.
package slirp
