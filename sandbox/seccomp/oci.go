package seccomp

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ociProfile is the seccomp section of an OCI runtime spec, which is also
// the format of Docker's and podman's seccomp.json.
type ociProfile struct {
	DefaultAction   string       `json:"defaultAction"`
	DefaultErrnoRet *uint        `json:"defaultErrnoRet"`
	Architectures   []string     `json:"architectures"`
	ArchMap         []ociArchMap `json:"archMap"`
	Syscalls        []ociSyscall `json:"syscalls"`
	Flags           []string     `json:"flags"`
	ListenerPath    string       `json:"listenerPath"`
}

type ociArchMap struct {
	Arch string `json:"architecture"`
}

type ociSyscall struct {
	Names    []string  `json:"names"`
	Name     string    `json:"name"` // older Docker profiles
	Action   string    `json:"action"`
	ErrnoRet *uint     `json:"errnoRet"`
	Args     []ociArg  `json:"args"`
	Includes ociFilter `json:"includes"`
	Excludes ociFilter `json:"excludes"`
}

type ociArg struct {
	Index    uint   `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo"`
	Op       string `json:"op"`
}

type ociFilter struct {
	Caps      []string `json:"caps"`
	Arches    []string `json:"arches"`
	MinKernel string   `json:"minKernel"`
}

// ParseOCI reads an OCI/Docker seccomp profile. caps are the capabilities
// the confined process will hold: rules that include or exclude by
// capability are decided against them, as Docker does.
func ParseOCI(data []byte, caps []string) (*Policy, error) {
	var prof ociProfile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&prof); err != nil {
		return nil, fmt.Errorf("parsing seccomp profile: %w", err)
	}
	if prof.ListenerPath != "" {
		return nil, fmt.Errorf("seccomp profile: listenerPath (user notification) is not supported")
	}
	def, err := ociAction(prof.DefaultAction, prof.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: defaultAction: %w", err)
	}
	p := &Policy{Default: def}
	have := map[string]bool{}
	for _, c := range caps {
		have[c] = true
	}
	kernel := kernelVersion()
	for i, sc := range prof.Syscalls {
		if !ociApplies(sc, have, kernel) {
			continue
		}
		act, err := ociAction(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("seccomp profile: syscalls[%d]: %w", i, err)
		}
		names := sc.Names
		if sc.Name != "" {
			names = append(names, sc.Name)
		}
		r := Rule{Names: names, Action: act}
		for j, a := range sc.Args {
			op, ok := ociOps[a.Op]
			if !ok {
				return nil, fmt.Errorf("seccomp profile: syscalls[%d].args[%d]: unknown op %q", i, j, a.Op)
			}
			arg := Arg{Index: a.Index, Op: op, Value: a.Value, Value2: a.ValueTwo}
			r.Args = append(r.Args, arg)
		}
		p.Rules = append(p.Rules, splitByIndex(r)...)
	}
	return p, nil
}

var ociOps = map[string]Op{
	"SCMP_CMP_EQ": EQ, "SCMP_CMP_NE": NE, "SCMP_CMP_LT": LT, "SCMP_CMP_LE": LE,
	"SCMP_CMP_GT": GT, "SCMP_CMP_GE": GE, "SCMP_CMP_MASKED_EQ": MaskedEQ,
}

func ociAction(name string, errnoRet *uint) (Action, error) {
	errno := unix.EPERM
	if errnoRet != nil {
		errno = unix.Errno(*errnoRet)
	}
	switch name {
	case "SCMP_ACT_ALLOW":
		return Allow, nil
	case "SCMP_ACT_ERRNO":
		return Errno(errno), nil
	case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD":
		return KillThread, nil
	case "SCMP_ACT_KILL_PROCESS":
		return KillProcess, nil
	case "SCMP_ACT_TRAP":
		return Trap, nil
	case "SCMP_ACT_LOG":
		return Log, nil
	case "SCMP_ACT_TRACE":
		// With no tracer attached the kernel fails the call with ENOSYS.
		return Errno(unix.ENOSYS), nil
	case "":
		return 0, fmt.Errorf("missing action")
	}
	return 0, fmt.Errorf("unsupported action %q", name)
}

func ociApplies(sc ociSyscall, have map[string]bool, kernel [2]int) bool {
	arch := map[string]string{"amd64": "amd64", "arm64": "arm64"}[runtime.GOARCH]
	for _, c := range sc.Includes.Caps {
		if !have[c] {
			return false
		}
	}
	if len(sc.Includes.Arches) > 0 && !contains(sc.Includes.Arches, arch) {
		return false
	}
	if mk := parseKernel(sc.Includes.MinKernel); mk != [2]int{} && less(kernel, mk) {
		return false
	}
	for _, c := range sc.Excludes.Caps {
		if have[c] {
			return false
		}
	}
	if contains(sc.Excludes.Arches, arch) {
		return false
	}
	if mk := parseKernel(sc.Excludes.MinKernel); mk != [2]int{} && !less(kernel, mk) {
		return false
	}
	return true
}

// splitByIndex follows runc: conditions on distinct arguments are ANDed in
// one rule, but when an argument is named twice, each condition becomes a
// rule of its own (ORed), since one value cannot equal two.
func splitByIndex(r Rule) []Rule {
	seen := map[uint]bool{}
	repeated := false
	for _, a := range r.Args {
		repeated = repeated || seen[a.Index]
		seen[a.Index] = true
	}
	if !repeated {
		return []Rule{r}
	}
	out := make([]Rule, 0, len(r.Args))
	for _, a := range r.Args {
		out = append(out, Rule{Names: r.Names, Action: r.Action, Args: []Arg{a}})
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func kernelVersion() [2]int {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return [2]int{}
	}
	return parseKernel(unix.ByteSliceToString(u.Release[:]))
}

func parseKernel(s string) [2]int {
	if s == "" {
		return [2]int{}
	}
	parts := strings.SplitN(s, ".", 3)
	var v [2]int
	for i := 0; i < 2 && i < len(parts); i++ {
		n := strings.TrimFunc(parts[i], func(r rune) bool { return r < '0' || r > '9' })
		v[i], _ = strconv.Atoi(n)
	}
	return v
}

func less(a, b [2]int) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }
