package sandbox

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hutch-sandbox/hutch/image"
	"github.com/hutch-sandbox/hutch/sandbox/model"
	"github.com/hutch-sandbox/hutch/userns"
)

// Image roots (filesystem.root = "image:REF"). The image's layers, stored
// once by the image package, are the lower directories of an overlay at /
// whose upper layer belongs to the run (or its session); nothing of the
// host's root is visible, only what the plan binds: the project, the
// user's binds, /dev, /proc, /sys and generated /etc files.
//
// Ids: layers are unpacked with the image's uid N owned by whatever id the
// sandbox's map gives N, so an image sandbox always uses root's layout:
// the image's root is you, the image's other users are your subordinate
// ids. The command runs as the image's user unless process.user says
// otherwise: "root" is uid 0 with root's capabilities; "self" is also the
// image's uid 0 (which is you outside) without them, so that files it
// writes in the project are yours.

// ImageRoot is a stored image as NewPlan needs it.
type ImageRoot struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	// Layers are the unpacked layer directories, top first.
	Layers     []string `json:"layers"`
	Env        []string `json:"env,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	// User is the config's User, resolved in the image's /etc/passwd.
	User     image.User `json:"user"`
	UserSpec string     `json:"user_spec,omitempty"`
}

// ImageRef is the image a spec's root names, or "".
func ImageRef(spec Spec) string {
	ref, _ := strings.CutPrefix(spec.Filesystem.Root, "image:")
	if ref == spec.Filesystem.Root {
		return ""
	}
	return strings.TrimSpace(ref)
}

// ImageMapping is the id mapping of image sandboxes, and so of the layers
// they run on: root's layout over the subordinate range when there is one
// (and process.idmap allows it), else the user alone as the image's root.
func ImageMapping(host *Host, idmap string) image.Mapping {
	if idmap == IDMapSingle || host.NewUIDMap == "" || host.NewGIDMap == "" || len(host.SubUIDs) == 0 || len(host.SubGIDs) == 0 {
		return image.Mapping{}
	}
	um, err1 := userns.Full(0, uint32(host.UID), host.SubUIDs)
	gm, err2 := userns.Full(0, uint32(host.GID), host.SubGIDs)
	if err1 != nil || err2 != nil {
		return image.Mapping{}
	}
	return image.Mapping{UIDMap: um, GIDMap: gm, NewUIDMap: host.NewUIDMap, NewGIDMap: host.NewGIDMap}
}

// NewImageRoot reads what a plan needs from an opened image. user is the
// spec's process.user: a name or id in it replaces the config's User.
func NewImageRoot(r *image.Root, user string) (*ImageRoot, error) {
	spec := r.Config.User
	if user != "" && user != UserSelf && user != UserRoot {
		spec = user
	}
	u, err := r.LookupUser(spec)
	if err != nil {
		return nil, withHint(fmt.Errorf("image %s: %w", r.Image.Name, err), "run it as root instead: --user root")
	}
	wd := r.Config.WorkingDir
	if wd != "" {
		// docker reads a relative WorkingDir from /.
		wd = filepath.Clean("/" + wd)
	}
	return &ImageRoot{
		Name: r.Image.Name, ID: r.Image.ID, Layers: r.Layers,
		Env: r.Config.Env, Entrypoint: r.Config.Entrypoint, Cmd: r.Config.Cmd,
		WorkingDir: wd, User: u, UserSpec: spec,
	}, nil
}

// LayerImage names the upper layer of an image root.
const LayerImage = "image"

// PlanImage is the image part of a plan (sandbox/model).
type PlanImage = model.PlanImage

// imageIdentity picks the command's ids and maps for an image root.
func imageIdentity(spec Spec, host *Host, p *Plan) {
	img := host.Image
	m := ImageMapping(host, spec.Process.IDMap)
	if m.Mapped() {
		p.UIDMap, p.GIDMap, p.MapHelpers = m.UIDMap, m.GIDMap, true
		p.NewUIDMap, p.NewGIDMap = m.NewUIDMap, m.NewGIDMap
	} else {
		p.UIDMap = userns.Single(0, uint32(host.UID))
		p.GIDMap = userns.Single(0, uint32(host.GID))
	}
	switch spec.Process.User {
	case UserRoot:
		p.UID, p.GID = 0, 0
		p.Caps = append([]string(nil), defaultCaps...)
	case UserSelf:
		p.UID, p.GID = 0, 0
	default:
		p.UID, p.GID = img.User.UID, img.User.GID
		for _, g := range img.User.Groups {
			if userns.Contains(p.GIDMap, g) {
				p.Groups = append(p.Groups, g)
			}
		}
		if p.UID == 0 {
			p.Caps = append([]string(nil), defaultCaps...)
		}
	}
	if !userns.Contains(p.UIDMap, p.UID) || !userns.Contains(p.GIDMap, p.GID) {
		p.Notes = append(p.Notes, fmt.Sprintf("the image's user %s (%d:%d) has no id here (you have no subordinate ids, or process.idmap is \"single\"), so the command runs as the image's root", img.UserSpec, p.UID, p.GID))
		p.UID, p.GID, p.Groups = 0, 0, nil
	}
}

// imageEnv is the environment of an image's command: the image's own,
// then the host's terminal and locale settings and env.keep, then env.set.
func imageEnv(spec Spec, host *Host, p *Plan) map[string]string {
	env := map[string]string{}
	for _, kv := range host.Image.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if env["PATH"] == "" {
		env["PATH"] = DefaultPath
	}
	home := host.Image.User.Home
	if p.UID != host.Image.User.UID || home == "" {
		home = "/"
		if p.UID == 0 {
			home = "/root"
		}
	}
	if env["HOME"] == "" {
		env["HOME"] = home
	}
	name := host.Image.User.Name
	if p.UID == 0 {
		name = "root"
	}
	if name != "" {
		env["USER"], env["LOGNAME"] = name, name
	}
	return env
}

// imageArgs is the command line of an image sandbox: docker's rules, the
// entrypoint followed by the given arguments or else the image's Cmd.
func imageArgs(spec Spec, img *ImageRoot) []string {
	if spec.Shell {
		if len(spec.Process.Shell) > 0 {
			return spec.Process.Shell
		}
		// The user's login shell in the image, unless it is one that
		// refuses logins.
		if sh := img.User.Shell; sh != "" && !strings.HasSuffix(sh, "/nologin") && !strings.HasSuffix(sh, "/false") {
			return []string{sh}
		}
		return []string{"/bin/sh"}
	}
	ep := img.Entrypoint
	if spec.Entrypoint != nil {
		ep = *spec.Entrypoint
	}
	args := spec.Args
	if len(args) == 0 {
		args = img.Cmd
		if spec.Entrypoint != nil {
			// docker drops the image's Cmd when --entrypoint is given.
			args = nil
		}
	}
	out := append(append([]string(nil), ep...), args...)
	if len(out) == 0 {
		return []string{"/bin/sh"}
	}
	return out
}
