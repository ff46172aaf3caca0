package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/profiles"
)

// overlayFlags are run's and shell's flags for layered filesystems that
// are not profile keys of their own.
func overlayFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "keep", Usage: "overlay the project and keep its changes in session `NAME` (--session NAME --project-mode overlay)"},
		&cli.BoolFlag{Name: "verbose", Usage: "say how the sandbox is built (the overlay driver picked)"},
	}
}

// applyOverlayFlags lays --keep over the profile: the session, and an
// overlaid project unless --project-mode says otherwise.
func applyOverlayFlags(c *cli.Context, p *profiles.Profile) error {
	if c.IsSet("image") {
		if c.IsSet("root") {
			return usagef("--image %s and --root %s: give one of them", c.String("image"), c.String("root"))
		}
		if v := c.String("image"); v == "" || strings.HasPrefix(v, "-") {
			return usagef("--image: give an image, as in --image docker.io/library/alpine:3.20")
		}
		if err := p.SetFlag("--image", "filesystem.root", "image:"+c.String("image")); err != nil {
			return usageErr(err)
		}
	}
	if !c.IsSet("keep") {
		return nil
	}
	if c.IsSet("session") {
		return usagef("--keep %s and --session %s: give one of them", c.String("keep"), c.String("session"))
	}
	if err := p.SetFlag("--keep", "filesystem.session", c.String("keep")); err != nil {
		return usageErr(err)
	}
	if !c.IsSet("project-mode") {
		if err := p.SetFlag("--keep", "filesystem.project", "overlay"); err != nil {
			return usageErr(err)
		}
	}
	return nil
}

// verboseFunc prints what --verbose shows, or is nil without it.
func verboseFunc(c *cli.Context) func(string) {
	if !c.Bool("verbose") {
		return nil
	}
	return func(msg string) { fmt.Fprintf(c.App.ErrWriter, "hutch: %s\n", msg) }
}
