package profiles

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hutch-sandbox/hutch/sandbox"
)

// kind is how a key's value is written and what Go type it becomes in the
// sandbox.Spec.
type kind int

const (
	kString   kind = iota // a string; its allowed values are checked by sandbox.Spec.Validate
	kBool                 // true or false
	kBinds                // array of paths that must exist (unless marked optional with "?")
	kPaths                // array of paths that need not exist (masks, tmpfs mounts)
	kStrings              // array of strings
	kGlobs                // array of environment variable names or glob patterns
	kEnvMap               // table of NAME = "value"
	kDuration             // "30m", "1h30m"; 0 or "0" for none
	kSize                 // bytes: 1048576, "4GiB", "512M"; 0 or "unlimited" for none
	kCount                // a whole number; 0 or "unlimited" for none
	kCPU                  // CPUs: 1.5, 2, "150%"; 0 or "unlimited" for none
	kArgv                 // a command: "zsh -l" or ["zsh", "-l"]
	kSeccomp              // "default", "off" or the path of a seccomp profile
	kDir                  // one directory path (the project directory; flags only)
	kRoot                 // "host" or "image:REF"; a local image source's path is relative to the profile
	kTables               // [[filesystem.bind]]: tables of source, target and mode
)

// goType is the Spec field type each kind produces.
func (k kind) goType() reflect.Type {
	switch k {
	case kString, kSeccomp, kDir, kRoot:
		return reflect.TypeOf("")
	case kBool:
		return reflect.TypeOf(false)
	case kBinds, kPaths, kStrings, kGlobs, kArgv:
		return reflect.TypeOf([]string(nil))
	case kEnvMap:
		return reflect.TypeOf(map[string]string(nil))
	case kDuration:
		return reflect.TypeOf(time.Duration(0))
	case kSize, kCount:
		return reflect.TypeOf(int64(0))
	case kCPU:
		return reflect.TypeOf(float64(0))
	case kTables:
		return reflect.TypeOf([]sandbox.Bind(nil))
	}
	panic("unknown kind")
}

// isList reports whether values of this kind append across profiles rather
// than override.
func (k kind) isList() bool {
	switch k {
	case kBinds, kPaths, kStrings, kGlobs, kTables:
		return true
	}
	return false
}

// KeyInfo documents one profile key.
type KeyInfo struct {
	Key string
	// Type is how the value is written, for documentation.
	Type string
	// Default describes the value when no profile sets it.
	Default string
	// Doc is one line saying what the key does.
	Doc string
	// Example is a line of TOML, as it appears in its table.
	Example string
	// Widening says when a project profile setting this key needs
	// `hutch trust`; empty when it never does.
	Widening string
	// FlagOnly keys come from the command line, never from a profile.
	FlagOnly bool

	kind kind
}

