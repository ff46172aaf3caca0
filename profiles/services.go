package profiles

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hutch-sandbox/hutch/image"
	"github.com/hutch-sandbox/hutch/sandbox"
)

// [services.NAME] tables: long-running processes beside the command
// (docs/services.md). Each NAME is a table of its own, so they are not
// keys of the schema's fixed tables: they are parsed here, kept under the
// setting "services", and a later file's [services.NAME] replaces an
// earlier one's whole.

// serviceKeys document a service's keys; NAME stands for its name.
var serviceKeys = []KeyInfo{
	{Key: "services.NAME.command", Type: "command", Default: "none (required, unless image is set: then the image's Entrypoint and Cmd)",
		Doc:     "the service's command line, run in a sandbox of its own (new mount, pid and ipc namespaces, the command's hardening) on the command's network; NAME is its host name there",
		Example: `command = ["redis-server", "--port", "6379"]`},
	{Key: "services.NAME.image", Type: "string", Default: `"" (the host's root, read-only)`,
		Doc:      "an image for the service's root, as filesystem.root = \"image:REF\" takes it (a registry reference, a stored name, or oci-layout:/docker-archive:/oci-archive: relative to the file); its Entrypoint comes before command, as with hutch run --image",
		Example:  `image = "docker.io/library/redis:7"`,
		Widening: "an image from a registry (pulling one reaches it from the host), or a local one outside the project"},
	{Key: "services.NAME.env", Type: "table of strings", Default: "{}",
		Doc:      "variables set for the service, on top of the command's environment ($VAR expands as in env.set)",
		Example:  `env = { PGDATA = "/data/pg" }`,
		Widening: "a value that reads a secret variable"},
	{Key: "services.NAME.ready", Type: "string or command", Default: "ready once started",
		Doc:     `when the service is ready: "tcp:PORT" (127.0.0.1:PORT accepts a connection) or a command run in the service's sandbox until it exits 0`,
		Example: `ready = "tcp:6379"`},
	{Key: "services.NAME.ready_timeout", Type: "duration", Default: `"60s"`,
		Doc:     "how long the service has to become ready; after it, the run fails (status 125) with the end of the service's log",
		Example: `ready_timeout = "30s"`},
	{Key: "services.NAME.data", Type: "path", Default: "a tmpfs",
		Doc:      "an existing host directory bound writable at /data in the service's sandbox (its working directory): the service's state, kept; by default /data is an empty tmpfs",
		Example:  `data = "./.hutch/pgdata"`,
		Widening: "a directory outside the project, or in it when the project is not writable (rw) for the command"},
	{Key: "services.NAME.after", Type: "array of service names", Default: "[]",
		Doc:     "services that must be ready before this one starts",
		Example: `after = ["db"]`},
}

// servicesInfo is the setting that holds a file's services.
var servicesInfo = KeyInfo{Key: "services", Type: "tables", Doc: "services beside the command"}

// service is one [services.NAME] table as parsed.
type service struct {
	spec sandbox.Service
	src  Source            // the table
	keys map[string]Source // where each key was set
	env  map[string]item   // for the secret check
	data string            // data as an absolute path, or ""
	// after's elements, where each was written.
	after map[string]Source
}

// parseServices reads the [services] table: one table per service.
func (l *loader) parseServices(f *file, v any, bad func([]string, string, string, string)) *setting {
	table, ok := v.(map[string]any)
	if !ok {
		bad([]string{"services"}, "", "expected tables [services.NAME], not "+tomlType(v), "write each service under a [services.NAME] line")
		return nil
	}
	s := &setting{info: &servicesInfo, set: true, src: f.source([]string{"services"}, ""), svcs: map[string]*service{}}
	for _, name := range sortedKeys(table) {
		key := []string{"services", name}
		t, ok := table[name].(map[string]any)
		if !ok {
			bad(key, "", fmt.Sprintf("expected a table [services.%s], not %s", name, tomlType(table[name])), "write the service's keys under a [services."+name+"] line")
			continue
		}
		if !sandbox.ValidServiceName(name) {
			bad(key, "", fmt.Sprintf("%q is not a usable service name: it is the service's host name (lower-case letters, digits and '-', starting with a letter, at most 63; not localhost)", name), "rename the table, as in [services.db]")
			continue
		}
		if sv := l.parseService(f, name, t, bad); sv != nil {
			s.svcs[name] = sv
		}
	}
	return s
}

