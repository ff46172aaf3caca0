package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/sandbox/layers"
)

// Colour and a pager, as git does: on a terminal only, never when the
// output is piped or redirected. --color=always forces colour (for a pager
// of one's own), NO_COLOR turns it off; --no-pager, or PAGER=cat, prints
// straight out. The pager is $HUTCH_PAGER, else $PAGER, else less, run
// with LESS=FRX when LESS is unset: it quits at once when the text fits,
// and shows the colours (-R).

func colorFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "color", Value: "auto", Usage: "colour the output: `WHEN` is auto (on a terminal), always, or never"},
		&cli.BoolFlag{Name: "no-pager", Usage: "do not page the output on a terminal"},
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// colors colours lines of diff output; off, it changes nothing.
type colors struct{ on bool }

const (
	cReset = "\x1b[m"
	cBold  = "\x1b[1m"
	cRed   = "\x1b[31m"
	cGreen = "\x1b[32m"
	cYel   = "\x1b[33m"
	cCyan  = "\x1b[36m"
)

func colorsFor(c *cli.Context) (colors, error) {
	switch c.String("color") {
	case "always":
		return colors{true}, nil
	case "never":
		return colors{}, nil
	case "auto":
		return colors{os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb" && isTerminal(c.App.Writer)}, nil
	}
	return colors{}, usagef("--color=%s: give auto, always or never", c.String("color"))
}

func (col colors) paint(code, line string) string {
	body := strings.TrimSuffix(line, "\n")
	if !col.on || body == "" {
		return line
	}
	return code + body + cReset + line[len(body):]
}

// unified colours a unified diff as git does.
func (col colors) unified(text string) string {
	if !col.on {
		return text
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(text, "\n") {
		switch {
		case strings.HasPrefix(l, "! "):
			l = col.paint(cBold+cRed, l)
		case strings.HasPrefix(l, "diff --git "), strings.HasPrefix(l, "index "), strings.HasPrefix(l, "--- "),
			strings.HasPrefix(l, "+++ "), strings.HasPrefix(l, "new file"), strings.HasPrefix(l, "deleted file"),
			strings.HasPrefix(l, "old mode"), strings.HasPrefix(l, "new mode"):
			l = col.paint(cBold, l)
		case strings.HasPrefix(l, "@@"):
			l = col.paint(cCyan, l)
		case strings.HasPrefix(l, "+"):
			l = col.paint(cGreen, l)
		case strings.HasPrefix(l, "-"):
			l = col.paint(cRed, l)
		}
		b.WriteString(l)
	}
	return b.String()
}

// stat colours --stat lines by their kind.
func (col colors) stat(text string) string {
	if !col.on {
		return text
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(text, "\n") {
		kind := strings.TrimLeft(l, " !")
		switch {
		case strings.HasPrefix(l, "!"):
			l = col.paint(cBold+cRed, l)
		case strings.HasPrefix(kind, "added"):
			l = col.paint(cGreen, l)
		case strings.HasPrefix(kind, "deleted"):
			l = col.paint(cRed, l)
		case strings.HasPrefix(kind, "modified"), strings.HasPrefix(kind, "type-changed"), strings.HasPrefix(kind, "mode-changed"), strings.HasPrefix(kind, "changed"):
			l = col.paint(cYel, l)
		}
		b.WriteString(l)
	}
	return b.String()
}

// pager starts the pager when the output is a terminal and returns the
// writer to print to and a function that waits for it. Without one, it
// returns the output itself.
func pager(c *cli.Context) (io.Writer, func() error) {
	w := c.App.Writer
	none := func() error { return nil }
	if c.Bool("no-pager") || !isTerminal(w) {
		return w, none
	}
	cmd := os.Getenv("HUTCH_PAGER")
	if cmd == "" {
		cmd = os.Getenv("PAGER")
	}
	if cmd == "" {
		cmd = "less"
	}
	if cmd == "cat" {
		return w, none
	}
	p := exec.Command("/bin/sh", "-c", cmd)
	p.Stdout, p.Stderr = w, c.App.ErrWriter
	p.Env = os.Environ()
	if os.Getenv("LESS") == "" {
		p.Env = append(p.Env, "LESS=FRX")
	}
	if os.Getenv("LV") == "" {
		p.Env = append(p.Env, "LV=-c")
	}
	in, err := p.StdinPipe()
	if err != nil {
		return w, none
	}
	if err := p.Start(); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "hutch: warning: starting the pager %q: %v\n", cmd, err)
		return w, none
	}
	return in, func() error {
		in.Close()
		p.Wait() // quitting the pager early is no error of ours
		return nil
	}
}

// paged runs print with the output paged on a terminal. A pager quit
// before the end is no error.
func paged(c *cli.Context, print func(io.Writer) error) error {
	w, wait := pager(c)
	err := print(w)
	werr := wait()
	if w != c.App.Writer && errors.Is(err, unix.EPIPE) {
		err = nil
	}
	if err == nil {
		err = werr
	}
	return err
}

func excludeFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "exclude", Usage: "leave out the paths matching `GLOB` and everything beneath them (node_modules, '*.log', build/*.o); repeatable"}
}

// excludeGlobs reads and checks --exclude.
func excludeGlobs(c *cli.Context) ([]string, error) {
	gs := c.StringSlice("exclude")
	for _, g := range gs {
		if err := layers.CheckGlob(g); err != nil {
			return nil, usageErr(err)
		}
	}
	return gs, nil
}