// schema lists every key in the order of docs/profiles.md and of
// `hutch profile show`. TestSchemaMatchesSpec keeps it in step with the
// `key` tags of sandbox.Spec.
var schema = []KeyInfo{
	{Key: "filesystem.root", kind: kRoot, Type: "string", Default: `"host"`,
		Doc:      `what / is: "host" (the host's system directories, read-only), "image:REF" (an OCI image: a registry reference, oci-layout:PATH[:TAG], docker-archive:FILE or oci-archive:FILE; pulled or imported when not stored yet) or "dir:PATH" (a root filesystem directory, overlaid so that it is never written)`,
		Example:  `root = "host"`,
		Widening: "an image from a local layout or archive, or a root directory, outside the project (it shows that file's contents), or from a registry neither hutch (Docker Hub, ghcr.io, quay.io, gcr.io, registry.k8s.io, mcr.microsoft.com, public.ecr.aws) nor your configuration names"},
	{Key: "filesystem.project_dir", kind: kDir, Type: "path", Default: "the directory of hutch.toml, else the working directory", FlagOnly: true,
		Doc: "the project directory, bound at its own path; set with --project, never in a profile (a profile's project is the directory of its hutch.toml)"},
	{Key: "filesystem.project", kind: kString, Type: "string", Default: `"rw"`,
		Doc:      `how the project is bound: "rw" (read-write), "ro" (read-only) or "overlay" (writes kept aside for review with hutch diff and apply)`,
		Example:  `project = "ro"`,
		Widening: `a mode that writes more than your configuration's ("ro" < "overlay" < "rw")`},
	{Key: "filesystem.overlay", kind: kString, Type: "string", Default: `"auto"`,
		Doc:     `the overlay driver: "auto" (the kernel's when it works, else fuse-overlayfs), "kernel" or "fuse"`,
		Example: `overlay = "auto"`},
	{Key: "filesystem.rw", kind: kBinds, Type: "array of paths", Default: "[]",
		Doc:      `host paths bound writable at the same path ("?PATH": skipped when missing)`,
		Example:  `rw = ["?~/.npm"]`,
		Widening: "a path outside the project, or one that reveals a secret"},
	{Key: "filesystem.ro", kind: kBinds, Type: "array of paths", Default: "[]",
		Doc:      `host paths bound read-only at the same path ("?PATH": skipped when missing)`,
		Example:  `ro = ["?~/.nvm"]`,
		Widening: "a path outside the project (a read-only bind still reaches sockets), or one that reveals a secret"},
	{Key: "filesystem.bind", kind: kTables, Type: "array of tables (source, target, mode)", Default: "[]",
		Doc:      `host paths bound at another path inside: source (a host path), target (the path inside), mode "ro" (default) or "rw"; checked and opened as rw and ro binds are`,
		Example:  `bind = [{ source = "~/datasets", target = "/data", mode = "ro" }]`,
		Widening: "a source outside the project, or one that reveals a secret; a target over a system path"},
	{Key: "filesystem.hide", kind: kPaths, Type: "array of paths", Default: "[]; the built-in secret paths are hidden anyway",
		Doc:      "paths masked with an empty directory or file",
		Example:  `hide = ["${PROJECT}/.env"]`,
		Widening: "a system path (/etc, /usr, /dev, /proc, /sys, …)"},
	{Key: "filesystem.tmpfs", kind: kPaths, Type: "array of paths", Default: "[]",
		Doc:      "paths that get an empty, writable tmpfs (nothing written there is kept)",
		Example:  `tmpfs = ["${PROJECT}/.cache"]`,
		Widening: "a system path (/etc, /usr, /dev, /proc, /sys, …)"},
	{Key: "filesystem.sockets", kind: kPaths, Type: "array of paths", Default: "[]",
		Doc:      "host unix sockets inside a bind that the command may connect to; every other socket a bind shows is covered with an empty file",
		Example:  `sockets = ["${PROJECT}/.devserver.sock"]`,
		Widening: "any socket: it reaches a program outside the sandbox"},
	{Key: "filesystem.home", kind: kString, Type: "string", Default: `"tmpfs"`,
		Doc:      `your home inside: "tmpfs" (empty), "ro" (visible read-only, secrets still hidden) or "overlay" (visible, secrets still hidden, writes kept aside)`,
		Example:  `home = "tmpfs"`,
		Widening: `"ro" or "overlay" when your configuration has "tmpfs"`},
	{Key: "filesystem.git", kind: kString, Type: "string", Default: `"protect"`,
		Doc:      `"protect": in a writable project, git's config, hooks and info directories and the .git entries are read-only (git on your host runs what they say); "rw": writable like the rest`,
		Example:  `git = "protect"`,
		Widening: `"rw" when your configuration has "protect"`},
	{Key: "filesystem.session", kind: kString, Type: "string", Default: `""`,
		Doc:     "the name of the session that keeps an overlaid run's changes (--keep NAME also overlays the project)",
		Example: `session = "feature-x"`},

	{Key: "network.mode", kind: kString, Type: "string", Default: `"none"`,
		Doc:      `"none" (only loopback), "proxy" (HTTP(S) to the hosts in allow), "slirp4netns" or "pasta" (user-mode NAT), "host" (the host's network)`,
		Example:  `mode = "none"`,
		Widening: `"host" (every service on the host, its loopback and its abstract unix sockets), and any mode that reaches more than your configuration's`},
	{Key: "network.allow", kind: kStrings, Type: "array of host names", Default: "[]",
		Doc:      `host names (or IP addresses, CIDR networks) reachable with mode = "proxy"`,
		Example:  `allow = ["registry.npmjs.org"]`,
		Widening: "a host your configuration does not allow"},
	{Key: "network.ports", kind: kStrings, Type: "array of strings", Default: "[]",
		Doc:      `published ports, "[HOSTIP:]HOSTPORT:PORT[/tcp|udp]"`,
		Example:  `ports = ["127.0.0.1:3000:3000"]`,
		Widening: "always"},
	{Key: "network.host_loopback", kind: kBool, Type: "boolean", Default: "false",
		Doc:      "let the sandbox reach the host's 127.0.0.1",
		Example:  `host_loopback = false`,
		Widening: "true"},
	{Key: "network.learn", kind: kString, Type: "path", Default: `""`,
		Doc:      `learn mode: run in mode "proxy" with every host allowed but recorded, and write the minimal [network] section that allows them to this file (relative to the working directory; an existing file is kept unless --learn-overwrite)`,
		Example:  `learn = "hutch.learned.toml"`,
		Widening: "always: every host is reachable for the run"},

	{Key: "env.keep", kind: kGlobs, Type: "array of names or globs", Default: "[]; PATH, HOME, USER, LOGNAME, SHELL, TERM, LANG, LC_*, TZ, COLORTERM and NO_COLOR always pass",
		Doc:      "host variables passed through; secret-looking names (*_TOKEN, *_KEY, AWS_*, …) pass only when named exactly",
		Example:  `keep = ["NODE_*", "npm_config_*"]`,
		Widening: "naming a secret variable exactly"},
	{Key: "env.set", kind: kEnvMap, Type: "table of strings", Default: "{}",
		Doc:      "variables set inside, after keep; values expand ${VAR}",
		Example:  `set = { NODE_ENV = "development" }`,
		Widening: "a value that reads a secret host variable"},

	{Key: "process.user", kind: kString, Type: "string", Default: `"self"` + "; with an image, the image's user",
		Doc:     `who runs the command inside: "self" (your uid; with an image, the image's root without its capabilities, which is you outside), "root" (uid 0, mapped to you outside), or with an image one of its users: NAME, UID, NAME:GROUP or UID:GID`,
		Example: `user = "self"`},
	{Key: "process.idmap", kind: kString, Type: "string", Default: `"auto"`,
		Doc:     `"auto" (your /etc/subuid range through newuidmap when available) or "single" (your id only)`,
		Example: `idmap = "auto"`},
	{Key: "process.hostname", kind: kString, Type: "string", Default: `"hutch"`,
		Doc:     "the host name inside",
		Example: `hostname = "hutch"`},
	{Key: "process.timeout", kind: kDuration, Type: "duration", Default: `"0s" (none)`,
		Doc:      "kill the whole sandbox after this long (exit status 124)",
		Example:  `timeout = "30m"`,
		Widening: "longer than your configuration's, or none when it sets one"},
	{Key: "process.kill_grace", kind: kDuration, Type: "duration", Default: `"10s"`,
		Doc:     "how long the command has to end after a forwarded SIGINT, SIGTERM or SIGHUP, or the timeout's SIGTERM, before hutch kills the whole sandbox (exit status 137)",
		Example: `kill_grace = "10s"`},
	{Key: "process.shell", kind: kArgv, Type: "string or array of strings", Default: "your login shell",
		Doc:     "what `hutch shell` runs",
		Example: `shell = ["bash", "--norc"]`},
	{Key: "process.dotfiles", kind: kStrings, Type: "array of paths in your home", Default: `for hutch shell: [".bashrc", ".bash_profile", ".profile", ".inputrc", ".zshrc", ".config/starship.toml", ".gitconfig"]; none for hutch run`,
		Doc:     "files of your home bound read-only into the sandbox's empty home (symlinks resolved; secrets never; .gitconfig without its credentials)",
		Example: `dotfiles = [".bashrc", ".vimrc"]`},
	{Key: "process.workdir", kind: kString, Type: "path inside", Default: "your working directory when visible inside; with an image, its WorkingDir, else where you are in the project",
		Doc:     "where the command starts; with an image root, the project is bound here instead of at its own path",
		Example: `workdir = "/src"`},

	{Key: "limits.memory", kind: kSize, Type: "size", Default: `"unlimited"`,
		Doc:      `most memory, e.g. "4GiB" (cgroup memory.max; needs a delegated cgroup)`,
		Example:  `memory = "4GiB"`,
		Widening: limitWidening},
	{Key: "limits.pids", kind: kCount, Type: "integer", Default: "4096 (the default profile)",
		Doc:      "most processes and threads at once: cgroup pids.max where a cgroup is delegated; everywhere, RLIMIT_NPROC counted in the sandbox's own user namespace (per uid inside), unless limits.nproc is set",
		Example:  `pids = 4096`,
		Widening: limitWidening},
	{Key: "limits.cpu", kind: kCPU, Type: "number or percentage", Default: `"unlimited"`,
		Doc:      `share of CPUs: 1.5 or "150%" is one and a half (cgroup cpu.max)`,
		Example:  `cpu = 2`,
		Widening: limitWidening},
	{Key: "limits.tmpfs", kind: kSize, Type: "size", Default: "a quarter of RAM, or limits.memory when smaller",
		Doc:      "one budget that /tmp, /var/tmp, the tmpfs home and filesystem.tmpfs paths share (one tmpfs, bound at each)",
		Example:  `tmpfs = "2GiB"`,
		Widening: limitWidening},
	{Key: "limits.inotify_instances", kind: kCount, Type: "integer", Default: "half of the host's user.max_inotify_instances",
		Doc:      "most inotify instances in the sandbox's user namespace, so that the host user keeps the rest",
		Example:  `inotify_instances = 64`,
		Widening: limitWidening},
	{Key: "limits.inotify_watches", kind: kCount, Type: "integer", Default: "half of the host's user.max_inotify_watches",
		Doc:      "most inotify watches in the sandbox's user namespace",
		Example:  `inotify_watches = 65536`,
		Widening: limitWidening},
	{Key: "limits.nofile", kind: kCount, Type: "integer", Default: "your own limit",
		Doc:      "most open files (RLIMIT_NOFILE)",
		Example:  `nofile = 4096`,
		Widening: limitWidening},
	{Key: "limits.nproc", kind: kCount, Type: "integer", Default: "limits.pids",
		Doc:      "most processes and threads of one uid inside, counted in the sandbox's own user namespace (RLIMIT_NPROC); default limits.pids",
		Example:  `nproc = 2048`,
		Widening: limitWidening},
	{Key: "limits.fsize", kind: kSize, Type: "size", Default: "your own limit",
		Doc:      `largest file the command may write, e.g. "1GiB" (RLIMIT_FSIZE)`,
		Example:  `fsize = "1GiB"`,
		Widening: limitWidening},
	{Key: "limits.required", kind: kBool, Type: "boolean", Default: "false",
		Doc:      "fail instead of warning when a limit cannot be enforced (no delegated cgroup)",
		Example:  `required = true`,
		Widening: "false when your configuration has true"},
	{Key: "limits.quiet", kind: kBool, Type: "boolean", Default: "false",
		Doc:     "do not warn (once per boot) that memory and cpu limits are not enforced where no cgroup is delegated",
		Example: `quiet = true`},

	{Key: "security.seccomp", kind: kSeccomp, Type: "string", Default: `"default"`,
		Doc:      `the system call filter: "default", "off", or the path of an OCI/Docker seccomp JSON profile`,
		Example:  `seccomp = "default"`,
		Widening: `"off", or a profile of its own`},
	{Key: "security.nested", kind: kBool, Type: "boolean", Default: "false",
		Doc:      "allow user namespaces inside (running hutch, bwrap or podman within)",
		Example:  `nested = false`,
		Widening: "true"},
}

