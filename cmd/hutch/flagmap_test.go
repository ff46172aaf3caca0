package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hutch-sandbox/hutch/profiles"
	"github.com/hutch-sandbox/hutch/sandbox"
)

// invocationOnly are the flags of run and shell that are not profile keys:
// they belong to one invocation (tailscale's TestPrefFlagMapping keeps the
// same kind of list).
var invocationOnly = map[string]string{
	"tty":                "how this run uses the terminal",
	"preserve-fds":       "fds of this invocation",
	"profile":            "chooses the profile itself",
	"no-project-profile": "chooses the profile itself",
	"trust":              "approves the profile for this run",
	"dry-run":            "prints the plan instead of running",
	"json":               "output format of --dry-run",
	"debug-timing":       "diagnostics of this run",
	"report":             "where this run's proxy report goes",
	"keep":               "overlay flags: --session NAME and --project-mode overlay in one",
	"verbose":            "diagnostics of this run",
	"image":              "filesystem.root = \"image:REF\" in one flag",
	"env-file":           "env.set entries read from a file, for this run",
	"platform":           "which platform this run pulls",
	"pull":               "whether this run fetches the image",
	"entrypoint":         "replaces the image's entrypoint for this run, as docker run --entrypoint",
	"result":             "where this run's result document goes",
	"script":             "a file this run binds read-only and runs (a CI runner's {0})",
	"learn-overwrite":    "whether this run's learned profile may replace a file",
}

// TestFlagMapping walks sandbox.Spec's `key` tags: every key has exactly
// one flag and is a profile key (or a documented flag-only one), every
// keyed flag names a real key, every other flag of run and shell is
// invocation-only, and each flag, given on the command line, lands in its
// key (profile show reports it as set by that flag).
func TestFlagMapping(t *testing.T) {
	keys := map[string]reflect.Type{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if k := f.Tag.Get("key"); k != "" {
				keys[k] = f.Type
			} else if f.Type.Kind() == reflect.Struct {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeOf(sandbox.Spec{}))

	byKey := map[string]string{}
	keyed := map[string]bool{}
	for _, f := range keyedFlags() {
		name := f.flag.Names()[0]
		if _, ok := keys[f.key]; !ok {
			t.Errorf("--%s maps to %q, which is not a key of sandbox.Spec", name, f.key)
		}
		if prev, dup := byKey[f.key]; dup {
			t.Errorf("%s has two flags: --%s and --%s", f.key, prev, name)
		}
		byKey[f.key], keyed[name] = name, true
	}
	for key := range keys {
		if byKey[key] == "" {
			t.Errorf("sandbox.Spec key %s has no flag: add it to keyedFlags", key)
		}
		if !profiles.IsKey(key) {
			t.Errorf("sandbox.Spec key %s is not a profile key", key)
		}
	}
	for _, k := range profiles.Keys() {
		if _, ok := keys[k.Key]; !ok && k.Key != "extends" {
			t.Errorf("profile key %s is not a key of sandbox.Spec", k.Key)
		}
		if k.FlagOnly && k.Key != "filesystem.project_dir" {
			t.Errorf("%s is flag-only: only the project directory may be (a profile's project is where it lives)", k.Key)
		}
	}
	for _, cmd := range []string{"run", "shell"} {
		c := runCommand()
		if cmd == "shell" {
			c = shellCommand()
		}
		for _, f := range c.Flags {
			name := f.Names()[0]
			if !keyed[name] && invocationOnly[name] == "" {
				t.Errorf("hutch %s --%s is neither a profile key nor invocation-only", cmd, name)
			}
		}
	}

	// Each flag reaches its key.
	home := t.TempDir()
	proj := filepath.Join(home, "proj")
	os.MkdirAll(filepath.Join(proj, "data"), 0o755)
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Chdir(proj)
	samples := map[string][]string{
		"filesystem.root": {"host"}, "filesystem.project_dir": {proj}, "filesystem.project": {"ro"},
		"filesystem.overlay": {"fuse"}, "filesystem.rw": {"data"}, "filesystem.ro": {"/usr"}, "filesystem.bind": {"data:/data:ro"},
		"filesystem.hide": {"x"}, "filesystem.tmpfs": {"/var/tmp/x"}, "filesystem.home": {"ro"},
		"filesystem.git": {"rw"}, "filesystem.session": {"s"}, "filesystem.sockets": {"/tmp/s.sock"}, "network.mode": {"host"}, "network.allow": {"example.com"},
		"network.ports": {"8080:80"}, "network.host_loopback": nil, "network.learn": {"learned.toml"}, "env.keep": {"FOO_*"}, "env.set": {"A=1"},
		"process.user": {"root"}, "process.idmap": {"single"}, "process.hostname": {"box"},
		"process.timeout": {"1m"}, "process.shell": {"zsh -l"}, "process.workdir": {"/src"}, "process.dotfiles": {".vimrc"}, "limits.memory": {"1GiB"},
		"limits.pids": {"100"}, "limits.cpu": {"1.5"}, "limits.nofile": {"64"}, "limits.nproc": {"64"},
		"limits.fsize": {"1MiB"}, "limits.required": nil, "security.seccomp": {"off"}, "security.nested": nil,
		"process.kill_grace": {"3s"}, "limits.tmpfs": {"1GiB"}, "limits.inotify_instances": {"16"},
		"limits.inotify_watches": {"1000"}, "limits.quiet": nil,
	}
	for key, name := range byKey {
		sample, ok := samples[key]
		if !ok {
			t.Errorf("no sample value for --%s (%s)", name, key)
			continue
		}
		var out, errOut bytes.Buffer
		args := append([]string{"hutch", "profile", "show", "--json", "--" + name}, sample...)
		if code := run(context.Background(), args, nil, &out, &errOut); code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, errOut.String())
			continue
		}
		var doc struct {
			Settings []struct {
				Key    string
				Origin struct{ Kind, Name string }
				Items  []struct{ Origin struct{ Kind, Name string } }
			}
		}
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range doc.Settings {
			if s.Key != key {
				continue
			}
			o := s.Origin
			if len(s.Items) > 0 {
				o = s.Items[len(s.Items)-1].Origin
			}
			found = o.Kind == "flag" && o.Name == "--"+name
		}
		if !found {
			t.Errorf("--%s does not set %s", name, key)
		}
	}
}
