package seccomp

import "golang.org/x/sys/unix"

const (
	nativeArch = unix.AUDIT_ARCH_X86_64
	// x32Bit marks x32 syscalls, which share the x86_64 audit arch.
	x32Bit = 0x40000000
	// cloneFlagsArg is clone's flags argument.
	cloneFlagsArg = 0
)