// parseService reads one service's table.
func (l *loader) parseService(f *file, name string, t map[string]any, bad func([]string, string, string, string)) *service {
	sv := &service{spec: sandbox.Service{Name: name}, src: f.source([]string{"services", name}, ""), keys: map[string]Source{}, after: map[string]Source{}}
	ok := true
	for _, leaf := range sortedKeys(t) {
		key := []string{"services", name, leaf}
		v := t[leaf]
		sv.keys[leaf] = f.source(key, "")
		info := serviceKey(leaf)
		if info == nil {
			bad(key, "", fmt.Sprintf("unknown key %q in a service", leaf), "a service has the keys command, image, env, ready, ready_timeout, data and after (docs/services.md)")
			ok = false
			continue
		}
		var err error
		switch leaf {
		case "command":
			sv.spec.Args, err = argvValue(v)
		case "image":
			var str, ref string
			if str, err = stringValue(v); err == nil && strings.TrimSpace(str) == "" {
				err = fmt.Errorf("the image is empty (leave image out for the host's root)")
			}
			if err == nil {
				// Local sources' paths are the file's, as filesystem.root's.
				if ref, _, err = f.x.imageRoot("image:" + strings.TrimSpace(str)); err == nil {
					sv.spec.Image = strings.TrimPrefix(ref, "image:")
					_, err = image.ParseSource(sv.spec.Image)
				}
			}
		case "env":
			err = l.serviceEnv(f, sv, key, v, bad)
		case "ready":
			if str, isStr := v.(string); isStr && strings.HasPrefix(str, "tcp:") {
				sv.spec.Ready = str
				_, err = sandbox.ReadyPort(str)
			} else {
				sv.spec.ReadyCommand, err = argvValue(v)
			}
		case "ready_timeout":
			var d any
			if d, err = parseScalar(kDuration, v); err == nil {
				sv.spec.ReadyTimeout = d.(time.Duration)
			}
		case "data":
			var str string
			if str, err = stringValue(v); err == nil {
				if sv.data, _, err = f.x.path(str); err == nil {
					sv.spec.Data = tilde(sv.data, f.x.home)
				}
			}
		case "after":
			err = serviceAfter(f, sv, key, v)
		}
		if err != nil {
			bad(key, "", err.Error(), "for example: "+info.Example)
			ok = false
		}
	}
	if _, has := t["command"]; !has && ok && sv.spec.Image == "" {
		bad([]string{"services", name}, "", fmt.Sprintf("service %q has no command", name), "for example: "+serviceKeys[0].Example+" (only a service with an image may leave it out: the image's Entrypoint and Cmd run)")
		return nil
	}
	if !ok {
		return nil
	}
	return sv
}

func serviceKey(leaf string) *KeyInfo {
	for i := range serviceKeys {
		if strings.TrimPrefix(serviceKeys[i].Key, "services.NAME.") == leaf {
			return &serviceKeys[i]
		}
	}
	return nil
}

func argvValue(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return splitArgv(x)
	case []any:
		var argv []string
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("expected strings, but the array holds %s", tomlType(e))
			}
			argv = append(argv, s)
		}
		if len(argv) == 0 || argv[0] == "" {
			return nil, fmt.Errorf("the command is empty")
		}
		return argv, nil
	}
	return nil, fmt.Errorf("expected a command (a string or an array of strings), not %s", tomlType(v))
}

func stringValue(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("expected a string, not %s", tomlType(v))
	}
	return s, nil
}

func (l *loader) serviceEnv(f *file, sv *service, key []string, v any, bad func([]string, string, string, string)) error {
	table, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("expected a table of NAME = \"value\", not %s", tomlType(v))
	}
	sv.spec.Env, sv.env = map[string]string{}, map[string]item{}
	for _, n := range sortedKeys(table) {
		ek := append(append([]string(nil), key...), n)
		str, ok := table[n].(string)
		if !ok {
			bad(ek, "", fmt.Sprintf("%s: expected a string, not %s", n, tomlType(table[n])), fmt.Sprintf("quote it: %s = \"…\"", n))
			continue
		}
		val, refs, err := f.x.vars(str)
		src := f.source(ek, "")
		if err != nil {
			bad(ek, "", n+": "+err.Error(), errTip(err))
			continue
		}
		sv.spec.Env[n] = val
		sv.env[n] = item{Name: n, Value: val, Raw: str, Src: src, refs: refs}
	}
	return nil
}

func serviceAfter(f *file, sv *service, key []string, v any) error {
	arr, ok := v.([]any)
	if !ok {
		return fmt.Errorf("expected an array of service names, not %s", tomlType(v))
	}
	for _, e := range arr {
		n, ok := e.(string)
		if !ok {
			return fmt.Errorf("expected service names (strings), but the array holds %s", tomlType(e))
		}
		if !slices.Contains(sv.spec.After, n) {
			sv.spec.After = append(sv.spec.After, n)
			sv.after[n] = f.source(key, n)
		}
	}
	return nil
}

// mergeServices applies a file's services over dst's: by name, whole.
func mergeServices(dst map[string]*setting, vals map[string]*setting) {
	v := vals["services"]
	if v == nil {
		return
	}
	d := dst["services"]
	if d == nil {
		dst["services"] = v.clone()
		return
	}
	for n, sv := range v.svcs {
		d.svcs[n] = sv
	}
}

