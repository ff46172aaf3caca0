package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/image"
	"github.com/hutch-sandbox/hutch/sandbox"
	"github.com/hutch-sandbox/hutch/sandbox/session"
)

func imageCommand() *cli.Command {
	platform := &cli.StringFlag{Name: "platform", Usage: "the `OS/ARCH[/VARIANT]` to store (default: this machine's)"}
	return &cli.Command{
		Name:  "image",
		Usage: "pull, import, list and remove OCI images (docs/images.md)",
		Subcommands: []*cli.Command{
			{
				Name:      "pull",
				Usage:     "fetch an image from a registry into your store",
				UsageText: "hutch image pull [--platform OS/ARCH] REF",
				Flags:     []cli.Flag{platform, &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress, even on a terminal"}},
				Action: func(c *cli.Context) error {
					if c.Args().Len() != 1 {
						return usagef("give one image reference, as in: hutch image pull docker.io/library/alpine:3.20")
					}
					src, err := image.ParseSource(c.Args().First())
					if err != nil {
						return usageErr(err)
					}
					return storeImage(c, src, "")
				},
			},
			{
				Name:      "import",
				Usage:     "store an image from an OCI layout, an OCI archive or a docker save archive",
				UsageText: "hutch image import [--platform OS/ARCH] oci-layout:DIR[:TAG] | oci-archive:FILE[:TAG] | docker-archive:FILE[:NAME:TAG] [NAME]",
				Flags:     []cli.Flag{platform, &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress, even on a terminal"}},
				Action: func(c *cli.Context) error {
					if n := c.Args().Len(); n < 1 || n > 2 {
						return usagef("give a source and optionally a name, as in: hutch image import docker-archive:app.tar app:dev")
					}
					src, err := image.ParseSource(c.Args().First())
					if err != nil {
						return usageErr(err)
					}
					if src.Kind == image.KindRegistry && localPath(c.Args().First()) {
						if src, err = image.DetectLocal(c.Args().First()); err != nil {
							return usageErr(&image.Error{Err: err, Tip: "write the source as oci-layout:DIR, oci-archive:FILE or docker-archive:FILE"})
						}
					}
					if src.Kind == image.KindRegistry {
						return usageErr(&image.Error{Err: fmt.Errorf("%q is a registry reference, not a local source", c.Args().First()),
							Tip: "pull it with hutch image pull, or write the source as oci-layout:DIR, oci-archive:FILE or docker-archive:FILE"})
					}
					name := ""
					if c.Args().Len() == 2 {
						if name, err = image.NormalizeName(c.Args().Get(1)); err != nil {
							return usageErr(err)
						}
					}
					return storeImage(c, src, name)
				},
			},
			{
				Name:    "ls",
				Aliases: []string{"list"},
				Usage:   "list stored images",
				Flags:   []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action:  imageList,
			},
			{
				Name:      "inspect",
				Usage:     "show a stored image: where it came from, its layers and what it runs",
				UsageText: "hutch image inspect [--json] NAME|ID",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action:    imageInspect,
			},
			{
				Name:      "rm",
				Aliases:   []string{"remove"},
				Usage:     "remove stored images (and the layers no other image uses)",
				UsageText: "hutch image rm NAME|ID...",
				Action:    imageRemove,
			},
			{
				Name:   "prune",
				Usage:  "free layers no stored image uses, and leftovers of interrupted pulls",
				Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: imagePrune,
			},
		},
	}
}

// localPath says whether an import source written without a KIND: prefix
// names a file or directory: one that exists, or is spelled as a path.
func localPath(s string) bool {
	if _, err := os.Stat(s); err == nil {
		return true
	}
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || strings.HasSuffix(s, ".tar")
}

// userStore opens the caller's store for the image commands, with the id
// mapping sandboxes use by default.
func userStore() (*image.Store, error) {
	host, err := sandbox.ProbeHost()
	if err != nil {
		return nil, err
	}
	return openStore(host, sandbox.IDMapAuto)
}

// listHint points a "not found" at hutch image ls.
func listHint(err error) error {
	if errors.Is(err, image.ErrNotFound) {
		return &image.Error{Err: err, Tip: "hutch image ls lists the stored images"}
	}
	return err
}

// openStore opens the user's image store with the id mapping sandboxes use.
func openStore(host *sandbox.Host, idmap string) (*image.Store, error) {
	st, err := image.Open(image.DefaultDir(host.DataDir), sandbox.ImageMapping(host, idmap))
	if err != nil {
		return nil, err
	}
	// Sessions made on an image keep its layers until they are discarded.
	st.Pins = session.SessionLowers()
	return st, nil
}

func storeImage(c *cli.Context, src image.Source, name string) error {
	st, err := userStore()
	if err != nil {
		return err
	}
	opts := image.PullOptions{Name: name}
	if c.IsSet("platform") {
		p, err := image.ParsePlatform(c.String("platform"))
		if err != nil {
			return usageErr(err)
		}
		opts.Platform = &p
	}
	out := c.App.Writer
	tty := isTerminalWriter(out) && !c.Bool("quiet")
	var bar *progressBar
	if tty {
		bar = &progressBar{w: out, what: src.String()}
		opts.Progress = bar.update
	}
	// What was stored under the name before: pulling an image that is
	// already there again says nothing new about it.
	before := map[string]bool{}
	if ims, err := st.List(); err == nil {
		for _, im := range ims {
			before[im.Name+"@"+im.Digest] = true
		}
	}
	im, err := st.Pull(c.Context, src, opts)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return err
	}
	if tty {
		fmt.Fprintf(out, "stored %s (%s, %s, %s)\n", im.Name, shortID(im.ID), plural(len(im.Layers), "layer"), humanBytes(im.Size))
	}
	if !c.Bool("quiet") && !before[im.Name+"@"+im.Digest] {
		noteSkipped(c, im)
	}
	return nil
}

// noteSkipped tells what a rootless unpack could not keep.
func noteSkipped(c *cli.Context, im *image.Image) {
	if n := im.DevicesSkipped; n > 0 {
		fmt.Fprintf(c.App.ErrWriter, "hutch: note: %s holds %d device node%s, skipped: without privilege they cannot be made (a sandbox's /dev is hutch's own)\n",
			im.Name, n, map[bool]string{true: "", false: "s"}[n == 1])
	}
}

// openImage opens the image a spec runs on, pulling or importing it first
// as --pull says. The caller closes the root after the run.
// key is the spec's key that names it: filesystem.root, or a service's
// image (services.NAME.image), which the same rules open.
func openImage(c *cli.Context, host *sandbox.Host, spec sandbox.Spec, key, ref string) (*image.Root, error) {
	src, err := image.ParseSource(ref)
	if err != nil {
		return nil, usageErr(&sandbox.FieldError{Key: key, Msg: err.Error()})
	}
	stored := ref
	if src.Kind != image.KindRegistry {
		stored = src.String()
	}
	var platform *v1.Platform
	if c.IsSet("platform") {
		p, err := image.ParsePlatform(c.String("platform"))
		if err != nil {
			return nil, usageErr(err)
		}
		platform = &p
	}
	st, err := openStore(host, spec.Process.IDMap)
	if err != nil {
		return nil, err
	}
	policy := "missing"
	if c.IsSet("pull") {
		policy = c.String("pull")
	}
	var missing *image.MissingLayersError
	switch policy {
	case "missing", "never":
		r, err := st.Root(stored)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, image.ErrNotFound) && !errors.As(err, &missing) {
			return nil, err
		}
		if policy == "never" {
			return nil, &image.Error{Err: err, Tip: fmt.Sprintf("store it first: hutch image pull %s (or run with --pull missing)", ref)}
		}
		if missing != nil {
			// Stored for another id mapping: fetch it again from where it came.
			if s, perr := image.ParseSource(missing.Source); perr == nil {
				src = s
			}
		}
	case "always":
	default:
		return nil, usagef("--pull %s: give missing, always or never", policy)
	}
	// Stored under the name it was run with, so the next run finds it.
	opts := image.PullOptions{Name: stored, Platform: platform}
	if src.Kind == image.KindRegistry {
		opts.Name = image.DisplayName(src.Ref)
	}
	errw := c.App.ErrWriter
	var bar *progressBar
	if isTerminalWriter(errw) {
		bar = &progressBar{w: errw, what: src.String()}
		opts.Progress = bar.update
	}
	im, err := st.Pull(c.Context, src, opts)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return nil, err
	}
	noteSkipped(c, im)
	return st.Root(im.Name)
}

