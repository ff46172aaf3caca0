// Command probe makes one escape attempt from inside a sandbox and reports
// how it ended. The escape tests (cmd/hutch/testdata/script/escape_*.txtar
// and the Go escape tests) run it inside hutch and read its verdict.
//
//	probe -want ERRNO[,ERRNO...] ATTACK [ARGS]
//
// states which refusal the defence under test gives. The verdicts:
//
//   - "blocked: ATTACK: ERRNO" and exit 0: refused with an expected errno;
//   - "ESCAPED: ..." and exit 3: the attempt succeeded;
//   - "NOT-TRIED: ..." and exit 4: it failed for a reason that says the
//     attempt never reached the defence (ENOENT, EINVAL, EBADF, EFAULT,
//     ENOTTY, ETXTBSY, ESRCH), unless that errno is the one wanted;
//   - "UNEXPECTED: ..." and exit 5: refused, but with another errno, so
//     some other layer (or a broken probe) blocked it.
//
// -want ok is a positive control: exit 0 with "ok: ..." only when the
// attempt succeeds, which proves the same probe can get through where the
// sandbox allows it. With PROBE_HOLD set in its environment, the probe
// holds what the attack took until its stdin closes. Without -want the probe reports "blocked: <error>" for
// any error; new tests must say what they expect. Malformed arguments exit 2.
package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/sandbox/seccomp"
)

func main() {
	args := os.Args[1:]
	var want []unix.Errno
	wantOK, strict := false, false
	if len(args) > 0 && args[0] == "-want" {
		if len(args) < 2 {
			usage("-want needs an errno name")
		}
		strict = true
		for _, name := range strings.Split(args[1], ",") {
			if name == "ok" {
				wantOK = true
				continue
			}
			e, ok := errnoByName(name)
			if !ok {
				usage(fmt.Sprintf("unknown errno %q", name))
			}
			want = append(want, e)
		}
		args = args[2:]
	}
	if len(args) < 1 {
		usage("no attack named")
	}
	arg := func(i int) string {
		if len(args) <= i {
			usage(fmt.Sprintf("%s: missing argument %d", args[0], i))
		}
		return args[i]
	}
	num := func(i int) int {
		n, err := strconv.Atoi(arg(i))
		if err != nil {
			usage(fmt.Sprintf("%s: argument %d: %q is not a number", args[0], i, args[i]))
		}
		return n
	}
	if args[0] == "sys" {
		os.Exit(sysEach(args[1:], strict, wantOK, want))
	}
	err := attack(args[0], arg, num)
	code := verdict(args, err, strict, wantOK, want)
	if os.Getenv("PROBE_HOLD") != "" {
		// Keep what the attack holds (inotify instances, processes
		// started) until stdin closes, for the host to check meanwhile.
		io.Copy(io.Discard, os.Stdin)
	}
	os.Exit(code)
}

// sysEach is the attack "sys NAME...": each syscall, by number, with
// arguments the kernel refuses (fd -1, pointers into nothing, every flag
// bit set). A seccomp rule answers before the kernel reads them; without
// one the kernel says EBADF, EFAULT or EINVAL (or EPERM, where it checks
// a capability first). One verdict per name; the status is the first
// failing one's.
func sysEach(names []string, strict, wantOK bool, want []unix.Errno) int {
	if len(names) == 0 {
		usage("sys: no syscall named")
	}
	status := 0
	for _, name := range names {
		nr, ok := seccomp.Number(name)
		if !ok {
			usage(fmt.Sprintf("sys: no syscall %q on this architecture", name))
		}
		bad := ^uintptr(0)
		_, _, e := unix.Syscall6(uintptr(nr), bad, bad, bad, bad, bad, bad)
		if st := verdict([]string{"sys " + name}, errnoErr(e), strict, wantOK, want); st != 0 && status == 0 {
			status = st
		}
	}
	return status
}

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "probe: %s\nusage: probe [-want ERRNO[,ERRNO...]|ok] ATTACK [ARGS]\n", msg)
	os.Exit(2)
}

