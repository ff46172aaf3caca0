package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hutch-sandbox/hutch/profiles"
	"github.com/hutch-sandbox/hutch/sandbox"
)

// keyedFlag is a flag of hutch run and hutch shell that stands for a
// profile key: the flag overrides the profiles (lists and env.set are added
// to). TestFlagMapping checks that every key of sandbox.Spec has exactly one
// and that each lands in its field.
type keyedFlag struct {
	key  string
	flag cli.Flag
}

// keyedFlags lists them in the order of the profile's keys. Names follow
// podman and docker where they have one (--network, -p/--publish,
// -m/--memory, --cpus, --pids-limit, --hostname, -e/--env, -u/--user).
func keyedFlags() []keyedFlag {
	str := func(name, usage string, aliases ...string) cli.Flag {
		return &cli.StringFlag{Name: name, Usage: usage, Aliases: aliases}
	}
	list := func(name, usage string, aliases ...string) cli.Flag {
		return &cli.StringSliceFlag{Name: name, Usage: usage, Aliases: aliases}
	}
	boolean := func(name, usage string) cli.Flag { return &cli.BoolFlag{Name: name, Usage: usage} }
	flags := []keyedFlag{
		{"filesystem.root", str("root", "what / is: `host` (the host's system, read-only) or image:REF")},
		{"filesystem.project_dir", str("project", "the project `DIR` (default: where hutch.toml is, else the working directory)")},
		{"filesystem.project", str("project-mode", "bind the project `rw`, ro or overlay")},
		{"filesystem.overlay", str("overlay", "overlay `DRIVER`: auto, kernel or fuse")},
		{"filesystem.rw", list("rw", "bind host `PATH` writable at the same path (repeatable)")},
		{"filesystem.ro", list("ro", "bind host `PATH` read-only at the same path (repeatable)")},
		{"filesystem.bind", list("bind", "bind host path SOURCE at TARGET inside, `SOURCE:TARGET[:ro|rw]` (read-only by default; repeatable)")},
		{"filesystem.hide", list("hide", "mask `PATH` with an empty directory or file (repeatable)")},
		{"filesystem.tmpfs", list("tmpfs", "mount an empty writable tmpfs at `PATH` (repeatable)")},
		{"filesystem.sockets", list("socket", "let the command connect to the host's unix socket at `PATH` inside a bind (repeatable)")},
		{"filesystem.home", str("home", "your home inside: `tmpfs` (empty), ro or overlay")},
		{"filesystem.git", str("git", "`protect` git's config and hooks (read-only) or leave them rw")},
		{"filesystem.session", str("session", "keep the overlay's changes in session `NAME`")},
		{"network.mode", str("network", "`MODE`: none (only lo), proxy (allowlisted HTTP(S)), slirp4netns or pasta (NAT), host", "net")},
		{"network.allow", list("allow", "with --network proxy: allow `HOST` (*.domain, host:port; repeatable)")},
		{"network.ports", list("publish", "publish `PORTS` ([HOSTIP:]HOSTPORT:PORT[/tcp|udp]) from the host into the sandbox (repeatable)", "p")},
		{"network.host_loopback", boolean("host-loopback", "let the sandbox reach the host's 127.0.0.1")},
		{"network.learn", str("learn", "learn mode: allow every host for this run, recorded, and write the [network] section that allows them to `FILE`")},
		{"env.keep", list("keep-env", "pass host variables matching `PATTERN` (glob, repeatable)")},
		{"env.set", list("env", "set `KEY=VALUE` inside; KEY alone passes your value (repeatable)", "e")},
		{"process.user", str("user", "`self` (your own uid inside) or root (uid 0 inside)", "u")},
		{"process.idmap", str("idmap", "`auto` (your /etc/subuid range when available) or single (one id)")},
		{"process.hostname", str("hostname", "host `NAME` inside")},
		{"process.timeout", str("timeout", "kill the sandbox after `DURATION` (30m, 1h30m; exit status 124)")},
		{"process.kill_grace", str("kill-grace", "after a forwarded SIGINT/SIGTERM/SIGHUP or the timeout, kill the sandbox after `DURATION` (default 10s; exit status 137)")},
		{"process.shell", str("shell", "the `COMMAND` hutch shell runs (default: your login shell)")},
		{"process.dotfiles", list("dotfile", "bind `~/FILE` of your home read-only into the empty home (repeatable; hutch shell binds your rc files by default)")},
		{"process.workdir", str("workdir", "start in `DIR` inside; with an image, the project is bound there", "w")},
		{"limits.memory", str("memory", "limit memory to `SIZE` (512MiB, 4GiB)", "m")},
		{"limits.pids", str("pids-limit", "limit processes and threads to `N`", "pids")},
		{"limits.cpu", str("cpus", "limit CPU to `N` CPUs (1.5, or 150%)")},
		{"limits.nofile", str("nofile", "limit open files to `N`")},
		{"limits.nproc", str("nproc", "limit the processes of one uid inside to `N` (RLIMIT_NPROC)")},
		{"limits.tmpfs", str("tmpfs-size", "the one `SIZE` that /tmp, /var/tmp, home and --tmpfs paths share")},
		{"limits.inotify_instances", str("inotify-instances", "limit inotify instances in the sandbox to `N`")},
		{"limits.inotify_watches", str("inotify-watches", "limit inotify watches in the sandbox to `N`")},
		{"limits.fsize", str("fsize", "limit the size of a written file to `SIZE`")},
		{"limits.required", boolean("limits-required", "fail when a limit cannot be enforced, instead of warning")},
		{"limits.quiet", boolean("limits-quiet", "do not warn that memory and cpu limits are not enforced (no delegated cgroup)")},
		{"security.seccomp", str("seccomp", "system call filter: `default`, off, or the path of an OCI seccomp profile")},
		{"security.nested", boolean("nested", "allow user namespaces inside (hutch, bwrap or podman within)")},
	}
	// Help groups the flags by the profile table they stand for.
	for _, f := range flags {
		cat := "profile: [" + f.key[:strings.Index(f.key, ".")] + "]"
		switch x := f.flag.(type) {
		case *cli.StringFlag:
			x.Category = cat
		case *cli.StringSliceFlag:
			x.Category = cat
		case *cli.BoolFlag:
			x.Category = cat
		}
	}
	return flags
}

