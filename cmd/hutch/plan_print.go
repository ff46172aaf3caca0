package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/userns"
)

// printPlan prints a plan for people; --json is for programs.
func printPlan(w io.Writer, p *sandbox.Plan) error {
	fmt.Fprintf(w, "command:    %s\n", strings.Join(p.Args, " "))
	fmt.Fprintf(w, "cwd:        %s\n", p.Cwd)
	fmt.Fprintf(w, "user:       uid %d gid %d\n", p.UID, p.GID)
	how := "one id"
	if p.MapHelpers {
		how = "newuidmap/newgidmap"
	}
	fmt.Fprintf(w, "id maps:    %s\n", how)
	fmt.Fprintf(w, "  uid_map:  %s\n", strings.ReplaceAll(strings.TrimSpace(userns.Format(p.UIDMap)), "\n", "; "))
	fmt.Fprintf(w, "  gid_map:  %s\n", strings.ReplaceAll(strings.TrimSpace(userns.Format(p.GIDMap)), "\n", "; "))
	fmt.Fprintf(w, "namespaces: %s\n", strings.Join(p.Namespaces, " "))
	fmt.Fprintf(w, "network:    %s\n", p.Network)
	fmt.Fprintf(w, "hostname:   %s\n", p.Hostname)
	if p.Image != nil {
		fmt.Fprintf(w, "image:      %s (%s)\n", p.Image.Name, shortID(p.Image.ID))
	}
	if len(p.Caps) > 0 {
		fmt.Fprintf(w, "caps:       %s\n", strings.Join(p.Caps, " "))
	} else {
		fmt.Fprintf(w, "caps:       none\n")
	}
	fmt.Fprintf(w, "mounts:\n")
	for _, m := range p.Mounts {
		var desc string
		switch m.Kind {
		case sandbox.MountBind:
			mode := "rw"
			if m.RO {
				mode = "ro"
			}
			desc = fmt.Sprintf("%s (%s)", m.Src, mode)
		case sandbox.MountSymlink:
			desc = "-> " + m.Src
		case sandbox.MountTmpfs:
			desc = fmt.Sprintf("mode %04o", m.Mode)
		case sandbox.MountOverlay:
			desc = fmt.Sprintf("%s (overlay, layer %s)", m.Src, m.Layer)
			if len(m.Lower) > 0 && p.Image != nil {
				desc = fmt.Sprintf("image %s: %d layer%s (overlay, layer %s)", p.Image.Name, len(m.Lower), map[bool]string{true: "", false: "s"}[len(m.Lower) == 1], m.Layer)
			}
		}
		fmt.Fprintf(w, "  %-10s %-28s %s\n", m.Kind, m.Dst, desc)
	}
	if l := p.Layers; l != nil {
		keep := "thrown away at exit"
		if l.Session != "" {
			keep = "kept in session " + l.Session
		}
		fmt.Fprintf(w, "overlays:   driver %s, changes %s\n", l.Driver, keep)
	}
	fmt.Fprintf(w, "env:\n")
	for _, e := range p.Env {
		fmt.Fprintf(w, "  %s\n", e)
	}
	for _, sv := range p.Services {
		ready := "once started"
		switch {
		case sv.ReadyPort != 0:
			ready = fmt.Sprintf("tcp:%d", sv.ReadyPort)
		case len(sv.ReadyCommand) > 0:
			ready = strings.Join(sv.ReadyCommand, " ")
		}
		data := "tmpfs"
		for _, m := range sv.Mounts {
			if m.Dst == sandbox.ServiceDataDir && m.Kind == sandbox.MountBind {
				data = m.Src
			}
		}
		root := ""
		if sv.Image != nil {
			root = fmt.Sprintf("; root: image %s (%s)", sv.Image.Name, shortID(sv.Image.ID))
		}
		fmt.Fprintf(w, "service:    %s: %s (ready: %s, within %v; /data: %s%s)\n", sv.Name, strings.Join(sv.Args, " "), ready, sv.ReadyTimeout, data, root)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}
