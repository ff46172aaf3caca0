// Command probe makes one escape attempt from inside a sandbox and reports
// how it ended: "blocked: <error>" with exit status 0 when the sandbox
// refused it, "ESCAPED: <what>" with exit status 3 when it got through.
// The escape tests (cmd/hutch/testdata/script/escape_*.txtar and
// escape_test.go) run it inside hutch and read its verdict.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe ATTACK [ARGS]")
		os.Exit(2)
	}
	arg := func(i int) string {
		if len(os.Args) <= i+1 {
			fmt.Fprintf(os.Stderr, "probe %s: missing argument %d\n", os.Args[1], i)
			os.Exit(2)
		}
		return os.Args[i+1]
	}
	var err error
	what := os.Args[1]
	switch what {
	case "tiocsti":
		// Push a character into the input of the terminal on fd N.
		fd, _ := strconv.Atoi(arg(1))
		c := byte('x')
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
		err = errnoErr(e)
	case "keyctl":
		// Read the session keyring, which is the host user's.
		_, err = unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
	case "add_key":
		_, err = unix.AddKey("user", "hutch-probe", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
	case "userns":
		err = unix.Unshare(unix.CLONE_NEWUSER)
	case "mount":
		err = unix.Mount("none", arg(1), "tmpfs", 0, "")
	case "umount":
		err = unix.Unmount(arg(1), unix.MNT_DETACH)
	case "ptrace":
		pid, _ := strconv.Atoi(arg(1))
		err = unix.PtraceAttach(pid)
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
		// Not an attack: read what a TCP server says first.
		c, err := net.DialTimeout("tcp", arg(1), 5*time.Second)
		if err != nil {
			fmt.Printf("blocked: %v\n", err)
			return
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		fmt.Printf("got: %s", b)
		os.Exit(3)
	case "sethostname":
		err = unix.Sethostname([]byte("pwned"))
	default:
		fmt.Fprintf(os.Stderr, "probe: unknown attack %q\n", what)
		os.Exit(2)
	}
	if err != nil {
		fmt.Printf("blocked: %v\n", err)
		return
	}
	fmt.Printf("ESCAPED: %s %v succeeded\n", what, os.Args[2:])
	os.Exit(3)
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