func imageList(c *cli.Context) error {
	st, err := userStore()
	if err != nil {
		return err
	}
	ims, err := st.List()
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if ims == nil {
			ims = []image.Image{}
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(ims)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tPLATFORM\tLAYERS\tSIZE\tSTORED")
	for _, im := range ims {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", im.Name, shortID(im.ID), im.Platform, len(im.Layers), humanBytes(im.Size), ago(im.Stored))
	}
	return tw.Flush()
}

func imageInspect(c *cli.Context) error {
	if c.Args().Len() != 1 {
		return usagef("name one image, as in: hutch image inspect alpine:3.20 (hutch image ls lists them)")
	}
	st, err := userStore()
	if err != nil {
		return err
	}
	r, err := st.Root(c.Args().First())
	if err != nil {
		return listHint(err)
	}
	defer r.Close()
	im, cfg := r.Image, r.Config
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			*image.Image
			Config any `json:"config"`
		}{im, cfg})
	}
	w := c.App.Writer
	fmt.Fprintf(w, "name:        %s\nid:          %s\ndigest:      %s\nsource:      %s\nplatform:    %s\n", im.Name, im.ID, im.Digest, im.Source, im.Platform)
	if !im.Created.IsZero() {
		fmt.Fprintf(w, "created:     %s\n", im.Created.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "stored:      %s (%s)\nsize:        %s in %s\n", im.Stored.Format(time.RFC3339), ago(im.Stored), humanBytes(im.Size), plural(len(im.Layers), "layer"))
	for _, l := range im.Layers {
		fmt.Fprintf(w, "  %s\n", l)
	}
	user := cfg.User
	if user == "" {
		user = "(root)"
	}
	fmt.Fprintf(w, "entrypoint:  %s\ncmd:         %s\nworkdir:     %s\nuser:        %s\nenv:\n", argvString(cfg.Entrypoint), argvString(cfg.Cmd), or(cfg.WorkingDir, "/"), user)
	for _, e := range cfg.Env {
		fmt.Fprintf(w, "  %s\n", e)
	}
	return nil
}

