/*
 * i8042: the keyboard controller's reset line (0xfe on port 0x64), which
 * ends the VM, and just enough of the controller for Linux to probe it.
 * Port handlers run on vCPU threads; init and destroy on the main thread.
 */
#ifndef MINIVMM_DEVICES_I8042_H
#define MINIVMM_DEVICES_I8042_H

struct vm;

/* Registers ports 0x60 and 0x64 on vm->pio and stores the device in vm->i8042. */
int i8042_init(struct vm *vm);
/* Frees it; after vCPU threads stopped. */
void i8042_destroy(struct vm *vm);

#endif
