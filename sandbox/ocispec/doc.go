// Package ocispec reads an OCI bundle's config.json (the runtime spec's
// config.md and config-linux.md) as a sandbox.Spec: the request a bundle
// makes, before hutch oci lays a profile's policy over it. It is pure:
// Parse reads nothing but its arguments (Read only reads the file, at
// most MaxConfig bytes).
//
// What it maps, what it refuses (an *Error naming the field) and what it
// only warns about is listed in docs/oci.md. A field it does not read is
// named in a warning, never dropped without a word.
package ocispec