const limitWidening = "above your configuration's limit, or none when it sets one"

// extendsInfo documents the one key outside the tables.
var extendsInfo = KeyInfo{Key: "extends", Type: "array of profile names or paths", Default: "[]",
	Doc:     `profiles applied before this file, in order: built-in names ("npm"), your own (~/.config/hutch/profiles/NAME.toml), "builtin:NAME", or paths`,
	Example: `extends = ["npm"]`}

var schemaByKey = func() map[string]*KeyInfo {
	m := map[string]*KeyInfo{}
	for i := range schema {
		m[schema[i].Key] = &schema[i]
	}
	return m
}()

// sections are the tables of a profile, in order.
var sections = []string{"filesystem", "network", "env", "process", "limits", "security"}

// Keys documents every profile key: extends first, then the tables' keys in
// order. Flag-only keys are included, marked FlagOnly.
func Keys() []KeyInfo {
	return append([]KeyInfo{extendsInfo}, schema...)
}

// IsKey reports whether key is a profile key (or a flag-only key).
func IsKey(key string) bool { return schemaByKey[key] != nil }

// parseValue turns one TOML (or flag) value into the Go type of its key's
// Spec field. String conversions for paths happen elsewhere; this handles
// the scalar kinds.
func parseScalar(k kind, v any) (any, error) {
	switch k {
	case kString, kSeccomp, kDir, kRoot:
		s, ok := v.(string)
		if !ok {
			return nil, typeErr("a string", v)
		}
		return s, nil
	case kBool:
		switch b := v.(type) {
		case bool:
			return b, nil
		case string: // from a flag
			if p, err := strconv.ParseBool(b); err == nil {
				return p, nil
			}
			return nil, fmt.Errorf("%q is not true or false", b)
		}
		return nil, typeErr("true or false", v)
	case kDuration:
		s, ok := v.(string)
		if !ok {
			if n, isInt := v.(int64); isInt && n == 0 {
				return time.Duration(0), nil
			}
			return nil, typeErr(`a duration string such as "30m"`, v)
		}
		if s == "0" || s == "none" {
			return time.Duration(0), nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (write a number and a unit: \"90s\", \"30m\", \"1h30m\")", s)
		}
		if d < 0 {
			return nil, fmt.Errorf("%q is negative", s)
		}
		return d, nil
	case kSize:
		return parseSize(v)
	case kCount:
		switch n := v.(type) {
		case int64:
			if n < 0 {
				return nil, fmt.Errorf("%d is negative", n)
			}
			return n, nil
		case string:
			if n == "unlimited" {
				return int64(0), nil
			}
			i, err := strconv.ParseInt(n, 10, 64)
			if err != nil || i < 0 {
				return nil, fmt.Errorf("%q is not a whole number or \"unlimited\"", n)
			}
			return i, nil
		}
		return nil, typeErr(`a whole number or "unlimited"`, v)
	case kCPU:
		return parseCPU(v)
	}
	panic("parseScalar: not a scalar kind")
}

