/*
 * uart: the 8250 UART at COM1 (IRQ 4), the guest's console: output goes to
 * stdout, input comes from stdin. Its port handler runs on vCPU threads,
 * its stdin reader on the main loop.
 */
#ifndef MINIVMM_DEVICES_UART_H
#define MINIVMM_DEVICES_UART_H

struct vm;

/* Registers the UART on vm->pio and stores it in vm->uart. */
int uart_init(struct vm *vm);
/* Flushes a partial line and frees the UART; after vCPU threads stopped. */
void uart_destroy(struct vm *vm);

#endif
