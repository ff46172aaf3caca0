// Command hutch wraps a developer command in a rootless sandbox.
//
// main only dispatches: the hidden sandbox entry (argv[0] "hutch-init") and
// hutch doctor's probe (argv[0] "hutch-probe", internal/nsprobe) run inside new namespaces and
// must never see the CLI; everything else is the CLI in app.go.
package main

import (
	"context"
	"os"

	"github.com/hutch-sandbox/hutch/image"
	"github.com/hutch-sandbox/hutch/internal/nsprobe"
	"github.com/hutch-sandbox/hutch/oci"
	"github.com/hutch-sandbox/hutch/sandbox/pid1"
	"github.com/hutch-sandbox/hutch/sandbox/session"
)

func main() {
	if pid1.IsInit(os.Args[0]) {
		os.Exit(pid1.InitMain())
	}
	if nsprobe.Is(os.Args[0]) {
		os.Exit(nsprobe.Main())
	}
	if pid1.IsExecStage(os.Args) {
		os.Exit(pid1.ExecStageMain())
	}
	if pid1.IsStage2(os.Args[0]) {
		os.Exit(pid1.Stage2Main())
	}
	if pid1.IsService(os.Args[0]) {
		os.Exit(pid1.ServiceMain())
	}
	if session.IsLayersHelper(os.Args[0]) {
		os.Exit(session.LayersHelperMain())
	}
	if image.IsHelper(os.Args[0]) {
		os.Exit(image.HelperMain())
	}
	if oci.IsShim(os.Args[0]) {
		os.Exit(oci.ShimMain())
	}
	os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr))
}
