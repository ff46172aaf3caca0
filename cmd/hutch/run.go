package main

import "github.com/urfave/cli/v2"

func runCommand() *cli.Command { return &cli.Command{Name: "run", Usage: "run a command in a sandbox"} }
func shellCommand() *cli.Command {
	return &cli.Command{Name: "shell", Usage: "run an interactive shell in a sandbox"}
}
