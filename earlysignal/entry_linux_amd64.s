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
// It then jumps to the runtime's own entry with the stack untouched.
TEXT _spotinit_rt0(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$1, R12		// signal number
	XORQ	R13, R13	// mask of ignored signals
	MOVQ	·earlyCatch(SB), R14
	// The sigaction we install: handler, SA_RESTORER|SA_ONSTACK|SA_RESTART,
	// restorer, empty mask. SA_ONSTACK: the Go runtime leaves this handler
	// in place for SIGCONT, SIGTSTP, SIGTTIN and SIGTTOU until they are
	// registered, and a signal frame pushed onto a goroutine's small stack
	// would write past its end; with SA_ONSTACK it goes on the thread's
	// signal stack once the runtime has set one up.
	LEAQ	·sigactNew(SB), BX
	LEAQ	_spotinit_sighandler(SB), AX
	MOVQ	AX, 0(BX)
	MOVQ	$0x1C000000, 8(BX)
	LEAQ	_spotinit_sigreturn(SB), AX
	MOVQ	AX, 16(BX)
	MOVQ	$0, 24(BX)
loop:
	MOVQ	$13, AX		// SYS_rt_sigaction
	MOVQ	R12, DI
	XORQ	SI, SI
	LEAQ	·sigactBuf(SB), DX
	MOVQ	$8, R10
	SYSCALL
	CMPQ	AX, $0
	JNE	next		// EINVAL for numbers the kernel does not know
	MOVQ	R12, CX
	DECQ	CX
	MOVQ	$1, R15
	SHLQ	CX, R15		// R15 = bit for this signal
	MOVQ	·sigactBuf(SB), AX
	CMPQ	AX, $1		// SIG_IGN
	JNE	dfl
	ORQ	R15, R13
	JMP	next
dfl:
	CMPQ	AX, $0		// SIG_DFL: catch it if it is one of ours
	JNE	next
	TESTQ	R15, R14
	JZ	next
	MOVQ	$13, AX		// SYS_rt_sigaction
	MOVQ	R12, DI
	LEAQ	·sigactNew(SB), SI
	XORQ	DX, DX
	MOVQ	$8, R10
	SYSCALL
next:
	INCQ	R12
	CMPQ	R12, $65
	JLT	loop
	MOVQ	R13, ·startIgnored(SB)
	MOVL	$1, ·startKnown(SB)
	JMP	_rt0_amd64_linux(SB)

// _spotinit_sighandler notes signal DI in earlyPending. It runs before the
// Go runtime exists and touches nothing else.
TEXT _spotinit_sighandler(SB),NOSPLIT|NOFRAME,$0
	MOVQ	DI, CX
	DECQ	CX
	MOVQ	$1, AX
	SHLQ	CX, AX
	LOCK
	ORQ	AX, ·earlyPending(SB)
	RET

TEXT _spotinit_sigreturn(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$15, AX		// SYS_rt_sigreturn
	SYSCALL
	INT	$3		// not reached
