package profiles

import "strings"

// What a project profile's paths expose or replace, in plain words, for
// the trust prompt (widenings). Destinations are clean absolute paths by
// the time they get here (expand cleans them: "/work/../../etc" is /etc).

// systemDirs are the host's system trees. Replacing one inside the
// sandbox (a tmpfs over it, or a mask) changes what every program there
// runs or reads: its binaries, libraries, configuration, devices, or the
// /proc and /sys that hutch masks parts of.
var systemDirs = map[string]string{
	"/bin": "programs", "/sbin": "programs", "/usr": "programs and libraries",
	"/lib": "libraries", "/lib32": "libraries", "/lib64": "libraries", "/libx32": "libraries",
	"/etc": "system configuration (users, DNS, certificates)", "/boot": "kernels",
	"/dev": "devices (/dev/null, the terminal)", "/proc": "process and kernel information, with the masks hutch keeps over it",
	"/sys": "kernel and device settings", "/run": "runtime state", "/var": "system state",
}

// systemDir returns the system tree p is, or lies within ("" when none).
func systemDir(p string) string {
	for d := range systemDirs {
		if within(d, p) {
			return d
		}
	}
	return ""
}

// replaces says what a tmpfs or hide entry at p takes away from the
// sandbox's system ("" when p is no system path).
func replaces(key, p string) string {
	d := systemDir(p)
	if d == "" {
		return ""
	}
	how := "replaces it with an empty writable directory"
	if key == "filesystem.hide" {
		how = "masks it with an empty file or directory"
	}
	return "a system path (" + d + ": " + systemDirs[d] + "): " + how
}

// hostViews name what a bind of a host path shows that a plain "visible
// outside the project" understates. sub: the same holds for any path
// beneath (a bind of /proc/1 still shows a host process).
var hostViews = []struct {
	dir, what string
	sub       bool
}{
	{"/proc", "every host process: its command line, and what else /proc shows of it", true},
	{"/sys", "the host's devices and kernel settings", true},
	{"/dev", "the host's devices", true},
	{"/run", "the host's runtime sockets (D-Bus, systemd, container engines)", true},
	{"/var/run", "the host's runtime sockets (D-Bus, systemd, container engines)", true},
	{"/tmp", "the host's temporary files and sockets (X11, tmux, other programs')", true},
	{"/var", "the host's logs, mail, caches and databases", false},
	{"/home", "every user's home directory", false},
	{"/root", "root's home directory", false},
}

// exposes says in plain words what binding host path p shows ("" when
// nothing beyond a directory outside the project). Paths in your own home
// are judged by the secrets they hold, elsewhere.
func exposes(p, home string) string {
	if p == "/" {
		return "the host's whole filesystem"
	}
	if within(home, p) {
		return ""
	}
	for _, v := range hostViews {
		if p == v.dir || v.sub && within(v.dir, p) {
			return v.what
		}
	}
	for _, v := range hostViews {
		if within(p, v.dir) {
			return "among the rest, " + v.what
		}
	}
	return ""
}

// builtinRegistries are the registries hutch may contact for an image
// without asking: Docker Hub (what a short name means) and the large
// public registries.
var builtinRegistries = []string{"docker.io", "index.docker.io", "registry-1.docker.io", "ghcr.io", "quay.io",
	"gcr.io", "registry.k8s.io", "mcr.microsoft.com", "public.ecr.aws"}

// registryOf returns the registry host a filesystem.root of "image:REF"
// pulls from ("" for the host, a local layout or archive). As docker
// reads references: a first component with '.' or ':', or localhost, is a
// host; otherwise the image is Docker Hub's.
func registryOf(root string) string {
	ref, ok := strings.CutPrefix(root, "image:")
	if !ok || localImagePath(root) != "" {
		return ""
	}
	first, _, hasSlash := strings.Cut(ref, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return strings.ToLower(first)
	}
	return "docker.io"
}

// knownRegistry reports whether reg is built in or named by your own
// configuration (its filesystem.root or network.allow).
func knownRegistry(reg string, base map[string]*setting) bool {
	for _, r := range builtinRegistries {
		if reg == r {
			return true
		}
	}
	if s := base["filesystem.root"]; s != nil && s.set {
		if v, ok := s.value.(string); ok && registryOf(v) == reg {
			return true
		}
	}
	if s := base["network.allow"]; s != nil {
		for _, it := range s.items {
			if strings.EqualFold(it.Value, reg) {
				return true
			}
		}
	}
	return false
}
