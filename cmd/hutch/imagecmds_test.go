package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hutch-sandbox/hutch/internal/testimage"
)

// Each script's registry, so that mkimage can push to it with its
// credentials and registry subcommands can reach it.
var (
	registriesMu sync.Mutex
	registries   = map[*testscript.TestScript]*testimage.Registry{}
)

func scriptRegistry(ts *testscript.TestScript) *testimage.Registry {
	registriesMu.Lock()
	defer registriesMu.Unlock()
	return registries[ts]
}

// registry starts an in-process registry for the script and sets
// $REGISTRY to its 127.0.0.1:PORT; it stops when the script ends.
//
//	registry                   start it (once per script)
//	registry tamper DIGEST     serve the blob DIGEST with one byte changed
//	registry tamper-last       the same for the top layer of the last mkimage
//	registry interrupt DIGEST N  cut the next GET of blob DIGEST after N bytes
//	registry auth USER PASS    demand basic auth ('' '' turns it off)
//	registry requests          print the request log, "METHOD PATH [Range: R]"
//	registry clear             empty the request log
func cmdRegistry(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! registry")
	}
	if len(args) == 0 {
		registriesMu.Lock()
		defer registriesMu.Unlock()
		if registries[ts] != nil {
			ts.Fatalf("registry: already running at %s", registries[ts].Addr)
		}
		reg, err := testimage.StartRegistry()
		ts.Check(err)
		registries[ts] = reg
		ts.Defer(func() {
			registriesMu.Lock()
			delete(registries, ts)
			registriesMu.Unlock()
			reg.Close()
		})
		ts.Setenv("REGISTRY", reg.Addr)
		// The same registry by name, as the "done when" writes it.
		_, port, _ := strings.Cut(reg.Addr, ":")
		ts.Setenv("REGISTRY_LOCALHOST", "localhost:"+port)
		return
	}
	reg := scriptRegistry(ts)
	if reg == nil {
		ts.Fatalf("registry %s: no registry; start one with `registry`", args[0])
	}
	usage := func(u string) {
		ts.Fatalf("usage: registry %s", u)
	}
	switch args[0] {
	case "tamper":
		if len(args) != 2 {
			usage("tamper DIGEST")
		}
		ts.Check(reg.Tamper(args[1]))
	case "tamper-last":
		if len(args) != 1 {
			usage("tamper-last")
		}
		var top string
		for n := 1; ts.Getenv(fmt.Sprintf("LAYER%d_DIGEST", n)) != ""; n++ {
			top = ts.Getenv(fmt.Sprintf("LAYER%d_DIGEST", n))
		}
		if top == "" {
			ts.Fatalf("registry tamper-last: no layer yet; run mkimage first")
		}
		ts.Check(reg.Tamper(top))
	case "interrupt":
		if len(args) != 3 {
			usage("interrupt DIGEST BYTES")
		}
		n, err := strconv.ParseInt(args[2], 10, 64)
		ts.Check(err)
		ts.Check(reg.Interrupt(args[1], n))
	case "auth":
		if len(args) != 3 {
			usage("auth USER PASS")
		}
		reg.SetAuth(args[1], args[2])
	case "requests":
		if len(args) != 1 {
			usage("requests")
		}
		w := ts.Stdout() // even when empty, so that stdout is this log
		for _, r := range reg.Requests() {
			fmt.Fprintln(w, r)
		}
	case "clear":
		if len(args) != 1 {
			usage("clear")
		}
		reg.ClearRequests()
	default:
		ts.Fatalf("registry: unknown subcommand %q (want tamper, tamper-last, interrupt, auth, requests or clear)", args[0])
	}
}

// repeated is a flag that may be given many times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

// jsonList is a flag holding a JSON array of strings, such as
// '["/bin/sh","-c"]'.
type jsonList struct{ v []string }

func (j *jsonList) String() string { b, _ := json.Marshal(j.v); return string(b) }
func (j *jsonList) Set(s string) error {
	if err := json.Unmarshal([]byte(s), &j.v); err != nil {
		return fmt.Errorf("want a JSON array of strings: %w", err)
	}
	return nil
}

// mkimage builds an image from layer files and pushes or writes it.
//
//	mkimage [flags] LAYERFILE...
//	mkimage -index REF IMAGE_REF...
//
// A LAYERFILE holds testimage.Layer spec lines; one named *.tar, *.tar.gz
// or *.tgz is used as the layer as it is. Outputs, each repeatable:
// -push REF, -docker-archive FILE[:TAG], -oci-layout DIR[:TAG],
// -oci-archive FILE[:TAG] (the tag follows the first ':'). Config:
// -env K=V (repeatable), -entrypoint JSON, -cmd JSON, -workdir DIR,
// -user USER, -platform OS/ARCH[/VARIANT], -docker-types.
//
// It prints "layer DIFFID" for each layer, then "config DIGEST" and
// "image DIGEST", and sets $IMAGE_DIGEST, $CONFIG_DIGEST and, for layer N
// (from 1), $LAYERN_DIFFID and $LAYERN_DIGEST (the compressed blob's, for
// `registry tamper`).
//
// With -index it reads the images at IMAGE_REF... back from the registry
// and pushes an index of them to REF, printing "index DIGEST" and setting
// $INDEX_DIGEST.
//
// Pushes to the script's registry use its credentials, if it has any.
// With ! it expects a failure and prints the error to stderr.
func cmdMkimage(ts *testscript.TestScript, neg bool, args []string) {
	ts.Stdout() // so that a failure leaves stdout empty, not the last command's
	err := mkimage(ts, args)
	if neg {
		if err == nil {
			ts.Fatalf("mkimage succeeded unexpectedly")
		}
		fmt.Fprintf(ts.Stderr(), "mkimage: %v\n", err)
		return
	}
	if err != nil {
		ts.Fatalf("mkimage: %v", err)
	}
}

