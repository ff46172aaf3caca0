package seccomp

import (
	"testing"

	"golang.org/x/sys/unix"
)

// run interprets prog (the subset of classic BPF that Compile emits) on a
// seccomp_data, as the kernel would.
func run(t *testing.T, prog []unix.SockFilter, arch, nr uint32, args [6]uint64) uint32 {
	t.Helper()
	load := func(off uint32) uint32 {
		switch {
		case off == 0:
			return nr
		case off == 4:
			return arch
		case off >= 16 && off < 64:
			a := args[(off-16)/8]
			if (off-16)%8 == 0 {
				return uint32(a)
			}
			return uint32(a >> 32)
		}
		t.Fatalf("load of offset %d", off)
		return 0
	}
	var A uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case ldAbs:
			A = load(in.K)
		case and:
			A &= in.K
		case ret:
			return in.K
		case jeq, jgt, jge:
			var cond bool
			switch in.Code {
			case jeq:
				cond = A == in.K
			case jgt:
				cond = A > in.K
			case jge:
				cond = A >= in.K
			}
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		default:
			t.Fatalf("unexpected instruction %#x", in.Code)
		}
	}
	t.Fatal("program fell off its end")
	return 0
}

func nr(t *testing.T, name string) uint32 {
	n, ok := syscallNumbers()[name]
	if !ok {
		t.Fatalf("no syscall %s", name)
	}
	return n
}

func TestDefaultPolicy(t *testing.T) {
	eperm := uint32(Errno(unix.EPERM))
	tests := []struct {
		name    string
		opts    Options
		syscall string
		args    [6]uint64
		arch    uint32
		want    uint32
	}{
		{"read allowed", Options{}, "read", [6]uint64{0, 0, 10}, 0, uint32(Allow)},
		{"keyctl denied", Options{}, "keyctl", [6]uint64{}, 0, eperm},
		{"bpf denied", Options{}, "bpf", [6]uint64{}, 0, eperm},
		{"TIOCSTI denied", Options{}, "ioctl", [6]uint64{0, tiocsti}, 0, eperm},
		{"TIOCSTI with garbage high bits denied", Options{}, "ioctl", [6]uint64{0, 0xdead000000000000 | tiocsti}, 0, eperm},
		{"TIOCLINUX denied", Options{}, "ioctl", [6]uint64{0, tioclinux}, 0, eperm},
		{"TCGETS allowed", Options{}, "ioctl", [6]uint64{0, unix.TCGETS}, 0, uint32(Allow)},
		{"personality query allowed", Options{}, "personality", [6]uint64{0xffffffff}, 0, uint32(Allow)},
		{"personality ADDR_NO_RANDOMIZE denied", Options{}, "personality", [6]uint64{0x0040000}, 0, eperm},
		{"unshare user denied", Options{}, "unshare", [6]uint64{unix.CLONE_NEWUSER | unix.CLONE_NEWNS}, 0, eperm},
		{"unshare mount only allowed", Options{}, "unshare", [6]uint64{unix.CLONE_NEWNS}, 0, uint32(Allow)},
		{"unshare user nested allowed", Options{Nested: true}, "unshare", [6]uint64{unix.CLONE_NEWUSER}, 0, uint32(Allow)},
		{"clone user denied", Options{}, "clone", [6]uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, 0, eperm},
		{"clone thread allowed", Options{}, "clone", [6]uint64{unix.CLONE_VM | unix.CLONE_THREAD}, 0, uint32(Allow)},
		{"clone3 ENOSYS", Options{}, "clone3", [6]uint64{}, 0, uint32(Errno(unix.ENOSYS))},
		{"mount denied", Options{}, "mount", [6]uint64{}, 0, eperm},
		{"mount nested allowed", Options{Nested: true}, "mount", [6]uint64{}, 0, uint32(Allow)},
		{"io_uring denied", Options{}, "io_uring_setup", [6]uint64{}, 0, eperm},
		{"io_uring allowed when asked", Options{IOUring: true}, "io_uring_setup", [6]uint64{}, 0, uint32(Allow)},
		{"foreign arch killed", Options{}, "read", [6]uint64{}, unix.AUDIT_ARCH_I386, uint32(KillProcess)},
		{"open_by_handle_at denied", Options{}, "open_by_handle_at", [6]uint64{}, 0, eperm},
	}
	for _, tt := range tests {
		prog, err := Default(tt.opts).Compile()
		if err != nil {
			t.Fatal(err)
		}
		arch := tt.arch
		if arch == 0 {
			arch = nativeArch
		}
		if got := run(t, prog, arch, nr(t, tt.syscall), tt.args); got != tt.want {
			t.Errorf("%s: got %#x, want %#x", tt.name, got, tt.want)
		}
	}
	if x32Bit != 0 {
		prog, _ := Default(Options{}).Compile()
		if got := run(t, prog, nativeArch, x32Bit|nr(t, "read"), [6]uint64{}); got != uint32(KillProcess) {
			t.Errorf("x32 read: got %#x, want kill", got)
		}
	}
}

