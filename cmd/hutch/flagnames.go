package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// The flags of hutch's commands answer Names() from a list made once.
// urfave/cli v2 (v2.27.7 is its last release) derives a flag's names with a
// regexp on every Names() call, and before each action it asks
// Context.IsSet for every name of every flag, whose lookup of an unset flag
// calls Names() on each flag of the command in turn: for hutch run's ~75
// flags that was some 3000 regexp runs, 8% of the CLI's CPU per start
// (issue 20). Each wrapper embeds the library's flag, so parsing, help text,
// categories and actions stay the library's own; only Names is answered
// from the list. String (the help line, which App.Setup makes for every
// flag of every command, as the key of its help categories) is the
// library's FlagStringer on the wrapper, so that it reads the list too.

type stringFlag struct {
	*cli.StringFlag
	names []string
}

func (f *stringFlag) Names() []string { return f.names }
func (f *stringFlag) String() string  { return cli.FlagStringer(f) }

type stringSliceFlag struct {
	*cli.StringSliceFlag
	names []string
}

func (f *stringSliceFlag) Names() []string { return f.names }
func (f *stringSliceFlag) String() string  { return cli.FlagStringer(f) }

type boolFlag struct {
	*cli.BoolFlag
	names []string
}

func (f *boolFlag) Names() []string { return f.names }

// String: FlagStringer treats a *cli.BoolFlag's DisableDefaultText itself,
// which it cannot see through the wrapper.
func (f *boolFlag) String() string {
	if f.DisableDefaultText {
		return f.BoolFlag.String()
	}
	return cli.FlagStringer(f)
}

type intFlag struct {
	*cli.IntFlag
	names []string
}

func (f *intFlag) Names() []string { return f.names }
func (f *intFlag) String() string  { return cli.FlagStringer(f) }

// namesOf is cli.FlagNames without the regexp where it would change
// nothing: the library cuts each name at its first comma or space (a v1
// habit), and only a name holding one goes through it.
func namesOf(name string, aliases []string) []string {
	if strings.ContainsAny(name, ", ") {
		return cli.FlagNames(name, aliases)
	}
	for _, a := range aliases {
		if strings.ContainsAny(a, ", ") {
			return cli.FlagNames(name, aliases)
		}
	}
	return append([]string{name}, aliases...)
}

// withNames wraps f so that its Names come from a list made now; a flag
// of another type is returned as it is.
func withNames(f cli.Flag) cli.Flag {
	switch x := f.(type) {
	case *cli.StringFlag:
		return &stringFlag{x, namesOf(x.Name, x.Aliases)}
	case *cli.StringSliceFlag:
		return &stringSliceFlag{x, namesOf(x.Name, x.Aliases)}
	case *cli.BoolFlag:
		return &boolFlag{x, namesOf(x.Name, x.Aliases)}
	case *cli.IntFlag:
		return &intFlag{x, namesOf(x.Name, x.Aliases)}
	}
	return f
}

// namesOnce wraps the flags of cmds and of their subcommands.
func namesOnce(cmds []*cli.Command) {
	for _, cmd := range cmds {
		for i, f := range cmd.Flags {
			cmd.Flags[i] = withNames(f)
		}
		namesOnce(cmd.Subcommands)
	}
}
