/*
 * uart: the 8250 UART at COM1 the guest's console writes to; output goes to
 * stdout. Its port handler runs on vCPU threads.
 */
#ifndef MINIVMM_DEVICES_UART_H
#define MINIVMM_DEVICES_UART_H

struct vm;

/* Registers the UART on vm->pio and stores it in vm->uart. */
int uart_init(struct vm *vm);
/* Flushes a partial line and frees the UART; after vCPU threads stopped. */
void uart_destroy(struct vm *vm);

#endif
