/*
 * acpi_pm: the two ACPI registers Linux uses to leave the machine, on I/O
 * ports: the PM1a control register, where writing SLP_TYP = S5 with SLP_EN
 * powers the machine off, and the reset register (0xcf9, the chipset's
 * reset control register, which Linux's `reboot=pci` also writes), plus
 * the PM1a event block the FADT must describe beside them. Power-off and
 * reset both end the VM with status 0 and a line saying which it was;
 * minivmm does not restart a guest. vmm/boot/acpi.c describes these ports
 * in the FADT and the \_S5 sleep type in the DSDT from the constants here.
 *
 * Threads: port handlers on vCPU threads; init and destroy on the main
 * thread.
 */
#ifndef MINIVMM_DEVICES_ACPI_PM_H
#define MINIVMM_DEVICES_ACPI_PM_H

#include <stdint.h>

struct vm;

#define ACPI_PM1A_EVT_PORT 0x600   /* status (2 bytes), enable (2 bytes); QEMU's PIIX4 base */
#define ACPI_PM1_EVT_LEN   4
#define ACPI_PM1A_CNT_PORT 0x604
#define ACPI_PM1_CNT_LEN   2
#define ACPI_RESET_PORT    0xcf9   /* reset control register */
#define ACPI_RESET_VALUE   0x06    /* RST_CPU | SYS_RST, what a PC chipset documents */
#define ACPI_SCI_IRQ       9       /* announced, never raised: no event ever happens */
#define ACPI_S5_SLP_TYP    5       /* \_S5's SLP_TYPa; the DSDT says so to the guest */

/* PM1 control register bits (ACPI 6.x, 4.8.3.2.1) */
#define ACPI_PM1_SCI_EN       (1u << 0)
#define ACPI_PM1_SLP_TYP_SHIFT 10
#define ACPI_PM1_SLP_TYP_MASK (7u << ACPI_PM1_SLP_TYP_SHIFT)
#define ACPI_PM1_SLP_EN       (1u << 13)

/* What a guest write means. */
enum acpi_pm_action {
	ACPI_PM_NONE,
	ACPI_PM_POWEROFF,          /* SLP_EN with SLP_TYP = S5 */
	ACPI_PM_SLEEP_UNSUPPORTED, /* SLP_EN with another type: not in the DSDT, ignored */
	ACPI_PM_RESET,
};
/* A 16-bit value written to PM1a_CNT. */
enum acpi_pm_action acpi_pm_cnt_action(uint16_t v);
/* A byte written to the reset register: RST_CPU (bit 2) resets. */
enum acpi_pm_action acpi_pm_reset_action(uint8_t v);

/* Registers the ports on vm->pio and stores the device in vm->acpi_pm. */
int acpi_pm_init(struct vm *vm);
/* Frees it; after vCPU threads stopped. */
void acpi_pm_destroy(struct vm *vm);

#endif
