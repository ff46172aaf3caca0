package seccomp

import (
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/mutate"
)

// Action is a seccomp return value (SECCOMP_RET_*, with data).
type Action uint32

// Actions.
const (
	Allow       Action = unix.SECCOMP_RET_ALLOW
	KillProcess Action = unix.SECCOMP_RET_KILL_PROCESS
	KillThread  Action = unix.SECCOMP_RET_KILL_THREAD
	Trap        Action = unix.SECCOMP_RET_TRAP
	Log         Action = unix.SECCOMP_RET_LOG
)

// Errno returns the action that fails a syscall with errno.
func Errno(errno unix.Errno) Action {
	return Action(unix.SECCOMP_RET_ERRNO | uint32(errno)&unix.SECCOMP_RET_DATA)
}

// Op compares a syscall argument.
type Op int

// Comparisons, as libseccomp names them.
const (
	EQ Op = iota
	NE
	LT
	LE
	GT
	GE
	MaskedEQ // (arg & Value) == Value2
)

// Arg is one condition on a syscall argument. All of a rule's Args must hold.
type Arg struct {
	Index  uint // 0..5
	Op     Op
	Value  uint64
	Value2 uint64 // the expected value, for MaskedEQ
	// Bits32 compares only the low 32 bits: for arguments the kernel reads
	// as an int (an ioctl request, say), whose upper bits are garbage.
	Bits32 bool
}

// Rule applies Action to the syscalls Names when every Arg holds.
type Rule struct {
	Names  []string
	Action Action
	Args   []Arg
}

// Policy is an ordered rule list; the first match wins.
type Policy struct {
	Default Action
	Rules   []Rule
	// ForeignArch is what a syscall from another architecture (ia32, x32)
	// gets; KillProcess unless set.
	ForeignArch Action
}

// Options shape the default policy.
type Options struct {
	// Nested allows new user namespaces and the mount API, so that hutch,
	// bwrap or podman can run inside.
	Nested bool
	// IOUring allows io_uring, whose large attack surface is denied by
	// default.
	IOUring bool
}

// TIOCSTI and TIOCLINUX: typing into, or reading from, a terminal.
const (
	tiocsti   = 0x5412
	tioclinux = 0x541C
)

// Default is hutch's built-in policy: allow by default, and refuse with
// EPERM what a developer command has no business doing.
func Default(o Options) *Policy {
	eperm := Errno(unix.EPERM)
	p := &Policy{Default: Allow}
	// Each group can be switched off alone (mutation "seccomp-GROUP",
	// internal/mutate) to prove a test notices.
	add := func(group string, rules ...Rule) {
		if !mutate.Off("seccomp-" + group) {
			p.Rules = append(p.Rules, rules...)
		}
	}
	deny := func(group string, names ...string) { add(group, Rule{Names: names, Action: eperm}) }

	// The session keyring is shared with the host user.
	deny("keyring", "keyctl", "add_key", "request_key")
	// Kernel code, kernel memory and kernel-wide switches.
	deny("kernel", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
		"create_module", "bpf", "perf_event_open", "userfaultfd", "lookup_dcookie",
		"iopl", "ioperm", "swapon", "swapoff", "reboot", "acct", "syslog", "_sysctl",
		"uselib", "quotactl", "quotactl_fd", "nfsservctl", "vhangup", "get_kernel_syms", "query_module")
	// File handles bypass path-based confinement (the "shocker" escape).
	deny("handles", "open_by_handle_at")
	if !o.IOUring {
		deny("io_uring", "io_uring_setup", "io_uring_enter", "io_uring_register")
	}
	// Typing into the terminal, or reading the console.
	for _, req := range []uint64{tiocsti, tioclinux} {
		add("tty", Rule{Names: []string{"ioctl"}, Action: eperm,
			Args: []Arg{{Index: 1, Op: EQ, Value: req, Bits32: true}}})
	}
	// personality: only the values that do not weaken ASLR or change the
	// syscall ABI (the same set Docker allows).
	for _, v := range []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff} {
		add("personality", Rule{Names: []string{"personality"}, Action: Allow,
			Args: []Arg{{Index: 0, Op: EQ, Value: v, Bits32: true}}})
	}
	deny("personality", "personality")
	if !o.Nested {
		deny("mount", "mount", "umount", "umount2", "pivot_root", "setns", "chroot",
			"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr")
		// New user namespaces, through unshare or clone. clone3 passes its
		// flags in memory BPF cannot read: ENOSYS sends libc back to clone.
		add("userns",
			Rule{Names: []string{"unshare"}, Action: eperm, Args: []Arg{{Index: 0, Op: MaskedEQ, Value: unix.CLONE_NEWUSER, Value2: unix.CLONE_NEWUSER}}},
			Rule{Names: []string{"clone"}, Action: eperm, Args: []Arg{{Index: cloneFlagsArg, Op: MaskedEQ, Value: unix.CLONE_NEWUSER, Value2: unix.CLONE_NEWUSER}}},
			Rule{Names: []string{"clone3"}, Action: Errno(unix.ENOSYS)},
		)
	}
	return p
}