// parseSize reads bytes: an integer, or a number with a unit. IEC units
// (KiB, MiB, GiB, TiB) and docker's single letters (k, m, g, t) count in
// 1024s; SI units (kB, MB, GB, TB) in 1000s.
func parseSize(v any) (any, error) {
	switch n := v.(type) {
	case int64:
		if n < 0 {
			return nil, fmt.Errorf("%d is negative", n)
		}
		return n, nil
	case string:
		s := strings.TrimSpace(n)
		if s == "unlimited" || s == "0" {
			return int64(0), nil
		}
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		num, unit := s[:i], strings.TrimSpace(s[i:])
		f, err := strconv.ParseFloat(num, 64)
		mult, ok := sizeUnits[strings.ToLower(unit)]
		if err != nil || !ok || num == "" {
			return nil, fmt.Errorf("%q is not a size (write bytes, or a number and a unit: \"512MiB\", \"4GiB\", \"4G\")", n)
		}
		b := f * float64(mult)
		if b > math.MaxInt64 {
			return nil, fmt.Errorf("%q is too large", n)
		}
		return int64(b), nil
	}
	return nil, typeErr(`a size such as "4GiB"`, v)
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1000,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1000 * 1000,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1000 * 1000 * 1000,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1000 * 1000 * 1000 * 1000,
}

