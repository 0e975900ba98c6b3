/*
 * The ACPI power-management registers a guest leaves the machine through
 * (see acpi_pm.h). The machine is always in ACPI mode (the FADT has no
 * SMI command port), so SCI_EN reads as set; no event is ever raised, so
 * the PM1 status register reads 0 and its enable register only remembers
 * what the guest wrote, as Linux writes and reads it back at start.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/devices/acpi_pm.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/log.h"
#include "vmm/lib/stop.h"

#define RESET_RST_CPU 0x04     /* 0xcf9 bit 2: the write that resets; bit 1 alone only arms it */

struct acpi_pm {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t evt[ACPI_PM1_EVT_LEN];   /* status (reads 0), enable */
	uint8_t cnt[ACPI_PM1_CNT_LEN];
	uint8_t reset;
};

enum acpi_pm_action acpi_pm_cnt_action(uint16_t v)
{
	if (!(v & ACPI_PM1_SLP_EN))
		return ACPI_PM_NONE;
	if (((v & ACPI_PM1_SLP_TYP_MASK) >> ACPI_PM1_SLP_TYP_SHIFT) == ACPI_S5_SLP_TYP)
		return ACPI_PM_POWEROFF;
	return ACPI_PM_SLEEP_UNSUPPORTED;
}

enum acpi_pm_action acpi_pm_reset_action(uint8_t v)
{
	return v & RESET_RST_CPU ? ACPI_PM_RESET : ACPI_PM_NONE;
}

/*
 * The VM ends here; the lines are printed at every log level because they
 * say why minivmm exited. Status 0 for both: the guest chose to stop, and
 * minivmm does not restart it (README, Exit statuses).
 */
static void acpi_pm_act(struct acpi_pm *pm, enum acpi_pm_action a, unsigned v)
{
	switch (a) {
	case ACPI_PM_POWEROFF:
		log_err("acpi", "guest powered off (ACPI S5): exiting with status 0");
		vm_request_exit(pm->vm, stop_status(STOP_GUEST));
		break;
	case ACPI_PM_RESET:
		log_err("acpi", "guest reset the machine (ACPI reset register 0x%x <- 0x%02x): "
			"exiting with status 0, minivmm does not restart guests", ACPI_RESET_PORT, v);
		vm_request_exit(pm->vm, stop_status(STOP_GUEST));
		break;
	case ACPI_PM_SLEEP_UNSUPPORTED:
		log_err("acpi", "the guest asked for sleep type %u, which the DSDT does not offer "
			"(only \\_S5, type %u): ignored", (v & ACPI_PM1_SLP_TYP_MASK) >> ACPI_PM1_SLP_TYP_SHIFT,
			ACPI_S5_SLP_TYP);
		break;
	case ACPI_PM_NONE:
		break;
	}
}

static void acpi_pm_evt_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;

	pthread_mutex_lock(&pm->lock);
	for (uint32_t i = 0; i < len; i++) {
		uint64_t at = off + i;

		if (at < 2) {          /* status: nothing ever happens; writes clear nothing */
			if (!is_write)
				data[i] = 0;
		} else if (is_write) {
			pm->evt[at] = data[i];
		} else {
			data[i] = pm->evt[at];
		}
	}
	pthread_mutex_unlock(&pm->lock);
}

static void acpi_pm_cnt_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint16_t v = 0;

	pthread_mutex_lock(&pm->lock);
	if (is_write) {
		/* a byte write to either half counts: merge it into the register */
		memcpy(pm->cnt + off, data, len);
		v = (uint16_t)(pm->cnt[0] | pm->cnt[1] << 8);
		pm->cnt[1] &= (uint8_t)~(ACPI_PM1_SLP_EN >> 8);   /* write-only: reads as 0 */
	} else {
		uint8_t reg[ACPI_PM1_CNT_LEN] = { (uint8_t)(pm->cnt[0] | ACPI_PM1_SCI_EN), pm->cnt[1] };

		memcpy(data, reg + off, len);
	}
	pthread_mutex_unlock(&pm->lock);
	acpi_pm_act(pm, acpi_pm_cnt_action(v), v);
}

static void acpi_pm_reset_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	enum acpi_pm_action a = ACPI_PM_NONE;
	uint8_t v = data[0];

	pthread_mutex_lock(&pm->lock);
	if (is_write) {
		pm->reset = v & ~RESET_RST_CPU;
		a = acpi_pm_reset_action(v);
	} else {
		data[0] = pm->reset;
	}
	pthread_mutex_unlock(&pm->lock);
	acpi_pm_act(pm, a, v);
}

int acpi_pm_init(struct vm *vm)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	int ret;

	if (!pm)
		return -ENOMEM;
	pthread_mutex_init(&pm->lock, NULL);
	pm->vm = vm;
	ret = io_bus_register(&vm->pio, ACPI_PM1A_EVT_PORT, ACPI_PM1_EVT_LEN, acpi_pm_evt_io, pm,
			      "acpi-pm1a-evt");
	if (!ret)
		ret = io_bus_register(&vm->pio, ACPI_PM1A_CNT_PORT, ACPI_PM1_CNT_LEN, acpi_pm_cnt_io, pm,
				      "acpi-pm1a-cnt");
	if (!ret)
		ret = io_bus_register(&vm->pio, ACPI_RESET_PORT, 1, acpi_pm_reset_io, pm, "acpi-reset");
	/* on failure vm_create fails and acpi_pm_destroy frees it */
	vm->acpi_pm = pm;
	return ret;
}

void acpi_pm_destroy(struct vm *vm)
{
	struct acpi_pm *pm = vm->acpi_pm;

	if (!pm)
		return;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
	vm->acpi_pm = NULL;
}
