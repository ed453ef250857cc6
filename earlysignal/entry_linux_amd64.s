#include "textflag.h"

// _spotinit_rt0 is spotinit's ELF entry point when linked with
// -ldflags=-E=_spotinit_rt0. It records which signals are SIG_IGN
// (rt_sigaction(n, NULL, &old, 8) for n = 1..64) before the Go runtime
// replaces the dispositions, then jumps to the runtime's own entry with the
// stack untouched.
TEXT _spotinit_rt0(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$1, R12		// signal number
	XORQ	R13, R13	// mask of ignored signals
loop:
	MOVQ	$13, AX		// SYS_rt_sigaction
	MOVQ	R12, DI
	XORQ	SI, SI
	LEAQ	·sigactBuf(SB), DX
	MOVQ	$8, R10
	SYSCALL
	CMPQ	AX, $0
	JNE	next		// EINVAL for numbers the kernel does not know
	MOVQ	·sigactBuf(SB), AX
	CMPQ	AX, $1		// SIG_IGN
	JNE	next
	MOVQ	R12, CX
	DECQ	CX
	MOVQ	$1, AX
	SHLQ	CX, AX
	ORQ	AX, R13
next:
	INCQ	R12
	CMPQ	R12, $65
	JLT	loop
	MOVQ	R13, ·startIgnored(SB)
	MOVL	$1, ·startKnown(SB)
	JMP	_rt0_amd64_linux(SB)