func mkimage(ts *testscript.TestScript, args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		pushes, dockers, layouts, ociArchives, env repeated
		entrypoint, cmd                            jsonList
		cfg                                        testimage.Config
		platform, index                            string
	)
	fs.Var(&pushes, "push", "push to `REF`")
	fs.Var(&dockers, "docker-archive", "write a docker save archive `FILE[:TAG]`")
	fs.Var(&layouts, "oci-layout", "add to the OCI layout `DIR[:TAG]`")
	fs.Var(&ociArchives, "oci-archive", "write an OCI archive `FILE[:TAG]`")
	fs.Var(&env, "env", "add `K=V` to the config's Env")
	fs.Var(&entrypoint, "entrypoint", "the Entrypoint, a `JSON` array")
	fs.Var(&cmd, "cmd", "the Cmd, a `JSON` array")
	fs.StringVar(&cfg.WorkingDir, "workdir", "", "the WorkingDir")
	fs.StringVar(&cfg.User, "user", "", "the User")
	fs.StringVar(&platform, "platform", "", "`OS/ARCH[/VARIANT]`")
	fs.BoolVar(&cfg.DockerMediaTypes, "docker-types", false, "use Docker media types")
	fs.StringVar(&index, "index", "", "push an index of IMAGE_REF... to `REF`")
	if err := fs.Parse(args); err != nil {
		return err
	}

	var opts []remote.Option
	if reg := scriptRegistry(ts); reg != nil {
		opts = reg.Options()
	}

	if index != "" {
		if fs.NArg() == 0 {
			return errors.New("usage: mkimage -index REF IMAGE_REF...")
		}
		var imgs []v1.Image
		for _, ref := range fs.Args() {
			img, err := testimage.Pull(ref, opts...)
			if err != nil {
				return err
			}
			imgs = append(imgs, img)
		}
		idx, err := testimage.Index(imgs...)
		if err != nil {
			return err
		}
		if err := testimage.PushIndex(index, idx, opts...); err != nil {
			return err
		}
		d, err := idx.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(ts.Stdout(), "index %s\n", d)
		ts.Setenv("INDEX_DIGEST", d.String())
		return nil
	}

	if fs.NArg() == 0 {
		return errors.New("usage: mkimage [flags] LAYERFILE...")
	}
	cfg.Env, cfg.Entrypoint, cfg.Cmd = env, entrypoint.v, cmd.v
	if platform != "" {
		parts := strings.Split(platform, "/")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return fmt.Errorf("platform %q: want OS/ARCH[/VARIANT]", platform)
		}
		cfg.OS, cfg.Arch = parts[0], parts[1]
		if len(parts) == 3 {
			cfg.Variant = parts[2]
		}
	}

	var layers [][]byte
	for _, f := range fs.Args() {
		var b []byte
		switch {
		case strings.HasSuffix(f, ".tar"), strings.HasSuffix(f, ".tar.gz"), strings.HasSuffix(f, ".tgz"):
			var err error
			if b, err = os.ReadFile(ts.MkAbs(f)); err != nil {
				return err
			}
		default:
			var err error
			if b, err = testimage.Layer(ts.ReadFile(f)); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
		layers = append(layers, b)
	}
	img, err := testimage.Build(cfg, layers...)
	if err != nil {
		return err
	}

	for _, ref := range pushes {
		if err := testimage.Push(ref, img, opts...); err != nil {
			return err
		}
	}
	for _, out := range dockers {
		p, tag, _ := strings.Cut(out, ":")
		if err := testimage.WriteDockerArchive(ts.MkAbs(p), tag, img); err != nil {
			return err
		}
	}
	for _, out := range layouts {
		p, tag, _ := strings.Cut(out, ":")
		if err := testimage.WriteOCILayout(ts.MkAbs(p), tag, img); err != nil {
			return err
		}
	}
	for _, out := range ociArchives {
		p, tag, _ := strings.Cut(out, ":")
		if err := testimage.WriteOCIArchive(ts.MkAbs(p), tag, img); err != nil {
			return err
		}
	}

	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for i, l := range ls {
		diffID, err := l.DiffID()
		if err != nil {
			return err
		}
		d, err := l.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(ts.Stdout(), "layer %s\n", diffID)
		ts.Setenv(fmt.Sprintf("LAYER%d_DIFFID", i+1), diffID.String())
		ts.Setenv(fmt.Sprintf("LAYER%d_DIGEST", i+1), d.String())
	}
	// Clear what an earlier mkimage with more layers set.
	for n := len(ls) + 1; ts.Getenv(fmt.Sprintf("LAYER%d_DIFFID", n)) != ""; n++ {
		ts.Setenv(fmt.Sprintf("LAYER%d_DIFFID", n), "")
		ts.Setenv(fmt.Sprintf("LAYER%d_DIGEST", n), "")
	}
	cd, err := img.ConfigName()
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(ts.Stdout(), "config %s\nimage %s\n", cd, d)
	ts.Setenv("CONFIG_DIGEST", cd.String())
	ts.Setenv("IMAGE_DIGEST", d.String())
	return nil
}
