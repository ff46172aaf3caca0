package supervise

import (
	"testing"

	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/wire"
)

// TestFilterBytesRoundTrip: the seccomp program survives its trip to init.
func TestFilterBytesRoundTrip(t *testing.T) {
	// The default filter, as NewPlan leaves seccomp.mode unset.
	prog, err := compileSeccomp(&sandbox.Plan{Args: []string{"true"}})
	if err != nil || len(prog) == 0 {
		t.Fatalf("compile: %v", err)
	}
	got := wire.BytesFilter(wire.FilterBytes(prog))
	if len(got) != len(prog) {
		t.Fatalf("got %d instructions, want %d", len(got), len(prog))
	}
	for i := range prog {
		if got[i] != prog[i] {
			t.Fatalf("instruction %d: got %+v, want %+v", i, got[i], prog[i])
		}
	}
	if wire.BytesFilter([]byte{1, 2, 3}) != nil {
		t.Error("a truncated program was accepted")
	}
}
