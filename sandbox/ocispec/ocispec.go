package ocispec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/userns"
)

// MaxConfig is the largest config.json hutch reads: a generated one is a
// few KiB, one with a seccomp profile some tens.
const MaxConfig = 4 << 20

// Bundle is a config.json read as a sandbox.Spec: what the bundle asks
// for, before hutch's own policy (a site profile, hutch's defaults) is
// laid over it.
type Bundle struct {
	// Spec is the request: Args, the root directory, mounts as binds and
	// tmpfs, masked paths as hides, hostname, cwd, rlimits, and
	// Spec.Bundle (ids, caps, env, read-only paths, id maps).
	Spec sandbox.Spec
	// HostNetwork: the bundle lists no network namespace, which asks for
	// the host's network. Only the profile decides the network.
	HostNetwork bool
	// Terminal: process.terminal (a pty).
	Terminal bool
	// Seccomp is linux.seccomp as it was written, or nil.
	Seccomp json.RawMessage
	// Resources are the limits linux.resources asks for.
	Memory, Pids int64
	CPU          float64
	Annotations  map[string]string
	// Warnings are fields hutch does not apply as asked; Debug are those
	// hutch provides its own way (/proc, /dev, /sys, cgroupsPath).
	Warnings, Debug []string
}

// Error is a config.json that hutch refuses, naming the field.
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string { return "config.json: " + e.Field + ": " + e.Msg }

// Read reads DIR/config.json, at most MaxConfig bytes, and parses it.
func Read(bundleDir string) (*Bundle, error) {
	f, err := os.Open(filepath.Join(bundleDir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("reading the bundle: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfig+1))
	if err != nil {
		return nil, fmt.Errorf("reading the bundle: %w", err)
	}
	if len(data) > MaxConfig {
		return nil, fmt.Errorf("reading the bundle: %s is larger than %d bytes", f.Name(), MaxConfig)
	}
	return Parse(data, bundleDir)
}

// Parse maps config.json (data) to a Bundle; bundleDir (absolute) is
// where relative paths in it start. It is pure.
func Parse(data []byte, bundleDir string) (*Bundle, error) {
	var c config
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	if dec.More() {
		return nil, errors.New("config.json: more than one JSON value")
	}
	b := &Bundle{Annotations: c.Annotations}
	m := &mapper{b: b, bundle: bundleDir}
	m.unknown(data)
	if !strings.HasPrefix(c.OCIVersion, "1.") {
		return nil, &Error{"ociVersion", fmt.Sprintf("%q is not a 1.x version of the runtime spec", c.OCIVersion)}
	}
	steps := []func(*config) error{m.process, m.root, m.hostname, m.mounts, m.linux, m.hooks}
	for _, step := range steps {
		if err := step(&c); err != nil {
			return nil, err
		}
	}
	sort.Strings(b.Warnings)
	return b, nil
}

type mapper struct {
	b      *Bundle
	bundle string
}

func (m *mapper) warn(field, format string, args ...any) {
	m.b.Warnings = append(m.b.Warnings, field+": "+fmt.Sprintf(format, args...))
}

func (m *mapper) debug(field, format string, args ...any) {
	m.b.Debug = append(m.b.Debug, field+": "+fmt.Sprintf(format, args...))
}

// known lists, by object, the fields Parse reads; any other is warned
// about by name.
var known = map[string][]string{
	"":                       {"ociVersion", "process", "root", "hostname", "domainname", "mounts", "hooks", "annotations", "linux"},
	"process":                {"terminal", "user", "args", "env", "cwd", "capabilities", "rlimits", "noNewPrivileges", "apparmorProfile", "oomScoreAdj", "selinuxLabel", "consoleSize"},
	"root":                   {"path", "readonly"},
	"linux":                  {"namespaces", "uidMappings", "gidMappings", "devices", "cgroupsPath", "resources", "sysctl", "seccomp", "maskedPaths", "readonlyPaths"},
	"linux.resources":        {"memory", "cpu", "pids"},
	"linux.resources.memory": {"limit"},
	"linux.resources.cpu":    {"quota", "period"},
	"linux.resources.pids":   {"limit"},
}

// unknown warns about each field of config.json that Parse does not read.
func (m *mapper) unknown(data []byte) {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return
	}
	check := func(prefix string, obj map[string]json.RawMessage) {
		ok := map[string]bool{}
		for _, k := range known[prefix] {
			ok[k] = true
		}
		var names []string
		for k := range obj {
			if !ok[k] {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		for _, k := range names {
			field := k
			if prefix != "" {
				field = prefix + "." + k
			}
			m.warn(field, "not supported by hutch; ignored")
		}
	}
	check("", top)
	// Each object known lists, reached by its dotted path from the top.
	for _, path := range []string{"process", "root", "linux", "linux.resources", "linux.resources.memory", "linux.resources.cpu", "linux.resources.pids"} {
		obj := top
		for _, name := range strings.Split(path, ".") {
			var next map[string]json.RawMessage
			raw, ok := obj[name]
			if !ok || json.Unmarshal(raw, &next) != nil {
				obj = nil
				break
			}
			obj = next
		}
		if obj != nil {
			check(path, obj)
		}
	}
}

func (m *mapper) hooks(c *config) error {
	if len(c.Hooks) > 0 {
		return &Error{"hooks", "not supported: a hook runs a host program outside the sandbox"}
	}
	return nil
}

func (m *mapper) hostname(c *config) error {
	if c.Hostname != "" {
		m.b.Spec.Process.Hostname = c.Hostname
	}
	if c.Domainname != "" {
		m.warn("domainname", "not supported; the domain name is \"(none)\"")
	}
	return nil
}

func (m *mapper) root(c *config) error {
	if c.Root == nil || c.Root.Path == "" {
		return &Error{"root.path", "missing: hutch runs a bundle on its own root filesystem directory"}
	}
	p := c.Root.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(m.bundle, p)
	}
	p = filepath.Clean(p)
	if p == "/" {
		return &Error{"root.path", "\"/\": the host's own root is not a bundle's root filesystem"}
	}
	m.b.Spec.Filesystem.Root = "dir:" + p
	m.bundleSettings().ReadOnlyRoot = c.Root.Readonly
	return nil
}

func (m *mapper) bundleSettings() *sandbox.Bundle {
	if m.b.Spec.Bundle == nil {
		m.b.Spec.Bundle = &sandbox.Bundle{}
	}
	return m.b.Spec.Bundle
}

// toMappings turns OCI id maps into hutch's; the planner checks that they
// fit the caller's ids.
func toMappings(field string, ms []idMap) ([]userns.Mapping, error) {
	var out []userns.Mapping
	for i, x := range ms {
		if x.Size == 0 || uint64(x.ContainerID)+uint64(x.Size) > 1<<32 || uint64(x.HostID)+uint64(x.Size) > 1<<32 {
			return nil, &Error{fmt.Sprintf("%s[%d]", field, i), "an empty or overflowing range"}
		}
		out = append(out, userns.Mapping{Inside: x.ContainerID, Outside: x.HostID, Size: x.Size})
	}
	return out, nil
}
