package sandbox

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hutch-sandbox/hutch/image"
	"github.com/hutch-sandbox/hutch/internal/mutate"
	"github.com/hutch-sandbox/hutch/sandbox/model"
)

// Service is one [services.NAME] table: a long-running process started
// before the command, in a sandbox of its own that shares the command's
// network namespace (docs/services.md).
type Service struct {
	// Name is how the command reaches it: /etc/hosts maps it to 127.0.0.1.
	Name string `json:"name"`
	// Args is the service's command line.
	Args []string `json:"args"`
	// Image is the service's own root: an image reference as
	// filesystem.root = "image:REF" takes; "" is the host's root,
	// read-only, as the command's. With an image, Args may be empty: the
	// image's Entrypoint and Cmd are then the command (docker's rules).
	Image string `json:"image,omitempty"`
	// Env is set on top of the command's environment.
	Env map[string]string `json:"env,omitempty"`
	// Ready is "tcp:PORT" (ready once 127.0.0.1:PORT accepts a
	// connection); ReadyCommand, when set instead, is run inside the
	// service's sandbox until it exits 0. Neither: ready once started.
	Ready        string        `json:"ready,omitempty"`
	ReadyCommand []string      `json:"ready_command,omitempty"`
	ReadyTimeout time.Duration `json:"ready_timeout,omitempty"`
	// Data is the host directory bound writable at /data; "" gives /data
	// a tmpfs, thrown away with the run.
	Data string `json:"data,omitempty"`
	// After names the services that must be ready before this one starts.
	After []string `json:"after,omitempty"`
}

// DefaultReadyTimeout bounds a service's start when ready_timeout is unset.
const DefaultReadyTimeout = 60 * time.Second

// ServiceDataDir is where a service's data directory shows inside its
// sandbox (and its working directory).
const ServiceDataDir = "/data"

// ServicePlan is a Service resolved (sandbox/model).
type ServicePlan = model.ServicePlan

// ServiceKey is the profile key of a service's field, for errors.
func ServiceKey(name, field string) string { return "services." + name + "." + field }

// ValidServiceName reports whether name can be a service's host name:
// lower-case letters, digits and '-', at most 63, starting with a letter.
func ValidServiceName(name string) bool {
	if name == "" || len(name) > 63 || name[0] < 'a' || name[0] > 'z' || strings.HasSuffix(name, "-") {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return name != "localhost"
}

// ReadyPort parses "tcp:PORT".
func ReadyPort(ready string) (int, error) {
	p, ok := strings.CutPrefix(ready, "tcp:")
	if !ok {
		return 0, fmt.Errorf("%q is not tcp:PORT (for a probe command, write ready = [\"cmd\", \"arg\"])", ready)
	}
	return portNumber(p)
}

// checkServices checks the services: names, commands, readiness, data
// and the order after = [...] gives. The profile layer locates the same
// problems in the file; these are the model's own guarantees.
func (s *Spec) checkServices(c *checks) {
	names := map[string]bool{}
	for _, sv := range s.Services {
		if names[sv.Name] {
			c.bad(ServiceKey(sv.Name, "command"), "service %q is defined twice", sv.Name)
		}
		names[sv.Name] = true
	}
	for i := range s.Services {
		sv := &s.Services[i]
		if !ValidServiceName(sv.Name) || sv.Name == s.Process.Hostname {
			c.bad(ServiceKey(sv.Name, "command"), "%q is not a usable service name (lower-case letters, digits and '-', starting with a letter, at most 63; not localhost or the sandbox's hostname)", sv.Name)
		}
		if len(sv.Args) == 0 && sv.Image == "" || len(sv.Args) > 0 && sv.Args[0] == "" {
			c.bad(ServiceKey(sv.Name, "command"), "service %q has no command", sv.Name)
		}
		if sv.Image != "" {
			if _, err := image.ParseSource(strings.TrimSpace(sv.Image)); err != nil {
				c.bad(ServiceKey(sv.Name, "image"), "%v", err)
			}
		}
		if sv.Ready != "" {
			if _, err := ReadyPort(sv.Ready); err != nil {
				c.bad(ServiceKey(sv.Name, "ready"), "%v", err)
			}
		}
		if sv.ReadyTimeout < 0 {
			c.bad(ServiceKey(sv.Name, "ready_timeout"), "%v is negative", sv.ReadyTimeout)
		}
		if sv.Data != "" {
			c.paths(ServiceKey(sv.Name, "data"), []string{sv.Data})
		}
		for k := range sv.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				c.bad(ServiceKey(sv.Name, "env"), "variable name %q is invalid", k)
			}
		}
		for _, a := range sv.After {
			if !names[a] {
				c.bad(ServiceKey(sv.Name, "after"), "%q names no service", a)
			}
		}
	}
	if _, cyc := ServiceOrder(s.Services); cyc != nil {
		c.bad(ServiceKey(cyc[0], "after"), "services wait for each other: %s", strings.Join(cyc, " → "))
	}
}

