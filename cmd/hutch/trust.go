package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/profiles"
)

func trustCommand() *cli.Command {
	return &cli.Command{
		Name:  "trust",
		Usage: "approve a project's hutch.toml, as it is now",
		Description: "A hutch.toml may narrow anything, but what it asks for beyond your own\n" +
			"configuration (writable paths outside the project, secrets, the network, ...)\n" +
			"needs your approval. hutch trust records the sha256 of the file, and of the\n" +
			"files it extends by path, under your config directory; a changed file needs\n" +
			"approval again. PATH defaults to the project's hutch.toml.",
		UsageText: "hutch trust [--revoke] [PATH]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "revoke", Usage: "forget the approval"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 1 {
				return usagef("trust takes one PATH")
			}
			path := c.Args().First()
			if path == "" && c.Bool("revoke") {
				// Found without parsing it: a file that no longer parses
				// can still lose its approval.
				wd, err := os.Getwd()
				if err != nil {
					return err
				}
				home, _ := os.UserHomeDir()
				if path, err = profiles.Discover(wd, home); err != nil {
					return usageErr(err)
				}
				if path == "" {
					return usagef("no hutch.toml in %s or its parents (up to your home); name the file: hutch trust --revoke PATH", wd)
				}
			}
			if path == "" {
				found, err := discover()
				if err != nil {
					return err
				}
				path = found
			}
			name := displayName(path)
			if c.Bool("revoke") {
				home, _ := os.UserHomeDir()
				had, err := profiles.Revoke(profiles.DefaultConfigDir(nil, home), path)
				if err != nil {
					return err
				}
				if had {
					fmt.Fprintf(c.App.Writer, "%s is no longer trusted\n", name)
				} else {
					fmt.Fprintf(c.App.Writer, "%s was not trusted\n", name)
				}
				return nil
			}
			p, err := profiles.Load(profiles.Options{ProjectFile: path})
			if err != nil {
				return usageErr(err)
			}
			if err := p.Trust(); err != nil {
				return err
			}
			w := c.App.Writer
			fmt.Fprintf(w, "trusted %s (sha256 %s)\n", name, p.Digest())
			if files := p.TrustFiles(); len(files) > 1 {
				fmt.Fprintf(w, "and the files it extends:\n")
				for _, f := range files[1:] {
					fmt.Fprintf(w, "  %s\n", displayName(f))
				}
			}
			if asks := p.Asks(); len(asks) > 0 {
				fmt.Fprintf(w, "it may now, beyond your configuration:\n")
				for _, l := range profiles.FormatAsks(asks) {
					fmt.Fprintf(w, "  %s\n", l)
				}
			} else {
				fmt.Fprintf(w, "it asks for nothing beyond your configuration\n")
			}
			return nil
		},
	}
}
