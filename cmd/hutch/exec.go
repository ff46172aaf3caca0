package main

import (
	"errors"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
)

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command in a running sandbox (hutch ps lists them)",
		UsageText: "hutch exec [options] ID -- CMD [ARGS...]",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set `KEY=VALUE` for this command; KEY alone passes your value (repeatable)"},
			&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "start in `DIR`, inside (default: where the run's command started)"},
			&cli.StringFlag{Name: "tty", Value: "auto", Usage: "`auto` (a pty when stdin is a terminal), always or never"},
		},
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) < 2 {
				return usagef("give the sandbox's id and a command, as in: hutch exec ID -- sh")
			}
			id, cmd := args[0], args[1:]
			if cmd[0] == "--" {
				cmd = cmd[1:]
			}
			if len(cmd) == 0 {
				return usagef("no command given after the sandbox's id")
			}
			switch c.String("tty") {
			case "auto", "always", "never":
			default:
				return usagef("--tty %q: give auto, always or never", c.String("tty"))
			}
			var env []string
			for _, kv := range c.StringSlice("env") {
				if !strings.Contains(kv, "=") {
					v, ok := os.LookupEnv(kv)
					if !ok {
						return usagef("--env %s: not set in your environment; use --env %s=VALUE", kv, kv)
					}
					kv += "=" + v
				}
				env = append(env, kv)
			}
			host, err := sandbox.ProbeHost()
			if err != nil {
				return err
			}
			code, err := supervise.Exec(c.Context, host.RuntimeDir, supervise.ExecOptions{
				ID: id, Args: cmd, Env: env, Workdir: c.String("workdir"), TTY: c.String("tty"),
			}, supervise.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
			if errors.Is(err, supervise.ErrNoSandbox) {
				return usageErr(err)
			}
			if err != nil {
				return err
			}
			if code != 0 {
				return &exitStatus{code: code}
			}
			return nil
		},
	}
}