// notTried are errnos that say the attempt did not reach a defence: a
// missing path, a bad argument, a busy text file. An escape check that
// ends with one of them proves nothing.
var notTried = []unix.Errno{unix.ENOENT, unix.EINVAL, unix.EBADF, unix.EFAULT, unix.ENOTTY, unix.ETXTBSY, unix.ESRCH}

func errnoByName(name string) (unix.Errno, bool) {
	for e := unix.Errno(1); e < 256; e++ {
		if unix.ErrnoName(e) == name {
			return e, true
		}
	}
	return 0, false
}

// verdict prints how the attempt ended and returns the exit status.
func verdict(args []string, err error, strict, wantOK bool, want []unix.Errno) int {
	what := strings.Join(args, " ")
	if err == nil {
		if wantOK {
			fmt.Printf("ok: %s\n", what)
			return 0
		}
		fmt.Printf("ESCAPED: %s succeeded\n", what)
		return 3
	}
	if !strict {
		fmt.Printf("blocked: %v\n", err)
		return 0
	}
	var e unix.Errno
	if !errors.As(err, &e) {
		fmt.Printf("UNEXPECTED: %s: %v (no errno)\n", what, err)
		return 5
	}
	if slices.Contains(want, e) {
		fmt.Printf("blocked: %s: %s\n", args[0], unix.ErrnoName(e))
		return 0
	}
	if wantOK {
		fmt.Printf("UNEXPECTED: %s failed: %s (%v), want success\n", what, unix.ErrnoName(e), err)
		return 5
	}
	if slices.Contains(notTried, e) {
		fmt.Printf("NOT-TRIED: %s: %s (%v)\n", what, unix.ErrnoName(e), err)
		return 4
	}
	fmt.Printf("UNEXPECTED: %s: %s (%v), want %s\n", what, unix.ErrnoName(e), err, names(want))
	return 5
}

func names(es []unix.Errno) string {
	var s []string
	for _, e := range es {
		s = append(s, unix.ErrnoName(e))
	}
	return strings.Join(s, ",")
}