// Compile turns p into a BPF program for this architecture. Syscall names
// this architecture does not have are skipped, as libseccomp does.
func (p *Policy) Compile() ([]unix.SockFilter, error) {
	foreign := p.ForeignArch
	if foreign == 0 {
		foreign = KillProcess
	}
	var prog []unix.SockFilter
	emit := func(code uint16, jt, jf uint8, k uint32) {
		prog = append(prog, unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k})
	}
	// struct seccomp_data: nr at 0, arch at 4, ip at 8, args at 16.
	emit(ldAbs, 0, 0, 4)
	emit(jeq, 1, 0, nativeArch)
	emit(ret, 0, 0, uint32(foreign))
	if x32Bit != 0 {
		emit(ldAbs, 0, 0, 0)
		emit(jge, 0, 1, x32Bit)
		emit(ret, 0, 0, uint32(foreign))
	}
	for _, r := range p.Rules {
		for _, nr := range resolve(r.Names) {
			block, err := ruleBlock(nr, r)
			if err != nil {
				return nil, err
			}
			prog = append(prog, block...)
		}
	}
	emit(ret, 0, 0, uint32(p.Default))
	if len(prog) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("seccomp program of %d instructions exceeds the kernel's limit of %d", len(prog), unix.BPF_MAXINSNS)
	}
	return prog, nil
}

const (
	ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	ret   = unix.BPF_RET | unix.BPF_K
	jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	jgt   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	jge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	and   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
)

// Jump targets while a block is built: fall through, the block's end (the
// rule does not apply), or the end of the current condition (it holds).
const (
	next = iota
	miss
	holds
)

type insn struct {
	code    uint16
	k       uint32
	jt, jf  int // next, miss or holds
	condEnd int // index just past this instruction's condition
}

// ruleBlock compiles one rule for one syscall number: load nr, check it,
// check each condition, return the action. Any miss jumps to the block's
// end, where the next block starts; blocks are short, so 8-bit jumps reach.
func ruleBlock(nr uint32, r Rule) ([]unix.SockFilter, error) {
	var b []insn
	add := func(code uint16, k uint32, jt, jf int) { b = append(b, insn{code: code, k: k, jt: jt, jf: jf}) }
	add(ldAbs, 0, next, next)
	add(jeq, nr, next, miss)
	for _, a := range r.Args {
		if a.Index > 5 {
			return nil, fmt.Errorf("syscall argument index %d out of range 0..5", a.Index)
		}
		start := len(b)
		lo, hi := uint32(16+8*a.Index), uint32(16+8*a.Index+4)
		vlo, vhi := uint32(a.Value), uint32(a.Value>>32)
		switch a.Op {
		case EQ:
			add(ldAbs, lo, next, next)
			add(jeq, vlo, next, miss)
			if !a.Bits32 {
				add(ldAbs, hi, next, next)
				add(jeq, vhi, next, miss)
			}
		case MaskedEQ:
			add(ldAbs, lo, next, next)
			add(and, vlo, next, next)
			add(jeq, uint32(a.Value2), next, miss)
			if !a.Bits32 {
				add(ldAbs, hi, next, next)
				add(and, vhi, next, next)
				add(jeq, uint32(a.Value2>>32), next, miss)
			}
		case NE:
			if !a.Bits32 {
				add(ldAbs, hi, next, next)
				add(jeq, vhi, next, holds)
			}
			add(ldAbs, lo, next, next)
			add(jeq, vlo, miss, next)
		case GT, GE:
			if !a.Bits32 {
				add(ldAbs, hi, next, next)
				add(jgt, vhi, holds, next)
				add(jeq, vhi, next, miss)
			}
			add(ldAbs, lo, next, next)
			if a.Op == GT {
				add(jgt, vlo, next, miss)
			} else {
				add(jge, vlo, next, miss)
			}
		case LT, LE:
			if !a.Bits32 {
				add(ldAbs, hi, next, next)
				add(jgt, vhi, miss, next)
				add(jeq, vhi, next, holds)
			}
			add(ldAbs, lo, next, next)
			if a.Op == LT {
				add(jge, vlo, miss, next)
			} else {
				add(jgt, vlo, miss, next)
			}
		default:
			return nil, fmt.Errorf("unknown comparison %d", a.Op)
		}
		for i := start; i < len(b); i++ {
			b[i].condEnd = len(b)
		}
	}
	add(ret, uint32(r.Action), next, next)
	end := len(b)
	out := make([]unix.SockFilter, len(b))
	for i, in := range b {
		f := unix.SockFilter{Code: in.code, K: in.k}
		if in.code&0x07 == unix.BPF_JMP {
			var err error
			if f.Jt, err = jump(i, in.jt, in.condEnd, end); err != nil {
				return nil, err
			}
			if f.Jf, err = jump(i, in.jf, in.condEnd, end); err != nil {
				return nil, err
			}
		}
		out[i] = f
	}
	return out, nil
}

func jump(from, target, condEnd, end int) (uint8, error) {
	to := from + 1
	switch target {
	case miss:
		to = end
	case holds:
		to = condEnd
	}
	d := to - from - 1
	if d < 0 || d > 255 {
		return 0, fmt.Errorf("seccomp rule too long for a BPF jump (%d)", d)
	}
	return uint8(d), nil
}

// syscallNumbers maps syscall names to this architecture's numbers
// (sysnum_*.go), built on first use: hutch-init, which only installs a
// compiled filter, never needs it, and hutch builds it once per run.
var syscallNumbers = sync.OnceValue(syscallTable)

func resolve(names []string) []uint32 {
	seen := map[uint32]bool{}
	var out []uint32
	for _, n := range names {
		nr, ok := syscallNumbers()[n]
		if !ok || seen[nr] {
			continue
		}
		seen[nr] = true
		out = append(out, nr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Known reports whether name is a syscall of this architecture.
func Known(name string) bool {
	_, ok := syscallNumbers()[name]
	return ok
}

// Number is name's syscall number on this architecture, for the escape
// probe, which tries each denied syscall by number.
func Number(name string) (uint32, bool) {
	nr, ok := syscallNumbers()[name]
	return nr, ok
}
