/*
 * The i8042 keyboard controller, only as far as a Linux guest uses one on
 * a machine without a keyboard: its command port answers the controller
 * self-test and the command byte, and the pulse-reset command (0xfe on
 * port 0x64), which is how Linux reboots without ACPI, ends the VM with
 * status 0. No keyboard or mouse is attached.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/devices/i8042.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/log.h"

#define I8042_DATA    0x60
#define I8042_CMD     0x64
#define STATUS_OBF    0x01     /* output buffer full: a byte waits at 0x60 */
#define STATUS_SYS    0x04     /* system flag, set after self-test */
#define CMD_READ_CTR  0x20
#define CMD_WRITE_CTR 0x60
#define CMD_SELF_TEST 0xaa
#define CMD_RESET     0xfe

struct i8042 {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t ctr;               /* the command byte */
	uint8_t out;               /* the byte at 0x60 when STATUS_OBF */
	uint8_t status;
	bool write_ctr;            /* the next 0x60 write is the command byte */
};

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CTR:
		k->out = k->ctr;
		k->status |= STATUS_OBF;
		break;
	case CMD_WRITE_CTR:
		k->write_ctr = true;
		break;
	case CMD_SELF_TEST:
		k->out = 0x55;
		k->status |= STATUS_OBF | STATUS_SYS;
		break;
	case CMD_RESET:
		/* at every log level: it says why minivmm exited (as vmm/devices/acpi_pm.c) */
		log_err("i8042", "guest reset the machine (i8042 reset pulse 0xfe): exiting with status 0, "
			"minivmm does not restart guests");
		vm_request_exit(k->vm, 0);
		break;
	default:
		break;             /* keyboard and mouse commands: nothing is attached */
	}
}

static void i8042_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	uint64_t port = off ? I8042_CMD : I8042_DATA;

	if (!is_write)
		memset(data, 0, len);
	pthread_mutex_lock(&k->lock);
	if (is_write && port == I8042_CMD) {
		i8042_command(k, data[0]);
	} else if (is_write) {
		if (k->write_ctr)
			k->ctr = data[0];
		k->write_ctr = false;
	} else if (port == I8042_CMD) {
		data[0] = k->status;
	} else {
		data[0] = k->out;
		k->status &= (uint8_t)~STATUS_OBF;
	}
	pthread_mutex_unlock(&k->lock);
}

int i8042_init(struct vm *vm)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	int ret;

	if (!k)
		return -ENOMEM;
	pthread_mutex_init(&k->lock, NULL);
	k->vm = vm;
	k->ctr = 0x30;             /* both ports disabled, no interrupts */
	/* 0x60 and 0x64 are four ports apart: one range with offsets 0 and 4 */
	ret = io_bus_register(&vm->pio, I8042_DATA, 1, i8042_io, k, "i8042-data");
	if (!ret)
		ret = io_bus_register(&vm->pio, I8042_CMD, 1, i8042_io, k, "i8042-cmd");
	if (ret) {
		pthread_mutex_destroy(&k->lock);
		free(k);
		return ret;
	}
	vm->i8042 = k;
	return 0;
}

void i8042_destroy(struct vm *vm)
{
	struct i8042 *k = vm->i8042;

	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
	vm->i8042 = NULL;
}
