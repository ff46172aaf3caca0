package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/internal/esc"
	"github.com/hutch-sandbox/hutch/profiles"
	"github.com/hutch-sandbox/hutch/result"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/slirp/proxy"
)

// openReport opens --report FILE's directory before the run, as
// --result's: the command may write where the report goes, and must not
// be able to point hutch's write elsewhere (result.Writer). Nil without
// --report.
func openReport(c *cli.Context) (*result.Writer, error) {
	file := c.String("report")
	if file == "" {
		return nil, nil
	}
	w, err := result.Open("--report", file, preservedFDs(c))
	if err != nil {
		return nil, usageErr(err)
	}
	return w, nil
}

// reportDenials tells the user what the network refused (the proxy, and
// in mode proxy the sandbox's DNS), each with its protocol and the rule,
// so they learn which line to add to network.allow, and where; and writes
// --report FILE to rep (nil without it).
func reportDenials(c *cli.Context, rep *result.Writer, ds []proxy.Denial) error {
	allow := suggestedAllow(ds)
	where := ""
	home, _ := os.UserHomeDir()
	wd, _ := os.Getwd()
	if file, err := profiles.Discover(wd, home); err == nil && file != "" {
		where = file
	}
	if rep != nil {
		err := rep.WriteJSON(struct {
			Blocked []proxy.Denial `json:"blocked"`
			// Allow is the deduplicated network.allow entries that would
			// have let them through; Where the profile to add them to ("":
			// none; --allow for one run).
			Allow []string `json:"allow"`
			Where string   `json:"where,omitempty"`
		}{Blocked: append([]proxy.Denial{}, ds...), Allow: append([]string{}, allow...), Where: where})
		if err != nil {
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
		fmt.Fprintf(w, "hutch:   %s  %s  (%s) %s\n", esc.Text(denialProto(d)), denialDest(d), denialCount(d), esc.Lines(d.Reason))
	}
	var names []string
	for _, a := range allow {
		names = append(names, esc.Quote(a))
	}
	// Where the line goes: the project's hutch.toml when it has one, else
	// --allow for this run (a hutch.toml keeps it).
	if where != "" {
		fmt.Fprintf(w, "hutch: hint: to allow them, add to %s:\n", esc.Text(displayFile(where, wd)))
		fmt.Fprintf(w, "hutch: hint:   [network]\nhutch: hint:   allow = [%s]\n", strings.Join(names, ", "))
		return nil
	}
	fmt.Fprintf(w, "hutch: hint: to allow them for this run: hutch run")
	for _, n := range allow {
		fmt.Fprintf(w, " --allow %s", shellWord(n))
	}
	fmt.Fprintf(w, " …\nhutch: hint: to keep them, write a hutch.toml here (hutch init) with:\n")
	fmt.Fprintf(w, "hutch: hint:   [network]\nhutch: hint:   allow = [%s]\n", strings.Join(names, ", "))
	return nil
}

// denialProto is the protocol a denial names ("tcp" when it names none).
func denialProto(d proxy.Denial) string {
	if d.Proto == "" {
		return "tcp"
	}
	return d.Proto
}

// denialDest is a denial's destination, escaped: host:port (a DNS lookup
// has no port), and the name an address was for.
func denialDest(d proxy.Denial) string {
	dest := esc.Text(d.Host)
	if ip := net.ParseIP(d.Host); ip != nil && ip.To4() == nil {
		dest = "[" + dest + "]"
	}
	if d.Port != 0 {
		dest += ":" + strconv.Itoa(d.Port)
	}
	if d.Name != "" {
		dest += " (" + esc.Text(d.Name) + ")"
	}
	return dest
}

func denialCount(d proxy.Denial) string {
	if d.Method == "" {
		return fmt.Sprintf("%d×", d.Count)
	}
	return fmt.Sprintf("%d× %s", d.Count, esc.Text(d.Method))
}

// suggestedAllow is one network.allow entry a destination, in the order
// of ds: a host refused on 80, on 443 and by the DNS is one name; a port
// other than those is named; a connection to an address hutch knows the
// name of suggests the name.
func suggestedAllow(ds []proxy.Denial) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range ds {
		if d.Proto == "udp" {
			continue // no allow entry lets UDP out: nothing to suggest
		}
		name := d.Host
		if d.Name != "" {
			name = d.Name
		}
		if d.Port != 0 && d.Port != 80 && d.Port != 443 {
			name = net.JoinHostPort(name, strconv.Itoa(d.Port))
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// displayFile is file relative to dir when beneath it.
func displayFile(file, dir string) string {
	if rel, err := filepath.Rel(dir, file); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return file
}

// reportHomeWrites says, once, what the command wrote to its temporary
// home: it is gone with the sandbox, and a tool that printed "installed
// to ~/go/bin/tomlv" gave no hint of that.
func reportHomeWrites(c *cli.Context, w *sandbox.HomeWrites) {
	if w == nil || w.Count == 0 {
		return
	}
	var names []string
	for _, p := range w.Paths {
		names = append(names, "~/"+esc.Text(p))
	}
	if w.Count > len(w.Paths) || w.More {
		names = append(names, "…")
	}
	count := strconv.Itoa(w.Count)
	if w.More {
		count = "more than " + count
	}
	what, were := "files", "were"
	if w.Count == 1 && !w.More {
		what, were = "file", "was"
	}
	fmt.Fprintf(c.App.ErrWriter, "hutch: %s %s written to the temporary home %s discarded (%s); keep them with home = \"overlay\" and --keep NAME, or bind their directory with --rw\n",
		count, what, were, strings.Join(names, ", "))
}
