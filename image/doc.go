// Package image stores OCI images for hutch: it pulls them from registries
// (with the auth of ~/.docker/config.json and credential helpers, as
// go-containerregistry does it), imports them from OCI layouts, OCI
// archives and `docker save` archives, and unpacks each layer once into a
// directory of its own that sandboxes stack as overlay lower directories.
//
// It is a top-level package because images are a concern of their own: a
// registry protocol, a content-addressed store with its own locking and
// garbage collection, and a rootless unpacker, none of which the sandbox
// needs to know to run on a root it is handed. Like userns and slirp it is
// a leaf: it knows nothing of profiles, plans or the CLI. sandbox turns a
// stored image (a Root) into mounts; cmd/hutch wires the commands.
//
// # The store
//
// Under $XDG_DATA_HOME/hutch/images (mode 0700, so that no other user can
// reach a setuid file it holds):
//
//	index.json                  the named images (written under lock)
//	blobs/sha256/HEX            manifests and configs, digest-verified
//	blobs/sha256/HEX.partial    a layer download in progress (resumed with Range)
//	layers/MAPKEY/HEX/fs        a layer, unpacked (HEX is its diff ID)
//	layers/MAPKEY/HEX/layer.json what it held
//
// MAPKEY names the id mapping the layer was unpacked with: with a
// subordinate id range the image's uid N is owned on the host by the id
// the sandbox's map gives N ("map-…"); without one, everything is owned by
// the user ("squash"). A layer is unpacked into a temporary directory and
// renamed into place only when complete and verified, so nothing half
// stored is ever used; an image is listed in index.json only once all its
// layers are in place.
//
// # Unpacking
//
// With a mapped range, layers are unpacked by a hidden helper (argv[0]
// "hutch-unpack") running as root of a user namespace with the sandbox's
// maps, so that it can give files their owners. Whiteouts become the
// overlay's (character devices 0/0, opaque xattrs); device nodes are
// skipped and counted; hardlinks, symlinks, xattrs and setuid bits are kept
// inside the store, which only the user can enter, and inside a sandbox
// no_new_privs means setuid is never honoured.
package image
