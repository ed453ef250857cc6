#include "textflag.h"

// _spotinit_rt0 is spotinit's ELF entry point when linked with
// -ldflags=-E=_spotinit_rt0. It records which signals are SIG_IGN
// (rt_sigaction(n, NULL, &old, 8) for n = 1..64) before the Go runtime
// replaces the dispositions, then branches to the runtime's own entry with
// the stack and R0 untouched.
TEXT _spotinit_rt0(SB),NOSPLIT|NOFRAME,$0
	MOVD	R0, R21		// keep the kernel's R0 for the runtime
	MOVD	$1, R19		// signal number
	MOVD	$0, R20		// mask of ignored signals
loop:
	MOVD	R19, R0
	MOVD	$0, R1
	MOVD	$·sigactBuf(SB), R2
	MOVD	$8, R3
	MOVD	$134, R8	// SYS_rt_sigaction
	SVC
	CMP	$0, R0
	BNE	next		// EINVAL for numbers the kernel does not know
	MOVD	$·sigactBuf(SB), R2
	MOVD	(R2), R0
	CMP	$1, R0		// SIG_IGN
	BNE	next
	SUB	$1, R19, R3
	MOVD	$1, R0
	LSL	R3, R0, R0
	ORR	R0, R20, R20
next:
	ADD	$1, R19, R19
	CMP	$65, R19
	BLT	loop
	MOVD	$·startIgnored(SB), R2
	MOVD	R20, (R2)
	MOVD	$·startKnown(SB), R2
	MOVD	$1, R3
	MOVW	R3, (R2)
	MOVD	R21, R0
	B	_rt0_arm64_linux(SB)
