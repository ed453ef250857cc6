#include "textflag.h"

// _spotinit_rt0 is spotinit's ELF entry point when linked with
// -ldflags=-E=_spotinit_rt0. Before the Go runtime replaces the signal
// dispositions it
//
//   - records which signals are SIG_IGN (rt_sigaction(n, NULL, &old, 8) for
//     n = 1..64), so that the child can inherit them; and
//   - gives the caught signals that are still SIG_DFL a tiny handler that
//     notes their arrival in earlyPending, so that a signal sent in the first
//     moments after exec is neither dropped (PID 1) nor fatal (any other
//     pid): earlysignal's init hands the noted ones on.
//
// It then branches to the runtime's own entry with the stack and R0
// untouched. Without SA_RESTORER the kernel returns from the handler through
// its vDSO trampoline.
TEXT _spotinit_rt0(SB),NOSPLIT|NOFRAME,$0
	MOVD	R0, R21		// keep the kernel's R0 for the runtime
	MOVD	$1, R19		// signal number
	MOVD	$0, R20		// mask of ignored signals
	MOVD	$·earlyCatch(SB), R2
	MOVD	(R2), R22
	// The sigaction we install: handler, SA_ONSTACK|SA_RESTART, no
	// restorer, empty mask (SA_ONSTACK: see entry_linux_amd64.s).
	MOVD	$·sigactNew(SB), R2
	MOVD	$_spotinit_sighandler(SB), R3
	MOVD	R3, 0(R2)
	MOVD	$0x18000000, R3
	MOVD	R3, 8(R2)
	MOVD	ZR, 16(R2)
	MOVD	ZR, 24(R2)
loop:
	MOVD	R19, R0
	MOVD	$0, R1
	MOVD	$·sigactBuf(SB), R2
	MOVD	$8, R3
	MOVD	$134, R8	// SYS_rt_sigaction
	SVC
	CMP	$0, R0
	BNE	next		// EINVAL for numbers the kernel does not know
	SUB	$1, R19, R3
	MOVD	$1, R23
	LSL	R3, R23, R23	// R23 = bit for this signal
	MOVD	$·sigactBuf(SB), R2
	MOVD	(R2), R0
	CMP	$1, R0		// SIG_IGN
	BNE	dfl
	ORR	R23, R20, R20
	B	next
dfl:
	CBNZ	R0, next	// not SIG_DFL: leave it
	AND	R23, R22, R3
	CBZ	R3, next	// not one of ours
	MOVD	R19, R0
	MOVD	$·sigactNew(SB), R1
	MOVD	$0, R2
	MOVD	$8, R3
	MOVD	$134, R8	// SYS_rt_sigaction
	SVC
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

// _spotinit_sighandler notes signal R0 in earlyPending. It runs before the
// Go runtime exists and touches nothing else.
TEXT _spotinit_sighandler(SB),NOSPLIT|NOFRAME,$0
	SUB	$1, R0, R1
	MOVD	$1, R2
	LSL	R1, R2, R2
	MOVD	$·earlyPending(SB), R3
again:
	LDAXR	(R3), R4
	ORR	R2, R4, R4
	STLXR	R4, (R3), R5
	CBNZ	R5, again
	RET