// ServiceOrder is the services' start order: each after those it names,
// otherwise by name. A cycle returns its names, first repeated last.
func ServiceOrder(svcs []Service) ([]Service, []string) {
	byName := map[string]*Service{}
	var names []string
	for i := range svcs {
		if byName[svcs[i].Name] == nil {
			names = append(names, svcs[i].Name)
		}
		byName[svcs[i].Name] = &svcs[i]
	}
	sort.Strings(names)
	const (
		unseen = iota
		visiting
		done
	)
	state := map[string]int{}
	var out []Service
	var stack []string
	var cycle []string
	var visit func(n string) bool
	visit = func(n string) bool {
		sv := byName[n]
		if sv == nil || state[n] == done {
			return true
		}
		if state[n] == visiting {
			for i, x := range stack {
				if x == n {
					cycle = append(append([]string(nil), stack[i:]...), n)
				}
			}
			return false
		}
		state[n] = visiting
		stack = append(stack, n)
		after := append([]string(nil), sv.After...)
		sort.Strings(after)
		for _, a := range after {
			if !visit(a) {
				return false
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		out = append(out, *sv)
		return true
	}
	for _, n := range names {
		if !visit(n) {
			return nil, cycle
		}
	}
	return out, nil
}

// planServices plans each service's own sandbox: the host's system
// directories read-only (or its image's layers, overlaid with a layer of
// its own that goes with it), a fresh /dev, /proc and /sys, a tmpfs home
// (none in an image), /tmp and /run, the generated /etc files, and its
// data directory at /data; not the project, nor any bind of the command's.
// Every secret stays hidden as for the command.
func (pl *planner) planServices() error {
	order, _ := ServiceOrder(pl.spec.Services)
	for _, sv := range order {
		var img *ImageRoot
		if sv.Image != "" {
			if img = pl.host.ServiceImages[sv.Name]; img == nil {
				return fmt.Errorf("the image %s of service %q was not opened before planning", sv.Image, sv.Name)
			}
		}
		sub := pl.spec
		home := "tmpfs"
		if mutate.Off("service-home") {
			home = "ro" // the old bug: the service sees your home
		}
		sub.Filesystem = Filesystem{Root: "host", ProjectMode: "ro", Home: home, Git: GitProtect, Hide: pl.spec.Filesystem.Hide}
		sub.Process.User = UserSelf // no overlaid system directories: those are the command's layers
		sub.Process.Dotfiles = []string{}
		sub.Env.Set = map[string]string{}
		for k, v := range pl.spec.Env.Set {
			sub.Env.Set[k] = v
		}
		for k, v := range sv.Env {
			sub.Env.Set[k] = v
		}
		sub.Env.Set["HUTCH_SERVICE"] = sv.Name
		host := pl.host
		var planImg *PlanImage
		if img != nil {
			// The image's environment (imageEnv reads the host's Image).
			h := *pl.host
			h.Image = img
			host = &h
			sub.Filesystem.Root = "image:" + sv.Image
			planImg = &PlanImage{Name: img.Name, ID: img.ID}
		}
		sp := &planner{spec: sub, host: host, img: img, p: &Plan{UID: pl.p.UID, Image: planImg}}
		if home == "ro" {
			sp.visible = []string{pl.host.Home}
		}
		sp.systemMounts()
		sp.devMounts()
		sp.procMounts()
		sp.scratchAndHome()
		if sv.Data != "" {
			sp.add(Mount{Kind: MountBind, Src: sp.expand(sv.Data), Dst: ServiceDataDir})
		} else {
			sp.add(Mount{Kind: MountTmpfs, Dst: ServiceDataDir, Mode: 0o700, Shared: true})
		}
		sp.hideRevealed()
		sp.generatedFiles()
		timeout := sv.ReadyTimeout
		if timeout == 0 {
			timeout = DefaultReadyTimeout
		}
		port := 0
		if sv.Ready != "" {
			port, _ = ReadyPort(sv.Ready)
		}
		args := sv.Args
		if img != nil {
			// docker's rules, as hutch run --image: the Entrypoint, then
			// the command or else the image's Cmd.
			if args = imageArgs(Spec{Args: sv.Args}, img); len(sv.Args) == 0 && len(img.Entrypoint)+len(img.Cmd) == 0 {
				return withHint(&FieldError{Key: ServiceKey(sv.Name, "command"), Msg: fmt.Sprintf("service %q has no command, and its image %s has no Entrypoint or Cmd to run", sv.Name, img.Name)},
					"give it one in [services.%s], as in: command = [\"server\", \"--port\", \"8080\"]", sv.Name)
			}
		}
		pl.p.Services = append(pl.p.Services, ServicePlan{
			Name: sv.Name, Args: args, Env: buildEnv(sub, host, sp.p), Cwd: ServiceDataDir,
			Mounts: sp.p.Mounts, ReadyPort: port, ReadyCommand: sv.ReadyCommand, ReadyTimeout: timeout,
			After: sv.After, Image: planImg,
		})
	}
	return nil
}

// hostsFile is /etc/hosts: localhost, the sandbox's own name, and each
// service's name on the loopback address that all of them share.
func (pl *planner) hostsFile() string {
	s := hostsFile(pl.spec.Process.Hostname)
	for _, sv := range pl.spec.Services {
		s += "127.0.0.1\t" + sv.Name + "\n"
	}
	return s
}

// serviceNames is the services' names, for NO_PROXY.
func serviceNames(spec Spec) []string {
	var out []string
	for _, sv := range spec.Services {
		out = append(out, sv.Name)
	}
	return out
}
