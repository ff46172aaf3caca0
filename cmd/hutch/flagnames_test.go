package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// unwrapped is the library's flag inside one of flagnames.go's wrappers.
func unwrapped(f cli.Flag) cli.Flag {
	switch x := f.(type) {
	case *stringFlag:
		return x.StringFlag
	case *stringSliceFlag:
		return x.StringSliceFlag
	case *boolFlag:
		return x.BoolFlag
	case *intFlag:
		return x.IntFlag
	}
	return nil
}

func walkCommands(cmds []*cli.Command, fn func(path string, cmd *cli.Command)) {
	var walk func(parent string, cmds []*cli.Command)
	walk = func(parent string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			fn(parent+" "+cmd.Name, cmd)
			walk(parent+" "+cmd.Name, cmd.Subcommands)
		}
	}
	walk("hutch", cmds)
}

// TestFlagNamesOnce: every flag of every command is wrapped (a flag type
// without a wrapper would bring back the regexp per lookup), and each
// wrapper names exactly what the library's flag names.
func TestFlagNamesOnce(t *testing.T) {
	app := newApp(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	n := 0
	walkCommands(app.Commands, func(path string, cmd *cli.Command) {
		for _, f := range cmd.Flags {
			inner := unwrapped(f)
			if inner == nil {
				t.Errorf("%s: flag %v (%T) has no wrapper in flagnames.go", path, f.Names(), f)
				continue
			}
			n++
			if got, want := f.Names(), inner.Names(); !slices.Equal(got, want) {
				t.Errorf("%s: wrapped flag names %q, the library's %q", path, got, want)
			}
		}
	})
	if n < 70 {
		t.Errorf("only %d flags seen: is hutch run's list still walked?", n)
	}
	// Help lines read the same through a wrapper, for what hutch's flags
	// use now and what the library treats specially.
	for _, f := range []cli.Flag{
		&cli.BoolFlag{Name: "q", Value: true, DisableDefaultText: true, Usage: "quiet"},
		&cli.BoolFlag{Name: "b", Value: true, EnvVars: []string{"B"}, Usage: "be"},
		&cli.StringFlag{Name: "s", Aliases: []string{"str"}, Value: "v", Usage: "a `NAME`", EnvVars: []string{"S"}},
		&cli.StringSliceFlag{Name: "l", Value: cli.NewStringSlice("a", "b"), Usage: "list"},
		&cli.IntFlag{Name: "n", Value: 3, DefaultText: "three"},
	} {
		if got, want := withNames(f).String(), f.String(); got != want {
			t.Errorf("wrapped %T reads %q, the library's %q", f, got, want)
		}
	}
	// A name the library would cut at a comma or space goes through it.
	for _, tc := range []struct {
		name    string
		aliases []string
	}{{"env", []string{"e"}}, {"a, b", nil}, {"x", []string{"y z"}}, {"tty", nil}} {
		if got, want := namesOf(tc.name, tc.aliases), cli.FlagNames(tc.name, tc.aliases); !slices.Equal(got, want) {
			t.Errorf("namesOf(%q, %q) = %q, cli.FlagNames says %q", tc.name, tc.aliases, got, want)
		}
	}
}

// TestFlagNamesHelp: the wrappers change no help text: every command's
// --help reads the same with the library's own flags.
func TestFlagNamesHelp(t *testing.T) {
	var paths [][]string
	walkCommands(newApp(nil, nil, nil).Commands, func(path string, cmd *cli.Command) {
		if !cmd.Hidden && !cmd.SkipFlagParsing {
			paths = append(paths, strings.Fields(path))
		}
	})
	help := func(args []string, unwrap bool) string {
		var out bytes.Buffer
		app := newApp(strings.NewReader(""), &out, &out)
		if unwrap {
			walkCommands(app.Commands, func(_ string, cmd *cli.Command) {
				for i, f := range cmd.Flags {
					cmd.Flags[i] = unwrapped(f)
				}
			})
		}
		if err := app.RunContext(context.Background(), append(args, "--help")); err != nil {
			t.Fatalf("%v --help: %v", args, err)
		}
		return out.String()
	}
	for _, args := range paths {
		got, want := help(args, false), help(args, true)
		if got != want {
			t.Errorf("%s --help differs with wrapped flags:\n%s\nwant:\n%s", strings.Join(args, " "), got, want)
		}
		if len(want) < 50 {
			t.Errorf("%s --help printed only %q", strings.Join(args, " "), want)
		}
	}
	if len(paths) < 15 {
		t.Errorf("only %d commands walked", len(paths))
	}
}
