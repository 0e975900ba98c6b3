/*
 * Guest kernel build constants shared by C and assembly (no C syntax here).
 */
#ifndef GUEST_KCONFIG_H
#define GUEST_KCONFIG_H

#define MAX_CPUS        64
#define KSTACK_SHIFT    14              /* 16 KiB kernel stack per cpu */
#define KSTACK_SIZE     (1 << KSTACK_SHIFT)

#define SEL_KCODE       0x08
#define SEL_KDATA       0x10
#define SEL_UDATA       0x1b            /* 0x18 | RPL 3 */
#define SEL_UCODE       0x23            /* 0x20 | RPL 3 */
#define SEL_TSS0        0x28            /* cpu N's TSS at 0x28 + 16 * N */

#define VEC_TIMER       0x40
#define VEC_DEVICE      0x41
#define VEC_SPURIOUS    0xff


#endif
