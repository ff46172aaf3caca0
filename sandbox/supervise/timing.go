package supervise

import "github.com/hutch-sandbox/hutch/internal/timing"

// MonotonicNow is the clock DebugTiming measures against.
func MonotonicNow() int64 { return timing.Now() }