// attack makes one attempt and returns its error.
func attack(what string, arg func(int) string, num func(int) int) (err error) {
	switch what {
	case "tiocsti":
		// Push a character into the input of the terminal on fd N.
		fd := num(1)
		c := byte('x')
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
		err = errnoErr(e)
	case "keyctl":
		// Read the session keyring, which is the host user's.
		_, err = unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
	case "add_key":
		_, err = unix.AddKey("user", "hutch-probe", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
	case "userns":
		// A child in a new user namespace. unshare(CLONE_NEWUSER) would
		// fail with EINVAL in any Go program (it is multithreaded), so
		// clone a child with the flag, as a shell's unshare -U does.
		var pid int
		pid, err = syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{
			Sys: &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}})
		if err == nil {
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
		}
	case "unshare-userns":
		// The unshare path of the same rule: seccomp refuses it before the
		// kernel could say EINVAL (multithreaded caller).
		err = unix.Unshare(unix.CLONE_NEWUSER)
	case "mount":
		err = unix.Mount("none", arg(1), "tmpfs", 0, "")
	case "umount":
		err = unix.Unmount(arg(1), unix.MNT_DETACH)
	case "ptrace":
		// An attach that succeeds stops the target: detach at once, so
		// that an ESCAPED verdict fails one test instead of hanging the
		// sandbox (PID 1 stopped) until the suite's timeout.
		pid := num(1)
		runtime.LockOSThread()
		if err = unix.PtraceAttach(pid); err == nil {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, unix.WALL, nil)
			unix.PtraceDetach(pid)
		}
	case "open-write":
		var f *os.File
		f, err = os.OpenFile(arg(1), os.O_WRONLY, 0)
		if err == nil {
			f.Close()
		}
	case "open-read":
		var f *os.File
		f, err = os.Open(arg(1))
		if err == nil {
			f.Close()
		}
	case "unix":
		// Connect to a unix socket path, or an abstract one with a leading @.
		var c net.Conn
		c, err = net.Dial("unix", arg(1))
		if err == nil {
			c.Close()
		}
	case "tcp":
		var c net.Conn
		c, err = net.Dial("tcp", arg(1))
		if err == nil {
			c.Close()
		}
	case "bpf":
		_, _, e := unix.Syscall(unix.SYS_BPF, 0, 0, 0)
		err = errnoErr(e)
	case "perf_event_open":
		_, _, e := unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, 0, 0, ^uintptr(0), ^uintptr(0), 0, 0)
		err = errnoErr(e)
	case "io_uring":
		_, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, 0, 0)
		err = errnoErr(e)
	case "personality":
		// ADDR_NO_RANDOMIZE turns off ASLR.
		_, _, e := unix.Syscall(unix.SYS_PERSONALITY, 0x0040000, 0, 0)
		err = errnoErr(e)
	case "open_by_handle_at":
		_, _, e := unix.Syscall(unix.SYS_OPEN_BY_HANDLE_AT, 0, 0, 0)
		err = errnoErr(e)
	case "setns":
		// Join the namespace of another process, such as init's
		// (/proc/1/ns/mnt): opening it is the first defence.
		var f *os.File
		if f, err = os.Open(arg(1)); err == nil {
			err = unix.Setns(int(f.Fd()), 0)
		}
	case "chroot":
		err = unix.Chroot(arg(1))
	case "lo-down":
		// Take lo down: needs CAP_NET_ADMIN in the sandbox's net namespace.
		err = ifDown("lo")
	case "serve":
		// Not an attack: a server inside for published-port tests. Answers
		// each connection with a greeting, until killed.
		l, err := net.Listen("tcp", arg(1))
		if err != nil {
			fmt.Printf("serve: %v\n", err)
			os.Exit(1)
		}
		fmt.Println("listening")
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(1)
			}
			fmt.Fprintf(c, "hello from the sandbox\n")
			c.Close()
		}
	case "serve-udp":
		// Not an attack: a UDP server inside for published-port tests.
		// Echoes each datagram back, prefixed, until killed.
		pc, err := net.ListenPacket("udp", arg(1))
		if err != nil {
			fmt.Printf("serve-udp: %v\n", err)
			os.Exit(1)
		}
		fmt.Println("listening")
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				os.Exit(1)
			}
			pc.WriteTo(append([]byte("echo: "), buf[:n]...), from)
		}
	case "get":
		// Connect to a TCP server and print what it says first ("got: ").
		// A refused or unreachable connection is the attempt's error; one
		// that succeeds is ESCAPED, or ok under -want ok.
		var c net.Conn
		if c, err = net.DialTimeout("tcp", arg(1), 5*time.Second); err == nil {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, _ := io.ReadAll(c)
			c.Close()
			fmt.Printf("got: %s", b)
		}
	case "sethostname":
		err = unix.Sethostname([]byte("pwned"))
	case "open-path":
		// An O_PATH descriptor of /proc/1/exe is all CVE-2019-5736 needs:
		// reopened for writing through /proc/self/fd once init's binary
		// no longer runs. Only ptrace access to PID 1 stops the open.
		var fd int
		if fd, err = unix.Open(arg(1), unix.O_PATH|unix.O_CLOEXEC, 0); err == nil {
			unix.Close(fd)
		}
	case "readlink":
		_, err = os.Readlink(arg(1))
	case "create":
		// Create (or truncate) a file, as planting a git hook does.
		var f *os.File
		f, err = os.OpenFile(arg(1), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err == nil {
			f.Close()
		}
	case "rename":
		err = os.Rename(arg(1), arg(2))
	case "unlink":
		err = unix.Unlink(arg(1))
	case "forkbomb":
		// forkbomb N PROG ARG: start N copies of PROG ARG, left running:
		// a bound stops it with EAGAIN; all N started means there is none.
		argv := []string{arg(2), arg(3)}
		n := num(1)
		for i := 0; i < n; i++ {
			if _, err = syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}}); err != nil {
				fmt.Fprintf(os.Stderr, "probe: forkbomb: %d started\n", i)
				break
			}
		}
	case "forkbomb-uids":
		// forkbomb-uids N PROG ARG: as forkbomb, each copy as another
		// uid (1, 2, ...), which needs CAP_SETUID: a bound per uid never
		// stops it.
		argv := []string{arg(2), arg(3)}
		n := num(1)
		for i := 0; i < n; i++ {
			cred := &syscall.Credential{Uid: uint32(1 + i), Gid: 0, NoSetGroups: true}
			if _, err = syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}, Sys: &syscall.SysProcAttr{Credential: cred}}); err != nil {
				fmt.Fprintf(os.Stderr, "probe: forkbomb-uids: %d started\n", i)
				break
			}
		}
	case "inotify":
		// Open N inotify instances (and keep them, in a child that holds
		// them, see below): a bound stops it with EMFILE.
		n := num(1)
		for i := 0; i < n; i++ {
			if _, err = unix.InotifyInit1(0); err != nil {
				fmt.Fprintf(os.Stderr, "probe: inotify: %d opened\n", i)
				break
			}
		}
	case "inotify-watches":
		// Add N watches (directories DIR/0..N-1, made here) to one
		// instance: a bound stops it with ENOSPC.
		n, dir := num(1), arg(2)
		var fd int
		if fd, err = unix.InotifyInit1(0); err != nil {
			break
		}
		for i := 0; i < n; i++ {
			p := fmt.Sprintf("%s/%d", dir, i)
			if err = os.MkdirAll(p, 0o755); err != nil {
				break
			}
			if _, err = unix.InotifyAddWatch(fd, p, unix.IN_CREATE); err != nil {
				fmt.Fprintf(os.Stderr, "probe: inotify-watches: %d added\n", i)
				break
			}
		}
	case "fill":
		// Write FILE until it fails: a tmpfs budget stops it with ENOSPC.
		var f *os.File
		if f, err = os.Create(arg(1)); err != nil {
			break
		}
		buf := make([]byte, 1<<20)
		for n := 0; n < num(2); n++ {
			if _, err = f.Write(buf); err != nil {
				fmt.Fprintf(os.Stderr, "probe: fill: %d MiB written\n", n)
				break
			}
		}
		f.Close()
	case "unix-self":
		// Listen on a unix socket path and connect to it: the sandbox's
		// own sockets must keep working where host ones are covered.
		var l net.Listener
		if l, err = net.Listen("unix", arg(1)); err == nil {
			go func() {
				if c, err := l.Accept(); err == nil {
					c.Close()
				}
			}()
			var c net.Conn
			if c, err = net.Dial("unix", arg(1)); err == nil {
				c.Close()
			}
			l.Close()
		}
	case "init-caps":
		// What PID 1 (hutch-init) holds beyond the command's own permitted
		// set, while the command runs: anything is an escape, since init
		// only waits by then. EPERM: it holds nothing more.
		err = initCapsBeyondOurs()
	case "no-new-privs":
		// Whether exec could still gain privileges (setuid, file caps):
		// EPERM when no_new_privs is set.
		var nnp int
		if nnp, err = unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil && nnp == 1 {
			err = unix.EPERM
		}
	case "setgroups-drop":
		// Drop every supplementary group (and with them a file's
		// deny-by-group permissions), as root inside would.
		err = unix.Setgroups(nil)
	case "greet":
		// Connect to a TCP server that speaks first and read its greeting:
		// ok once a byte arrives. A connection accepted and then reset (as
		// hutch's redirect refuses one) is ECONNRESET; closed with nothing
		// said, ECONNABORTED.
		var c net.Conn
		if c, err = net.DialTimeout("tcp", arg(1), 5*time.Second); err == nil {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			b := make([]byte, 256)
			var n int
			n, err = c.Read(b)
			c.Close()
			if n > 0 {
				fmt.Printf("got: %s", b[:n])
				err = nil
			} else if errors.Is(err, io.EOF) {
				err = unix.ECONNABORTED
			}
		}
	case "tls-sni":
		// A TLS handshake with ADDR (arg 1) naming SNI (arg 2), as a
		// client fronting a denied host behind an allowed one's address.
		var c net.Conn
		if c, err = net.DialTimeout("tcp", arg(1), 5*time.Second); err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			tc := tls.Client(c, &tls.Config{ServerName: arg(2), InsecureSkipVerify: true})
			err = tc.Handshake()
			c.Close()
			if err != nil && errors.Is(err, io.EOF) {
				err = unix.ECONNABORTED
			}
		}
	case "udp-send":
		// Send one UDP datagram to ADDR.
		var c net.Conn
		if c, err = net.Dial("udp", arg(1)); err == nil {
			_, err = c.Write([]byte("probe"))
			c.Close()
		}
	case "nft-delete":
		// Delete hutch's redirect rules (table inet hutch), which only
		// CAP_NET_ADMIN in the namespace allows.
		var c *nftables.Conn
		if c, err = nftables.New(); err == nil {
			c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "hutch"})
			err = c.Flush()
		}
	case "proc-root":
		// Reach into another sandbox's files (a service's) through
		// /proc/PID/root of a process named NAME. ENOENT: no such process
		// is visible, as it should not be from another pid namespace.
		err = procRoot(arg(1))
	case "sysv-shm":
		// See another sandbox's System V shared memory (a service's, as
		// postgres makes one). ENOENT: none is visible in this ipc
		// namespace.
		err = sysvShm()
	case "exe-write":
		// Write a byte into the executable that PATH is a handle to (a
		// /proc/self/fd/N of an O_PATH open of /proc/PID/exe, taken while
		// PID ran): the last step of runc's CVE-2019-5736, once the
		// process has exited and the kernel no longer answers ETXTBSY.
		var f *os.File
		if f, err = os.OpenFile(arg(1), os.O_WRONLY, 0); err == nil {
			_, err = f.WriteAt([]byte{0}, 0)
			f.Close()
		}
	default:
		usage(fmt.Sprintf("unknown attack %q", what))
	}
	return err
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func ifDown(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() &^ unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// initCapsBeyondOurs returns nil when /proc/1/status shows a capability in
// init's permitted, effective or ambient set that our own permitted set
// lacks, EPERM when there is none.
func initCapsBeyondOurs() error {
	caps := func(path string) (map[string]uint64, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		out := map[string]uint64{}
		for _, l := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok || !strings.HasPrefix(k, "Cap") {
				continue
			}
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", path, k, err)
			}
			out[k] = n
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%s shows no capabilities", path)
		}
		return out, nil
	}
	init1, err := caps("/proc/1/status")
	if err != nil {
		return err
	}
	self, err := caps("/proc/self/status")
	if err != nil {
		return err
	}
	for _, k := range []string{"CapPrm", "CapEff", "CapAmb"} {
		if extra := init1[k] &^ self["CapPrm"]; extra != 0 {
			fmt.Printf("init's %s holds %#x beyond ours (%#x)\n", k, extra, self["CapPrm"])
			return nil
		}
	}
	return unix.EPERM
}

// procRoot lists /proc/PID/root of the first process whose name is name.
func procRoot(name string) error {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != name {
			continue
		}
		_, err = os.ReadDir("/proc/" + e.Name() + "/root/")
		return err
	}
	return unix.ENOENT
}

// sysvShm reports a System V shared memory segment visible here.
func sysvShm() error {
	data, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		return err
	}
	if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); len(lines) > 1 {
		fmt.Fprintf(os.Stderr, "segment: %s\n", lines[1])
		return nil
	}
	return unix.ENOENT
}
