package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/oci"
	"github.com/hutch-sandbox/hutch/sandbox/supervise"
)

// ociCommand is hutch oci: runc's command line as engines call it
// (docs/oci.md). Its options are runc's, read by ociArgs rather than
// urfave/cli, so that they may come before the subcommand as runc's
// global options do, and so that an unknown one is an error whatever its
// place.
func ociCommand() *cli.Command {
	return &cli.Command{
		Name:            "oci",
		Usage:           "run OCI bundles as runc does, for engines (Slurm's oci.conf)",
		UsageText:       ociUsage,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			return runOCI(c, c.Args().Slice())
		},
	}
}

const ociUsage = `hutch oci [--root DIR] [--profile SITE.toml] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup] [--rootless true|auto] COMMAND
   create --bundle DIR [--pid-file FILE] ID   build the container; its command waits
   start ID                                   start a created container's command
   run --bundle DIR [--pid-file FILE] ID      create, start and wait; exit with the command's status
   state ID                                   print the OCI state as JSON
   kill [--all] ID [SIGNAL]                   signal the container (default SIGTERM)
   delete [--force] ID                        remove a stopped container (--force: kill it first)`

// ociOpts are the options hutch oci read.
type ociOpts struct {
	root, log, logFormat, profile string
	debug                         bool
	bundle, pidFile               string
	force                         bool
	args                          []string
}

// ociGlobal and ociLocal name each option and whether it takes a value.
var ociGlobal = map[string]bool{"root": true, "log": true, "log-format": true, "debug": false, "systemd-cgroup": false, "profile": true, "rootless": true}

var ociLocal = map[string]map[string]bool{
	"create": {"bundle": true, "b": true, "pid-file": true, "console-socket": true},
	"run":    {"bundle": true, "b": true, "pid-file": true, "console-socket": true},
	"start":  {},
	"state":  {},
	"kill":   {"all": false, "a": false},
	"delete": {"force": false, "f": false},
}

// parseOCI reads argv: global options, the command, its options and
// arguments.
func parseOCI(argv []string) (cmd string, o ociOpts, sets map[string]string, err error) {
	sets = map[string]string{}
	i := 0
	take := func(known map[string]bool, where string) error {
		a := argv[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		wantsVal, ok := known[name]
		if !ok {
			return usagef("hutch oci%s: unknown option %s (see 'hutch oci --help')", where, a)
		}
		if wantsVal && !hasVal {
			if i+1 >= len(argv) {
				return usagef("hutch oci%s: %s needs a value", where, a)
			}
			i++
			val = argv[i]
		} else if !wantsVal && hasVal {
			if _, err := strconv.ParseBool(val); err != nil {
				return usagef("hutch oci%s: %s takes no value", where, a)
			}
		} else if !wantsVal {
			val = "true"
		}
		sets[name] = val
		i++
		return nil
	}
	for i < len(argv) && strings.HasPrefix(argv[i], "-") && argv[i] != "-" {
		if err := take(ociGlobal, ""); err != nil {
			return "", o, nil, err
		}
	}
	if i >= len(argv) {
		return "", o, nil, usagef("hutch oci: no command given (create, start, run, state, kill, delete)")
	}
	cmd = argv[i]
	local, ok := ociLocal[cmd]
	if !ok {
		return "", o, nil, usagef("hutch oci: unknown command %q (create, start, run, state, kill, delete)", cmd)
	}
	i++
	for i < len(argv) {
		if argv[i] == "--" {
			o.args = append(o.args, argv[i+1:]...)
			break
		}
		if strings.HasPrefix(argv[i], "-") && len(argv[i]) > 1 {
			if err := take(local, " "+cmd); err != nil {
				return "", o, nil, err
			}
			continue
		}
		o.args = append(o.args, argv[i])
		i++
	}
	o.root, o.log, o.logFormat, o.profile = sets["root"], sets["log"], sets["log-format"], sets["profile"]
	o.debug = sets["debug"] == "true"
	o.bundle = sets["bundle"] + sets["b"]
	o.pidFile = sets["pid-file"]
	o.force = sets["force"] == "true" || sets["f"] == "true"
	if o.logFormat != "" && o.logFormat != "text" && o.logFormat != "json" {
		return "", o, nil, usagef("hutch oci: --log-format %q is not text or json", o.logFormat)
	}
	want := map[string][2]int{"create": {1, 1}, "run": {1, 1}, "start": {1, 1}, "state": {1, 1}, "kill": {1, 2}, "delete": {1, 1}}[cmd]
	if len(o.args) < want[0] || len(o.args) > want[1] {
		return "", o, nil, usagef("hutch oci %s: expected the container id%s, got %d arguments", cmd, map[bool]string{true: " and a signal"}[cmd == "kill"], len(o.args))
	}
	return cmd, o, sets, nil
}

func runOCI(c *cli.Context, argv []string) error {
	if len(argv) == 1 && (argv[0] == "--help" || argv[0] == "-h" || argv[0] == "help") {
		fmt.Fprintln(c.App.Writer, ociUsage)
		return nil
	}
	cmd, o, sets, err := parseOCI(argv)
	if err != nil {
		return err
	}
	log, closeLog := oci.OpenLog(o.log, o.logFormat, o.debug, c.App.ErrWriter)
	defer closeLog()
	if _, ok := sets["systemd-cgroup"]; ok {
		log("warning", "--systemd-cgroup: hutch makes its own cgroup, a child of yours, when limits need one; the option changes nothing")
	}
	if v, ok := sets["rootless"]; ok && v != "true" && v != "auto" {
		return usagef("hutch oci: --rootless %s: hutch is always rootless (true and auto are accepted)", v)
	}
	if _, ok := sets["console-socket"]; ok {
		return usagef("hutch oci %s: --console-socket is not supported: hutch relays a terminal itself in hutch oci run; set process.terminal to false for create", cmd)
	}
	rt := &oci.Runtime{Root: o.root, Profile: o.profile, Log: log,
		Stdio: supervise.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}}
	err = doOCI(c, rt, cmd, o, log)
	if err != nil && o.log != "" {
		// Engines read the error back from the log; stderr has it too.
		log("error", err.Error())
	}
	return err
}

func doOCI(c *cli.Context, rt *oci.Runtime, cmd string, o ociOpts, log func(string, string)) error {
	id := o.args[0]
	if err := oci.CheckID(id); err != nil {
		return usageErr(err)
	}
	bundle := o.bundle
	if bundle == "" {
		bundle = "."
	}
	switch cmd {
	case "create":
		return rt.Create(id, bundle, o.pidFile, o.log, o.logFormat, o.debug)
	case "run":
		code, err := rt.Run(c.Context, id, bundle, o.pidFile)
		if err != nil {
			return err
		}
		if code != 0 {
			return &exitStatus{code: code}
		}
		return nil
	case "start":
		return rt.Start(id)
	case "state":
		st, err := rt.State(id)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	case "kill":
		sig := unix.SIGTERM
		if len(o.args) > 1 {
			s, err := parseSignal(o.args[1])
			if err != nil {
				return usageErr(err)
			}
			sig = s
		}
		return rt.Kill(id, sig)
	case "delete":
		return rt.Delete(id, o.force)
	}
	return usagef("hutch oci: unknown command %q", cmd)
}

// parseSignal reads a signal as runc does: a number, or a name with or
// without SIG.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %s is out of range 1..64", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