func argvString(a []string) string {
	if len(a) == 0 {
		return "(none)"
	}
	b, _ := json.Marshal(a)
	return string(b)
}

func or(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func imageRemove(c *cli.Context) error {
	if c.Args().Len() == 0 {
		return usagef("name the images to remove, as in: hutch image rm alpine:3.20 (hutch image ls lists them)")
	}
	st, err := userStore()
	if err != nil {
		return err
	}
	removed, err := st.Remove(c.Args().Slice())
	for _, n := range removed {
		fmt.Fprintf(c.App.Writer, "removed %s\n", n)
	}
	if errors.Is(err, image.ErrInUse) {
		fmt.Fprintf(c.App.ErrWriter, "hutch: note: %v\n", err)
		return nil
	}
	return listHint(err)
}

func imagePrune(c *cli.Context) error {
	st, err := userStore()
	if err != nil {
		return err
	}
	rep, err := st.Prune()
	if err != nil && !errors.Is(err, image.ErrInUse) {
		return err
	}
	if c.Bool("json") {
		return json.NewEncoder(c.App.Writer).Encode(rep)
	}
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "hutch: note: %v\n", err)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "freed %s, %s and %s (%s)\n", plural(rep.Layers, "layer"), plural(rep.Blobs, "blob"), plural(rep.Partial, "partial download"), humanBytes(rep.Bytes))
	if rep.Pinned > 0 {
		fmt.Fprintf(c.App.Writer, "kept %s that kept sessions were made on (hutch discard NAME frees them)\n", plural(rep.Pinned, "layer"))
	}
	return nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGT"[i-1])
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressBar draws one line, redrawn in place: bytes and layers.
type progressBar struct {
	w    io.Writer
	what string
	last time.Time
	p    image.Progress
	drew bool
}

func (b *progressBar) update(p image.Progress) {
	b.p = p
	if time.Since(b.last) < 100*time.Millisecond && p.LayersDone < p.Layers {
		return
	}
	b.last = time.Now()
	b.draw()
}

func (b *progressBar) draw() {
	p := b.p
	const width = 24
	frac := 0.0
	if p.Total > 0 {
		frac = float64(p.Done) / float64(p.Total)
	} else if p.Layers > 0 {
		frac = float64(p.LayersDone) / float64(p.Layers)
	}
	frac = min(max(frac, 0), 1)
	n := int(frac * width)
	bar := strings.Repeat("=", n) + strings.Repeat(" ", width-n)
	if n > 0 && n < width {
		bar = strings.Repeat("=", n-1) + ">" + strings.Repeat(" ", width-n)
	}
	fmt.Fprintf(b.w, "\r\x1b[K%s [%s] %s / %s  layers %d/%d", b.what, bar, humanBytes(p.Done), humanBytes(p.Total), p.LayersDone, p.Layers)
	b.drew = true
}

func (b *progressBar) finish() {
	if b.drew {
		b.draw()
		fmt.Fprintln(b.w)
	}
}