// services checks the merged services, each problem located where it was
// written, and returns them for the Spec, by name (NewPlan orders them).
func (p *Profile) services(errs *errList) []sandbox.Service {
	s := p.settings["services"]
	if s == nil || len(s.svcs) == 0 {
		return nil
	}
	var out []sandbox.Service
	for _, n := range sortedKeys(s.svcs) {
		sv := s.svcs[n]
		for _, a := range sv.spec.After {
			if s.svcs[a] == nil {
				errs.add(sv.after[a].errorAt(sandbox.ServiceKey(n, "after"), fmt.Sprintf("%q names no service", a),
					"the services are: "+strings.Join(sortedKeys(s.svcs), ", ")))
			}
		}
		p.checkData(errs, sv)
		out = append(out, sv.spec)
	}
	if _, cyc := sandbox.ServiceOrder(out); cyc != nil {
		sv := s.svcs[cyc[0]]
		errs.add(sv.after[cyc[1]].errorAt(sandbox.ServiceKey(cyc[0], "after"), "services wait for each other: "+strings.Join(cyc, " → "),
			"remove one of these after entries: a service starts only once those it names are ready"))
	}
	return out
}

// checkData refuses a data directory that is missing, not a directory,
// reached through a symlink, or inside git's control files (a service
// writing .git/hooks would run code on the host, through git).
func (p *Profile) checkData(errs *errList, sv *service) {
	if sv.data == "" {
		return
	}
	src := sv.keys["data"]
	key := sandbox.ServiceKey(sv.spec.Name, "data")
	for _, part := range strings.Split(sv.data, string(filepath.Separator)) {
		if part == ".git" {
			errs.add(src.errorAt(key, fmt.Sprintf("%s is inside git's directory; a service's writes there would reach git on the host", tilde(sv.data, p.home)),
				"keep service data elsewhere, as in data = \"./.hutch/"+sv.spec.Name+"\""))
			return
		}
	}
	fi, err := os.Lstat(sv.data)
	if err == nil && resolve(sv.data) != sv.data {
		errs.add(src.errorAt(key, fmt.Sprintf("%s passes through a symlink", tilde(sv.data, p.home)),
			"name the real directory: a service's data is never reached through a symlink"))
		return
	}
	switch {
	case err != nil:
		errs.add(src.errorAt(key, fmt.Sprintf("%s: %s", tilde(sv.data, p.home), unwrapPathErr(err)),
			"create it first: mkdir -p "+strconv.Quote(sv.data)))
	case !fi.IsDir():
		errs.add(src.errorAt(key, fmt.Sprintf("%s is not a directory", tilde(sv.data, p.home)), "name a directory for the service's state"))
	}
}

// serviceWidenings asks about a project's services: an image (a pull), a
// data directory the command could not write, and env values that read a
// secret variable.
func (p *Profile) serviceWidenings(a *asker) {
	s := p.settings["services"]
	if s == nil {
		return
	}
	projectMode, _ := settingStr(p.settings, "filesystem.project", "rw")
	for _, n := range sortedKeys(s.svcs) {
		sv := s.svcs[n]
		// A registry reference may pull (from the host, outside any
		// sandbox) whatever the store holds; a local layout or archive is
		// judged as filesystem.root's: asked for outside the project.
		if sv.spec.Image != "" {
			if lp := localImagePath("image:" + sv.spec.Image); lp == "" {
				a.ask(sandbox.ServiceKey(n, "image"), strconv.Quote(sv.spec.Image), "pulls an image from a registry, from the host", sv.keys["image"])
			} else if !within(p.projectDir, lp) {
				a.ask(sandbox.ServiceKey(n, "image"), strconv.Quote(sv.spec.Image), "shows the image at "+tilde(lp, p.home)+", outside the project", sv.keys["image"])
			}
		}
		if sv.data != "" {
			switch {
			case !within(p.projectDir, sv.data):
				a.ask(sandbox.ServiceKey(n, "data"), strconv.Quote(tilde(sv.data, p.home)), "writable, outside the project", sv.keys["data"])
			case projectMode != "rw":
				a.ask(sandbox.ServiceKey(n, "data"), strconv.Quote(tilde(sv.data, p.home)),
					fmt.Sprintf("writable in the project, which is %q for the command", projectMode), sv.keys["data"])
			}
		}
		for _, it := range sortedItems(sv.env) {
			for _, r := range it.refs {
				if secretEnv(r) {
					a.ask(sandbox.ServiceKey(n, "env"), "{ "+it.Name+" = "+strconv.Quote(it.Raw)+" }", "reads the secret variable $"+r, it.Src)
					break
				}
			}
		}
	}
}

// serviceFieldError locates a Spec.Validate error about a service.
func (p *Profile) serviceFieldError(fe *sandbox.FieldError) *Error {
	parts := strings.SplitN(fe.Key, ".", 3)
	s := p.settings["services"]
	if len(parts) != 3 || s == nil || s.svcs[parts[1]] == nil {
		return nil
	}
	sv := s.svcs[parts[1]]
	src, ok := sv.keys[parts[2]]
	if !ok {
		src = sv.src
	}
	e := src.errorAt(fe.Key, fe.Msg, keyTip(serviceKey(parts[2]), fe))
	e.Unsupported = fe.Unsupported
	return e
}
