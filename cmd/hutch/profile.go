package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/profiles"
	"github.com/hutch-sandbox/hutch/sandbox"
)

func profileCommand() *cli.Command {
	return &cli.Command{
		Name:  "profile",
		Usage: "show, check and list profiles",
		Subcommands: []*cli.Command{
			{
				Name:      "show",
				Usage:     "print the effective profile here, and where each value came from",
				UsageText: "hutch profile show [--json] [run flags...]",
				Flags:     append(profileFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
				Action:    profileShow,
			},
			{
				Name:      "check",
				Usage:     "validate hutch.toml files (for pre-commit hooks and CI)",
				UsageText: "hutch profile check [PATH...]",
				Action:    profileCheck,
			},
			{
				Name:      "list",
				Usage:     "list the built-in profiles and yours",
				UsageText: "hutch profile list [--json]",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action:    profileList,
			},
		},
	}
}

func profileShow(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usagef("profile show takes no arguments; to check a file, use hutch profile check PATH")
	}
	p, err := loadProfile(c)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return p.WriteJSON(c.App.Writer)
	}
	return p.WriteTOML(c.App.Writer)
}

// profileCheck validates each file as hutch run would use it: over the
// built-in default and your own configuration, with its directory as the
// project. What a file asks for beyond your configuration is reported,
// not an error: trust is each user's decision.
func profileCheck(c *cli.Context) error {
	paths := c.Args().Slice()
	if len(paths) == 0 {
		found, err := discover()
		if err != nil {
			return err
		}
		paths = []string{found}
	}
	var errs []error
	for _, path := range paths {
		p, err := profiles.Load(profiles.Options{ProjectFile: path})
		if err == nil {
			_, err = p.Spec(sandbox.Spec{})
		}
		var te *profiles.TrustError
		if errors.As(err, &te) {
			err = nil
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		name := displayName(path)
		fmt.Fprintf(c.App.Writer, "%s: ok\n", name)
		if asks := p.Asks(); len(asks) > 0 {
			fmt.Fprintf(c.App.Writer, "%s: asks for more than the built-in default and your configuration allow (%s):\n", name, p.TrustState())
			for _, l := range profiles.FormatAsks(asks) {
				fmt.Fprintf(c.App.Writer, "  %s\n", l)
			}
			if !p.TrustState().OK() {
				fmt.Fprintf(c.App.Writer, "%s: hutch run refuses it until approved: hutch trust %s\n", name, name)
			}
		}
	}
	if len(errs) > 0 {
		return usageErr(errors.Join(errs...))
	}
	return nil
}

func profileList(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usagef("profile list takes no arguments")
	}
	list := profiles.List(profiles.Options{})
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCE\tDESCRIPTION")
	for _, p := range list {
		src := string(p.Kind)
		if p.File != "" {
			src = p.File
		}
		if p.Shadows {
			src += " (shadows the built-in)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, src, p.Description)
	}
	return tw.Flush()
}

// discover finds the project's hutch.toml as hutch run would, for the
// commands that need one.
func discover() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	p, err := profiles.Load(profiles.Options{})
	if err != nil {
		return "", usageErr(err)
	}
	if p.ProjectFile() == "" {
		return "", usageErr(&sandbox.HintError{
			Err: fmt.Errorf("no hutch.toml in %s or its parents (up to your home)", wd),
			Tip: "hutch init writes a starter hutch.toml here; or name the file: PATH",
		})
	}
	return p.ProjectFile(), nil
}

// displayName shows a path relative to the working directory when it is
// beneath it.
func displayName(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		abs = filepath.Join(abs, "hutch.toml")
	}
	if rel, err := filepath.Rel(wd, abs); err == nil && filepath.IsLocal(rel) {
		return rel
	}
	return abs
}
