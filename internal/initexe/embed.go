//go:build hutch_embed_init

package initexe

import _ "embed"

// embedded is cmd/hutch-init as `make build` built it just before hutch:
// bin/hutch-init, which the build's -overlay shows here (no such file is
// in the tree).
//
//go:embed hutch-init
var embedded []byte

func init() { Bytes = embedded }
