package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
)

// reportDenials tells the user what the network proxy refused, so they
// learn which line to add to network.allow, and writes --report FILE.
func reportDenials(c *cli.Context, ds []proxy.Denial) error {
	if file := c.String("report"); file != "" {
		data, err := json.MarshalIndent(struct {
			Blocked []proxy.Denial `json:"blocked"`
		}{Blocked: append([]proxy.Denial{}, ds...)}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(file, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
	}
	if len(ds) == 0 {
		return nil
	}
	w := c.App.ErrWriter
	fmt.Fprintf(w, "hutch: the network proxy blocked %d destination(s):\n", len(ds))
	for _, d := range ds {
		// Hostnames and methods are what the sandbox asked for.
		fmt.Fprintf(w, "hutch:   %s:%d  (%d× %s) %s\n", esc.Text(d.Host), d.Port, d.Count, esc.Text(d.Method), esc.Lines(d.Reason))
	}
	fmt.Fprintf(w, "hutch: hint: to allow them, add to hutch.toml:\n")
	fmt.Fprintf(w, "hutch: hint:   [network]\nhutch: hint:   allow = [")
	for i, d := range ds {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		name := d.Host
		if d.Port != 80 && d.Port != 443 {
			name += ":" + strconv.Itoa(d.Port)
		}
		fmt.Fprint(w, esc.Quote(name))
	}
	fmt.Fprintln(w, "]")
	return nil
}