// invocationFlags belong to one run, not to a profile.
func invocationFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "profile", Usage: "use profile `NAME|PATH` instead of the project's hutch.toml"},
		&cli.BoolFlag{Name: "no-project-profile", Usage: "ignore the project's hutch.toml"},
		&cli.BoolFlag{Name: "trust", EnvVars: []string{"HUTCH_TRUST"}, Usage: "approve the project's profile for this run, even if it widens your configuration (for CI)"},
		&cli.StringFlag{Name: "tty", Value: "auto", Usage: "`auto` (a pty when stdin is a terminal), always or never"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass `N` extra fds (3 .. 3+N-1) to the command"},
		&cli.StringFlag{Name: "image", Usage: "run on the OCI image `REF` (same as --root image:REF); pulled or imported when not stored"},
		&cli.StringFlag{Name: "platform", Usage: "with --image: the `OS/ARCH` to pull (default: this machine's)"},
		&cli.StringFlag{Name: "pull", Value: "missing", Usage: "with --image: `missing` (pull when not stored), always or never"},
		&cli.StringFlag{Name: "entrypoint", Usage: "with --image: replace the image's entrypoint with `CMD` (\"\" clears it)"},
		&cli.BoolFlag{Name: "learn-overwrite", Usage: "with --learn: replace FILE when it exists"},
		&cli.StringSliceFlag{Name: "env-file", Usage: "set the variables in `FILE` (docker's format: KEY=VALUE lines; KEY alone passes yours); -e wins (repeatable)"},
	}
}

