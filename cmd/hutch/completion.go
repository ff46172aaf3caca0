package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/profiles"
	"github.com/hutch-sandbox/hutch/sandbox/session"
)

// The shell scripts ask hutch itself what may follow (hutch __complete
// WORDS... CURRENT), so that completion knows the same commands, flags,
// profiles, sessions and images as the binary that will run them.
const bashCompletion = `# bash completion for hutch: eval "$(hutch completion bash)"
_hutch() {
	local IFS=$'\n'
	COMPREPLY=($(hutch __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _hutch hutch
`

const zshCompletion = `#compdef hutch
# zsh completion for hutch: hutch completion zsh > "${fpath[1]}/_hutch"
_hutch() {
	local -a words_in candidates
	words_in=("${(@)words[2,CURRENT]}")
	candidates=("${(@f)$(hutch __complete "${words_in[@]}" 2>/dev/null)}")
	if (( ${#candidates} )) && [[ -n ${candidates[1]} ]]; then
		compadd -a candidates
	else
		_files
	fi
}
compdef _hutch hutch
`

const fishCompletion = `# fish completion for hutch: hutch completion fish > ~/.config/fish/completions/hutch.fish
complete -c hutch -f -a '(hutch __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		UsageText: "hutch completion bash|zsh|fish",
		Action: func(c *cli.Context) error {
			scripts := map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}
			if c.Args().Len() != 1 || scripts[c.Args().First()] == "" {
				return usagef("name one shell: hutch completion bash, zsh or fish")
			}
			_, err := io.WriteString(c.App.Writer, scripts[c.Args().First()])
			return err
		},
	}
}

// completeCommand is what the scripts call: the words typed so far, the
// last one being completed (possibly empty). It prints one candidate a
// line and never fails: a shell shows errors as garbage.
func completeCommand() *cli.Command {
	return &cli.Command{
		Name:            "__complete",
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			for _, s := range complete(c.App.Commands, c.Args().Slice()) {
				fmt.Fprintln(c.App.Writer, s)
			}
			return nil
		},
	}
}

// complete returns what may stand for the last of words, after the others.
func complete(top []*cli.Command, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	var cmd *cli.Command
	path := []string{}
	cmds := top
	var prev string
	afterDashes := false
	for _, w := range before {
		if afterDashes {
			continue
		}
		switch {
		case w == "--":
			afterDashes = true
		case strings.HasPrefix(w, "-"):
		default:
			if takesValue(cmd, prev) {
				break
			}
			if sub := findCommand(cmds, w); sub != nil {
				cmd, cmds = sub, sub.Subcommands
				path = append(path, sub.Name)
			}
		}
		prev = w
	}
	if afterDashes {
		return nil // the sandboxed command's own words: files, from the shell
	}
	var out []string
	switch {
	case takesValue(cmd, prev):
		out = flagValues(strings.TrimLeft(prev, "-"))
	case strings.HasPrefix(cur, "-"):
		out = flagNames(cmd)
	case len(cmds) > 0:
		for _, sc := range cmds {
			if !sc.Hidden {
				out = append(out, sc.Name)
			}
		}
	default:
		out = positional(strings.Join(path, " "))
	}
	return withPrefix(out, cur)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue says whether flag word f of cmd is followed by a value.
func takesValue(cmd *cli.Command, f string) bool {
	if cmd == nil || !strings.HasPrefix(f, "-") || strings.Contains(f, "=") {
		return false
	}
	name := strings.TrimLeft(f, "-")
	for _, fl := range cmd.Flags {
		for _, n := range fl.Names() {
			if n == name {
				// hutch's flags are wrapped (flagnames.go): ask the
				// flag, not its type.
				df, ok := fl.(cli.DocGenerationFlag)
				return ok && df.TakesValue()
			}
		}
	}
	return false
}

func flagNames(cmd *cli.Command) []string {
	if cmd == nil {
		return []string{"--help", "--version"}
	}
	var out []string
	for _, fl := range cmd.Flags {
		for _, n := range fl.Names() {
			if len(n) == 1 {
				out = append(out, "-"+n)
			} else {
				out = append(out, "--"+n)
			}
		}
	}
	return out
}

// flagValues knows the values of the flags that name things hutch stores.
func flagValues(flag string) []string {
	switch flag {
	case "profile":
		return profileNames()
	case "keep", "session":
		return sessionNames()
	case "image":
		return imageNames()
	case "network":
		return []string{"none", "proxy", "slirp4netns", "pasta", "host"}
	case "tty":
		return []string{"auto", "always", "never"}
	case "pull":
		return []string{"missing", "always", "never"}
	}
	return nil
}

// positional knows what the arguments of each command name.
func positional(cmd string) []string {
	switch cmd {
	case "diff", "apply", "discard":
		return sessionNames()
	case "image rm", "image inspect", "image remove":
		return imageNames()
	case "completion":
		return []string{"bash", "zsh", "fish"}
	}
	return nil
}

func profileNames() []string {
	var out []string
	for _, p := range profiles.List(profiles.Options{}) {
		out = append(out, p.Name)
	}
	return out
}

func sessionNames() []string {
	list, _ := session.Sessions()
	var out []string
	seen := map[string]bool{} // names are per project: one may be in several
	for _, s := range list {
		if !seen[s.Name] {
			seen[s.Name] = true
			out = append(out, s.Name)
		}
	}
	return out
}

func imageNames() []string {
	st, err := userStore()
	if err != nil {
		return nil
	}
	ims, _ := st.List()
	var out []string
	for _, im := range ims {
		out = append(out, im.Name)
	}
	return out
}

func withPrefix(cands []string, prefix string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range cands {
		if strings.HasPrefix(c, prefix) && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}
