package ocispec

// The subset of the OCI runtime spec's config.json (runtime-spec v1.x,
// config.md and config-linux.md) that hutch reads. Fields hutch does not
// read are found by name (unknownKeys) and warned about or refused; they
// are never dropped without a word.

type config struct {
	OCIVersion  string            `json:"ociVersion"`
	Process     *process          `json:"process"`
	Root        *root             `json:"root"`
	Hostname    string            `json:"hostname"`
	Domainname  string            `json:"domainname"`
	Mounts      []mount           `json:"mounts"`
	Hooks       map[string]any    `json:"hooks"`
	Annotations map[string]string `json:"annotations"`
	Linux       *linux            `json:"linux"`
}

type process struct {
	Terminal        bool         `json:"terminal"`
	User            user         `json:"user"`
	Args            []string     `json:"args"`
	Env             []string     `json:"env"`
	Cwd             string       `json:"cwd"`
	Capabilities    *caps        `json:"capabilities"`
	Rlimits         []rlimit     `json:"rlimits"`
	NoNewPrivileges bool         `json:"noNewPrivileges"`
	ApparmorProfile string       `json:"apparmorProfile"`
	OOMScoreAdj     *int         `json:"oomScoreAdj"`
	SelinuxLabel    string       `json:"selinuxLabel"`
	ConsoleSize     *consoleSize `json:"consoleSize"`
}

type consoleSize struct {
	Height, Width uint
}

type user struct {
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	Umask          *uint32  `json:"umask"`
	AdditionalGids []uint32 `json:"additionalGids"`
	Username       string   `json:"username"`
}

type caps struct {
	Bounding    []string `json:"bounding"`
	Effective   []string `json:"effective"`
	Inheritable []string `json:"inheritable"`
	Permitted   []string `json:"permitted"`
	Ambient     []string `json:"ambient"`
}

type rlimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}

type root struct {
	Path     string `json:"path"`
	Readonly bool   `json:"readonly"`
}

type mount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Source      string   `json:"source"`
	Options     []string `json:"options"`
	UIDMappings []idMap  `json:"uidMappings"`
	GIDMappings []idMap  `json:"gidMappings"`
}

type idMap struct {
	ContainerID uint32 `json:"containerID"`
	HostID      uint32 `json:"hostID"`
	Size        uint32 `json:"size"`
}

type namespace struct {
	Type string `json:"type"`
	Path string `json:"path"`
}

type linux struct {
	Namespaces    []namespace       `json:"namespaces"`
	UIDMappings   []idMap           `json:"uidMappings"`
	GIDMappings   []idMap           `json:"gidMappings"`
	Devices       []any             `json:"devices"`
	CgroupsPath   string            `json:"cgroupsPath"`
	Resources     *resources        `json:"resources"`
	Sysctl        map[string]string `json:"sysctl"`
	Seccomp       any               `json:"seccomp"`
	MaskedPaths   []string          `json:"maskedPaths"`
	ReadonlyPaths []string          `json:"readonlyPaths"`
	// RootfsPropagation, MountLabel, IntelRdt, Personality, … are found
	// by name (unknownKeys) and warned about.
}

type resources struct {
	Memory *struct {
		Limit *int64 `json:"limit"`
	} `json:"memory"`
	CPU *struct {
		Quota  *int64  `json:"quota"`
		Period *uint64 `json:"period"`
	} `json:"cpu"`
	Pids *struct {
		Limit int64 `json:"limit"`
	} `json:"pids"`
}
