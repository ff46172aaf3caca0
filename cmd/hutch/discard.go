package main

import (
	"errors"
	"fmt"

	"github.com/hutch-sandbox/hutch/sandbox/session"
	"github.com/urfave/cli/v2"
)

func discardCommand() *cli.Command {
	return &cli.Command{
		Name: "discard",
		// A session may be called "h" or "help": no help subcommand.
		HideHelpCommand: true,
		Usage:           "throw away a kept session and everything it did not apply",
		UsageText:       "hutch discard NAME...",
		Action: func(c *cli.Context) error {
			if c.Args().Len() == 0 {
				return usagef("discard needs a session NAME (hutch sessions lists them)")
			}
			for _, name := range c.Args().Slice() {
				s, err := openSession(name)
				if errors.Is(err, session.ErrNoSession) {
					// A name that is no session is a mistake in the call.
					return usageErr(err)
				}
				if err != nil {
					return err
				}
				if err := s.Lock(); err != nil {
					return err
				}
				err = s.Discard()
				s.Close()
				if err != nil {
					return fmt.Errorf("discarding session %s: %w", name, err)
				}
				fmt.Fprintf(c.App.ErrWriter, "hutch: discarded session %s\n", name)
			}
			return nil
		},
	}
}
