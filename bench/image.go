package main

import (
	"context"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// hutchBenchImage is the image hutch's image scenarios run on: the same
// minimal rootfs as podman's (true and sleep with their libraries), so
// that the two compare like for like.
const hutchBenchImage = "localhost/hutch-bench:latest"

// setupHutchImage imports the bench image into the bench user's store; it
// returns why the image scenarios cannot run, or "".
func (b *bench) setupHutchImage(ctx context.Context) string {
	if b.imageWhy != nil {
		return *b.imageWhy
	}
	why := b.importHutchImage(ctx)
	b.imageWhy = &why
	return why
}

func (b *bench) importHutchImage(ctx context.Context) string {
	rootfs := filepath.Join(b.o.work, "hutch-image-rootfs.tar")
	if err := writeRootfs(rootfs, "true", "sleep"); err != nil {
		return "building the image's rootfs: " + err.Error()
	}
	layer, err := tarball.LayerFromFile(rootfs)
	if err != nil {
		return "building the image: " + err.Error()
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "building the image: " + err.Error()
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "building the image: " + err.Error()
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{Cmd: []string{"/usr/bin/true"}, Env: []string{"PATH=/usr/bin"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "building the image: " + err.Error()
	}
	tag, err := name.NewTag(hutchBenchImage)
	if err != nil {
		return err.Error()
	}
	archive := filepath.Join(b.o.work, "hutch-image.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		return "writing the image: " + err.Error()
	}
	if _, err := b.run.run(ctx, b.cmd(b.hutch, "image", "import", "docker-archive:"+archive, hutchBenchImage), 2*time.Minute); err != nil {
		return "hutch image import: " + err.Error()
	}
	return ""
}
