/*
 * Guest entry points: the vCPU entry (_start), exception/interrupt stubs,
 * the syscall entry and the ring-3 enter/leave pair.
 */
#include "kconfig.h"

	.section .text.entry, "ax"
	.code64
	.globl _start
/* RDI = bootinfo GPA, RSI = cpu index, RSP = 0: pick this cpu's stack. */
_start:
	cli
	cld
	cmp $MAX_CPUS, %rsi
	jae 1f
	mov %rsi, %rax
	inc %rax
	shl $KSTACK_SHIFT, %rax
	lea kstacks(%rax), %rsp
	xor %ebp, %ebp
	call kmain
1:	cli
	hlt
	jmp 1b

	.text
.macro ISR_NOERR n
isr\n:
	pushq $0
	pushq $\n
	jmp isr_common
.endm
.macro ISR_ERR n
isr\n:
	pushq $\n
	jmp isr_common
.endm

ISR_NOERR 0
ISR_NOERR 1
ISR_NOERR 2
ISR_NOERR 3
ISR_NOERR 4
ISR_NOERR 5
ISR_NOERR 6
ISR_NOERR 7
ISR_ERR   8
ISR_NOERR 9
ISR_ERR   10
ISR_ERR   11
ISR_ERR   12
ISR_ERR   13
ISR_ERR   14
ISR_NOERR 15
ISR_NOERR 16
ISR_ERR   17
ISR_NOERR 18
ISR_NOERR 19
ISR_NOERR 20
ISR_ERR   21
ISR_NOERR 22
ISR_NOERR 23
ISR_NOERR 24
ISR_NOERR 25
ISR_NOERR 26
ISR_NOERR 27
ISR_NOERR 28
ISR_ERR   29
ISR_ERR   30
ISR_NOERR 31
ISR_NOERR 64
ISR_NOERR 65
ISR_NOERR 255

/* Frame for isr_dispatch: r15 .. rax, vector, error, then the CPU's iret frame. */
isr_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	cld
	mov %rsp, %rdi
	call isr_dispatch
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp
	iretq

/* task_enter(save, rip, rsp, arg): save callee-saved state, iretq to ring 3. */
	.globl task_enter
task_enter:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, (%rdi)
	pushq $SEL_UDATA
	push %rdx
	pushq $0x202
	pushq $SEL_UCODE
	push %rsi
	mov %rcx, %rdi
	xor %eax, %eax
	xor %ebx, %ebx
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %ebp, %ebp
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	xor %r12d, %r12d
	xor %r13d, %r13d
	xor %r14d, %r14d
	xor %r15d, %r15d
	iretq

/* task_leave(save, status): back into task_enter's caller, returning status. */
	.globl task_leave
task_leave:
	mov %rdi, %rsp
	mov %rsi, %rax
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret

	.section .rodata
	.globl isr_table
	.balign 8
isr_table:
	.quad isr0, isr1, isr2, isr3, isr4, isr5, isr6, isr7
	.quad isr8, isr9, isr10, isr11, isr12, isr13, isr14, isr15
	.quad isr16, isr17, isr18, isr19, isr20, isr21, isr22, isr23
	.quad isr24, isr25, isr26, isr27, isr28, isr29, isr30, isr31
	.quad isr64, isr65, isr255

	.section .note.GNU-stack, "", @progbits
