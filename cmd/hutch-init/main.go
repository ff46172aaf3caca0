// Command hutch-init is PID 1 of every hutch sandbox, and its two
// relatives: hutch-stage2 (the command's own pid namespace, with the fuse
// overlay or services) and hutch-service (a service's PID 1), which init
// starts by re-executing itself through /proc/self/exe.
//
// It is hutch's PID 1 side alone (sandbox/pid1), a binary of its own so
// that none of the CLI's packages start with it: no urfave/cli, TOML,
// registry client or HTTP proxy (TestInitDeps). `make build` embeds it in
// hutch, which runs it from a sealed memfd (internal/initexe); nobody
// runs it by hand. main only dispatches, on argv[0], as cmd/hutch does.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hutch-sandbox/hutch/sandbox/pid1"
)

func main() {
	// Executed from a memfd by its number, the kernel names this process
	// after the number ("5"): ps and top show its argv[0] instead.
	os.WriteFile("/proc/self/comm", []byte(filepath.Base(os.Args[0])), 0)
	switch {
	case pid1.IsInit(os.Args[0]):
		os.Exit(pid1.InitMain())
	case pid1.IsStage2(os.Args[0]):
		os.Exit(pid1.Stage2Main())
	case pid1.IsService(os.Args[0]):
		os.Exit(pid1.ServiceMain())
	}
	fmt.Fprintf(os.Stderr, "hutch-init: this is the sandbox's PID 1, which hutch starts; run hutch instead\n")
	os.Exit(2)
}
