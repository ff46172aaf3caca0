package wire

// LayersInit is what hutch-init needs to mount a plan's overlays; the
// supervisor prepares the directories and resolves the driver.
type LayersInit struct {
	// Dir holds one directory per layer, each with upper/ and work/.
	Dir string `json:"dir"`
	// Driver is "kernel" or "fuse", never "auto".
	Driver        string `json:"driver"`
	FuseOverlayfs string `json:"fuse_overlayfs,omitempty"`
}
