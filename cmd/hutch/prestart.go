package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/sandbox/supervise"
)

// prestarted is the hutch-init that hutch run or hutch shell started
// before reading the profiles (supervise.Prestart): its clone, exec and Go
// runtime start overlap with the profiles and the plan. runSpec hands it to
// Launch, which uses it only if it is the process the plan asks for.
var prestarted *supervise.Prestarted

// prestartInit is the Before of hutch run and hutch shell. A dry run starts
// nothing, and a host network needs other namespaces.
func prestartInit(c *cli.Context) error {
	if c.Bool("dry-run") || c.String("network") == "host" {
		return nil
	}
	prestarted = supervise.Prestart(supervise.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, c.Int("preserve-fds"))
	return nil
}

// closePrestarted is their After: an init Launch did not take is killed.
func closePrestarted(*cli.Context) error {
	prestarted.Close()
	prestarted = nil
	return nil
}
