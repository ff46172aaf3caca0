package sandbox

import "github.com/hutch-sandbox/hutch/sandbox/model"

// HomeWrites is what the command left in a temporary home (sandbox/model).
type HomeWrites = model.HomeWrites