// parseCPU reads a share of CPUs: 1.5, 2, "1.5" or "150%".
func parseCPU(v any) (any, error) {
	switch n := v.(type) {
	case int64:
		if n < 0 {
			return nil, fmt.Errorf("%d is negative", n)
		}
		return float64(n), nil
	case float64:
		if n < 0 || math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, fmt.Errorf("%v is not a share of CPUs", n)
		}
		return n, nil
	case string:
		if n == "unlimited" {
			return float64(0), nil
		}
		s, pct := strings.CutSuffix(strings.TrimSpace(n), "%")
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%q is not a share of CPUs (write 1.5, or \"150%%\")", n)
		}
		if pct {
			f /= 100
		}
		return f, nil
	}
	return nil, typeErr(`a number of CPUs such as 1.5, or "150%"`, v)
}

// splitArgv splits a command line on blanks, honouring '…' and "…" quotes
// and backslash escapes, as a shell would (without expansions).
func splitArgv(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, quote, esc := false, byte(0), false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case esc:
			cur.WriteByte(c)
			esc = false
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' {
				esc = true
			} else {
				cur.WriteByte(c)
			}
		case c == '\\':
			esc, in = true, true
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 || esc {
		return nil, fmt.Errorf("%q has an unterminated quote or escape", s)
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// typeErr says what was expected and what the file has.
func typeErr(want string, got any) error {
	return fmt.Errorf("expected %s, not %s", want, tomlType(got))
}

// tomlType names a decoded TOML value's type as the TOML spec does.
func tomlType(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the float %v", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	}
	switch reflect.TypeOf(v).String() {
	case "toml.LocalDate", "toml.LocalTime", "toml.LocalDatetime":
		return "a date-time"
	}
	return fmt.Sprintf("a %T", v)
}

// formatSize prints bytes the way a profile would write them.
func formatSize(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// specField returns the Spec field tagged key, settable.
func specField(s *sandbox.Spec, key string) (reflect.Value, bool) {
	var found reflect.Value
	walkSpec(reflect.ValueOf(s).Elem(), func(k string, v reflect.Value) {
		if k == key {
			found = v
		}
	})
	return found, found.IsValid()
}

// walkSpec calls fn for every `key`-tagged field of a Spec value.
func walkSpec(v reflect.Value, fn func(key string, v reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if k := f.Tag.Get("key"); k != "" {
			fn(k, v.Field(i))
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			walkSpec(v.Field(i), fn)
		}
	}
}

type reflectV = reflect.Value

func reflectValue(s *sandbox.Spec) reflect.Value { return reflect.ValueOf(s).Elem() }

func setField(fv reflect.Value, v any) {
	if v == nil {
		fv.Set(reflect.Zero(fv.Type()))
		return
	}
	fv.Set(reflect.ValueOf(v))
}
