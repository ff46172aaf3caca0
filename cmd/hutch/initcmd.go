package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/profiles"
	"github.com/hutch-sandbox/hutch/sandbox"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "write a commented starter hutch.toml for this project",
		UsageText: "hutch init [--from NAME] [--force]",
		Description: "Without --from, the profile is chosen from the files present: package.json\n" +
			"(npm), go.mod (go), pyproject.toml or requirements.txt (pip), Cargo.toml\n" +
			"(cargo). The file is trusted for you, since you wrote it.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "from", Usage: "extend profile `NAME` (built-in or yours; repeatable)"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing hutch.toml"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("init takes no arguments; it writes hutch.toml in the working directory")
			}
			wd, err := os.Getwd()
			if err != nil {
				return err
			}
			// hutch.toml is looked for below your home, never in it or in /.
			home, _ := os.UserHomeDir()
			if r, err := filepath.EvalSymlinks(home); err == nil {
				home = r
			}
			if r, err := filepath.EvalSymlinks(wd); err == nil {
				wd = r
			}
			if wd == home || wd == "/" {
				return usageErr(&sandbox.HintError{Err: fmt.Errorf("%s is not a project directory: hutch never looks for hutch.toml there", wd),
					Tip: "cd into a project; settings for every sandbox go in " + filepath.Join(profiles.DefaultConfigDir(nil, home), "config.toml")})
			}
			dst := filepath.Join(wd, "hutch.toml")
			for _, n := range []string{"hutch.toml", ".hutch.toml"} {
				if _, err := os.Stat(filepath.Join(wd, n)); err == nil && !c.Bool("force") {
					return usageErr(&sandbox.HintError{Err: fmt.Errorf("%s already exists", n),
						Tip: "hutch profile show prints what it does; --force overwrites it"})
				}
			}
			from := c.StringSlice("from")
			var detected []profiles.Detection
			if len(from) == 0 {
				detected = profiles.Detect(wd)
				for _, d := range detected {
					from = append(from, d.Profile)
				}
			}
			known := map[string]bool{}
			var names []string
			for _, p := range profiles.List(profiles.Options{}) {
				known[p.Name] = true
				names = append(names, p.Name)
			}
			for _, f := range from {
				if !known[f] {
					return usageErr(&sandbox.HintError{Err: fmt.Errorf("--from %s: no profile named %q", f, f),
						Tip: "profiles: " + strings.Join(names, ", ") + " (hutch profile list)"})
				}
			}
			flag := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if c.Bool("force") {
				flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			f, err := os.OpenFile(dst, flag, 0o644)
			if errors.Is(err, fs.ErrExist) {
				return usagef("hutch.toml already exists")
			}
			if err != nil {
				return err
			}
			if _, err := f.WriteString(profiles.Starter(from, detected)); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			w := c.App.Writer
			switch {
			case len(detected) > 0:
				var ds []string
				for _, d := range detected {
					ds = append(ds, fmt.Sprintf("%s (found %s)", d.Profile, d.File))
				}
				fmt.Fprintf(w, "wrote hutch.toml, extending %s\n", strings.Join(ds, ", "))
			case len(from) > 0:
				fmt.Fprintf(w, "wrote hutch.toml, extending %s\n", strings.Join(from, ", "))
			default:
				fmt.Fprintf(w, "wrote hutch.toml, with the built-in defaults\n")
			}
			// You wrote it, from profiles you chose: trust it.
			p, err := profiles.Load(profiles.Options{ProjectFile: dst})
			if err != nil {
				return usageErr(err)
			}
			if len(p.Asks()) > 0 {
				if err := p.Trust(); err != nil {
					return err
				}
				fmt.Fprintf(w, "trusted it: beyond your configuration, it asks for\n")
				for _, l := range profiles.FormatAsks(p.Asks()) {
					fmt.Fprintf(w, "  %s\n", l)
				}
				fmt.Fprintf(w, "after editing it, approve it again with: hutch trust\n")
			}
			fmt.Fprintf(w, "see what is in effect with: hutch profile show\n")
			return nil
		},
	}
}