// profileFlags are the flags of the commands that load a profile without
// running it (profile show): the keyed ones and the profile choice.
func profileFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range keyedFlags() {
		out = append(out, f.flag)
	}
	for _, f := range invocationFlags() {
		switch withNames(f).Names()[0] {
		case "profile", "no-project-profile", "trust":
			out = append(out, f)
		}
	}
	return out
}

// loadProfile loads the profiles that apply and lays the keyed flags over
// them. Profile errors are usage errors: exit status 2, nothing launched.
func loadProfile(c *cli.Context) (*profiles.Profile, error) {
	opts := profiles.Options{
		Profile:   c.String("profile"),
		NoProject: c.Bool("no-project-profile"),
		Trust:     c.Bool("trust"),
	}
	opts.ProjectDir = c.String("project")
	p, err := profiles.Load(opts)
	if err != nil {
		return nil, usageErr(err)
	}
	// Env files first, so that -e KEY=VALUE overrides them, as in docker.
	for _, file := range c.StringSlice("env-file") {
		kvs, err := profiles.ReadEnvFile(file, os.LookupEnv)
		if err == nil && len(kvs) > 0 {
			err = p.SetFlag("--env-file", "env.set", kvs...)
		}
		if err != nil {
			return nil, usageErr(err)
		}
	}
	// --script FILE: the file a CI runner's shell template runs, read-only.
	if script, err := scriptArg(c); err != nil || script != "" {
		if err == nil {
			err = p.SetFlag("--script", "filesystem.ro", script)
		}
		if err != nil {
			return nil, usageErr(err)
		}
	}
	// The flags given, looked up once: c.IsSet walks every flag (and runs
	// a regexp over each name) for one that is not set, which for all the
	// keyed flags cost more than loading the profiles.
	set := map[string]bool{}
	for _, n := range c.FlagNames() {
		set[n] = true
	}
	for _, f := range keyedFlags() {
		names := withNames(f.flag).Names()
		name := names[0]
		if !slices.ContainsFunc(names, func(n string) bool { return set[n] }) {
			continue
		}
		var values []string
		switch f.flag.(type) {
		case *cli.StringSliceFlag:
			values = c.StringSlice(name)
		case *cli.BoolFlag:
			values = []string{strconv.FormatBool(c.Bool(name))}
		default:
			values = []string{c.String(name)}
		}
		if f.key == "env.set" {
			for i, kv := range values {
				if !strings.Contains(kv, "=") {
					// KEY alone passes the host's value, as docker run -e KEY does.
					v, ok := os.LookupEnv(kv)
					if !ok {
						return nil, usagef("--env %s: not set in your environment; use --env %s=VALUE", kv, kv)
					}
					values[i] = kv + "=" + v
				}
			}
		}
		if err := p.SetFlag("--"+name, f.key, values...); err != nil {
			return nil, usageErr(err)
		}
	}
	// overlay flags: --keep NAME is --session NAME --project-mode overlay.
	if err := applyOverlayFlags(c, p); err != nil {
		return nil, err
	}
	return p, nil
}

// specFromFlags is the one way from the command line to a Spec:
// profiles.Load → flags → Profile.Spec.
func specFromFlags(c *cli.Context, args []string) (sandbox.Spec, error) {
	p, err := loadProfile(c)
	if err != nil {
		return sandbox.Spec{}, err
	}
	inv := sandbox.Spec{Args: args, TTY: c.String("tty"), PreserveFDs: c.Int("preserve-fds")}
	if c.IsSet("entrypoint") {
		v := c.String("entrypoint")
		ep := strings.Fields(v)
		if strings.HasPrefix(strings.TrimSpace(v), "[") {
			if err := json.Unmarshal([]byte(v), &ep); err != nil {
				return sandbox.Spec{}, usagef("--entrypoint %s: not a JSON array of strings: %v", v, err)
			}
		}
		inv.Entrypoint = &ep
	}
	spec, err := p.Spec(inv)
	if err != nil {
		return spec, usageErr(err)
	}
	for _, n := range p.Notes() {
		fmt.Fprintf(c.App.ErrWriter, "hutch: note: %s\n", n)
	}
	return spec, nil
}
