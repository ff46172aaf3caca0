// Package userns computes user-namespace id maps and writes them.
//
// A sandbox either maps one id (the caller's own uid and gid, which any
// unprivileged process may write into a child's uid_map) or the caller's
// whole subordinate range from /etc/subuid and /etc/subgid, which only the
// setuid helpers newuidmap and newgidmap may write. This package knows nothing
// of profiles or the CLI: it parses the subordinate-id files, lays out maps,
// and runs the helpers.
package userns