// TestArgOps checks every comparison on 64-bit values whose halves
// disagree, where a wrong half-compare shows.
func TestArgOps(t *testing.T) {
	const v = 0x00000002_00000005
	vals := []uint64{0, 4, 5, 6, 0x00000001_ffffffff, 0x00000002_00000004, v, 0x00000002_00000006, 0x00000003_00000000, 0xffffffff_ffffffff}
	ops := []struct {
		op Op
		fn func(x uint64) bool
	}{
		{EQ, func(x uint64) bool { return x == v }},
		{NE, func(x uint64) bool { return x != v }},
		{LT, func(x uint64) bool { return x < v }},
		{LE, func(x uint64) bool { return x <= v }},
		{GT, func(x uint64) bool { return x > v }},
		{GE, func(x uint64) bool { return x >= v }},
		{MaskedEQ, func(x uint64) bool { return x&0x00000002_00000004 == 0x00000002_00000004 }},
	}
	for _, o := range ops {
		arg := Arg{Index: 3, Op: o.op, Value: v}
		if o.op == MaskedEQ {
			arg.Value, arg.Value2 = 0x00000002_00000004, 0x00000002_00000004
		}
		p := &Policy{Default: Allow, Rules: []Rule{{Names: []string{"write"}, Action: Errno(unix.EPERM), Args: []Arg{arg}}}}
		prog, err := p.Compile()
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range vals {
			got := run(t, prog, nativeArch, nr(t, "write"), [6]uint64{0, 0, 0, x}) != uint32(Allow)
			if got != o.fn(x) {
				t.Errorf("op %d on %#x: matched %v, want %v", o.op, x, got, o.fn(x))
			}
		}
	}
}

func TestParseOCI(t *testing.T) {
	const profile = `{
	  "defaultAction": "SCMP_ACT_ERRNO",
	  "defaultErrnoRet": 38,
	  "syscalls": [
	    {"names": ["read", "write", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
	    {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
	     "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
	    {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
	    {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
	  ]
	}`
	p, err := ParseOCI([]byte(profile), []string{"CAP_CHOWN"})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := p.Compile()
	if err != nil {
		t.Fatal(err)
	}
	enosys := uint32(Errno(unix.ENOSYS))
	for _, c := range []struct {
		name string
		args [6]uint64
		want uint32
	}{
		{"read", [6]uint64{}, uint32(Allow)},
		{"openat", [6]uint64{}, enosys},
		{"personality", [6]uint64{0}, uint32(Allow)},
		{"personality", [6]uint64{8}, uint32(Allow)},
		{"personality", [6]uint64{9}, enosys},
		{"mount", [6]uint64{}, enosys}, // needs CAP_SYS_ADMIN, which we lack
		{"getpid", [6]uint64{}, uint32(Errno(unix.EPERM))},
	} {
		if got := run(t, prog, nativeArch, nr(t, c.name), c.args); got != c.want {
			t.Errorf("%s%v: got %#x, want %#x", c.name, c.args[:1], got, c.want)
		}
	}
	for _, bad := range []string{`{`, `{"defaultAction": "SCMP_ACT_NOTIFY"}`,
		`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_ALMOST"}]}]}`} {
		if _, err := ParseOCI([]byte(bad), nil); err == nil {
			t.Errorf("ParseOCI(%s): want an error", bad)
		}
	}
}

// deniedNames is every syscall the default filter refuses outright, and
// whether security.nested allows it (true: the mount API, for hutch,
// bwrap or podman inside). TestDefaultPolicyEveryName checks the list
// against Default and each name against the compiled filters.
var deniedNames = map[string]bool{
	"keyctl": false, "add_key": false, "request_key": false,
	"kexec_load": false, "kexec_file_load": false, "init_module": false, "finit_module": false,
	"delete_module": false, "create_module": false, "bpf": false, "perf_event_open": false,
	"userfaultfd": false, "lookup_dcookie": false, "iopl": false, "ioperm": false, "swapon": false,
	"swapoff": false, "reboot": false, "acct": false, "syslog": false, "_sysctl": false, "uselib": false,
	"quotactl": false, "quotactl_fd": false, "nfsservctl": false, "vhangup": false,
	"get_kernel_syms": false, "query_module": false, "open_by_handle_at": false,
	"io_uring_setup": false, "io_uring_enter": false, "io_uring_register": false,
	"mount": true, "umount": true, "umount2": true, "pivot_root": true, "setns": true, "chroot": true,
	"fsopen": true, "fsconfig": true, "fsmount": true, "fspick": true, "move_mount": true,
	"open_tree": true, "mount_setattr": true,
}

func TestDefaultPolicyEveryName(t *testing.T) {
	eperm := uint32(Errno(unix.EPERM))
	for _, nested := range []bool{false, true} {
		seen := map[string]bool{}
		for _, r := range Default(Options{Nested: nested}).Rules {
			if len(r.Args) == 0 && r.Action == Action(eperm) {
				for _, n := range r.Names {
					seen[n] = true
					if n != "personality" && !nested {
						if _, ok := deniedNames[n]; !ok {
							t.Errorf("Default denies %s, which deniedNames lacks", n)
						}
					}
				}
			}
		}
		prog, err := Default(Options{Nested: nested}).Compile()
		if err != nil {
			t.Fatal(err)
		}
		for name, nestedOK := range deniedNames {
			nr, ok := syscallNumbers()[name]
			if !ok {
				continue // not on this architecture
			}
			want := eperm
			if nested && nestedOK {
				want = uint32(Allow)
			}
			if got := run(t, prog, nativeArch, nr, [6]uint64{}); got != want {
				t.Errorf("nested=%v: %s: got %#x, want %#x", nested, name, got, want)
			}
		}
	}
}
