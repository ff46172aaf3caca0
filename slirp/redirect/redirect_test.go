package redirect

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const childEnv = "HUTCH_REDIRECT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if err := child(); err != nil {
			fmt.Println("child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestInstall runs Install in a new user and network namespace (as the
// unprivileged user the suite runs as) and checks what it promises: TCP to
// any other address reaches the proxy's port with its original destination
// recoverable, IPv4 and IPv6; loopback is not redirected; UDP elsewhere is
// refused and readable, from outside, through the socket init hands out.
func TestInstall(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("runs as the unprivileged test user (scripts/run-as-test-user.sh)")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "mine"), os.NewFile(uintptr(fds[1]), "theirs")
	defer mine.Close()
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	theirs.Close()
	t.Logf("child:\n%s", out)
	if err != nil {
		if strings.Contains(string(out), "installing nftables rules") && os.Getenv("HUTCH_TEST_STRICT") == "" {
			t.Skip("nftables NAT is not available in a user namespace here")
		}
		t.Fatalf("child: %v", err)
	}
	buf, oob := make([]byte, 16), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(fds[0], buf, oob, 0)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	if len(msgs) != 1 {
		t.Fatal("no reader socket from the child")
	}
	rfds, _ := unix.ParseUnixRights(&msgs[0])
	defer unix.Close(rfds[0])
	got, err := ReadUDP(rfds[0])
	if err != nil {
		t.Fatalf("ReadUDP from outside the namespace: %v", err)
	}
	want := map[UDPDest]bool{
		{netip.MustParseAddr("192.0.2.7"), 9999}:   true,
		{netip.MustParseAddr("2001:db8::7"), 9998}: true,
	}
	for _, d := range got {
		delete(want, d)
	}
	if len(want) != 0 || len(got) != 2 {
		t.Errorf("ReadUDP = %v, missing %v", got, want)
	}
}

func child() error {
	if err := LoopbackUp(); err != nil {
		return err
	}
	if err := Install(3128, 53); err != nil {
		return err
	}
	l4, err := net.Listen("tcp", "127.0.0.1:3128")
	if err != nil {
		return err
	}
	l6, err := net.Listen("tcp", "[::1]:3128")
	if err != nil {
		return err
	}
	svc, err := net.Listen("tcp", "127.0.0.1:5432")
	if err != nil {
		return err
	}
	for _, c := range []struct {
		dial string
		l    net.Listener
		want string
	}{
		{"192.0.2.7:80", l4, "192.0.2.7:80"},
		{"[2001:db8::7]:443", l6, "[2001:db8::7]:443"},
		{"127.0.0.1:3128", l4, "127.0.0.1:3128"},  // an explicit proxy client
		{"127.0.0.1:5432", svc, "127.0.0.1:5432"}, // loopback is left alone
	} {
		d, err := net.Dial("tcp", c.dial)
		if err != nil {
			return fmt.Errorf("dialing %s: %w", c.dial, err)
		}
		a, err := c.l.Accept()
		if err != nil {
			return err
		}
		got, err := OriginalDst(a)
		if c.l == svc {
			// No conntrack NAT entry: the socket's own address stands.
			got, err = netip.MustParseAddrPort(a.LocalAddr().String()), nil
		}
		if err != nil {
			return fmt.Errorf("OriginalDst for %s: %w", c.dial, err)
		}
		if got.String() != c.want {
			return fmt.Errorf("dialing %s: original destination %s, want %s", c.dial, got, c.want)
		}
		fmt.Printf("%s -> %s (original %s)\n", c.dial, a.LocalAddr(), got)
		a.Close()
		d.Close()
	}
	for _, to := range []string{"192.0.2.7:9999", "[2001:db8::7]:9998"} {
		u, err := net.Dial("udp", to)
		if err != nil {
			return err
		}
		// Refused in the output hook: the send itself fails, at once.
		if _, err := u.Write([]byte("x")); !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("udp to %s: %v, want EPERM", to, err)
		}
		u.Close()
	}
	r, err := OpenReader()
	if err != nil {
		return err
	}
	// The reader is used from outside, by the namespace's owner (the
	// test), as hutch's supervisor uses the one init hands it.
	return unix.Sendmsg(3, []byte("r"), unix.UnixRights(r), nil, 0)
}
