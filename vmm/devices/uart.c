/*
 * An 8250-compatible UART at 0x3f8 (COM1), output only: transmitted bytes
 * go to stdout line by line; the transmitter always reports ready so a
 * polling guest never waits. Registers follow the 16550 layout, including
 * the divisor latch, so ordinary drivers can program it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/devices/uart.h"
#include "vmm/kvm/kvm.h"

#define UART_THR 0   /* transmit (DLAB=0) / divisor low (DLAB=1) */
#define UART_IER 1   /* interrupt enable / divisor high */
#define UART_IIR 2   /* interrupt identification (read) / FIFO control (write) */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define LCR_DLAB  0x80
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define IIR_NOINT 0x01

struct uart {
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	char line[256];
	size_t len;
};

static void uart_flush(struct uart *u)
{
	size_t off = 0;

	while (off < u->len) {
		ssize_t n = write(STDOUT_FILENO, u->line + off, u->len - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	u->len = 0;
}

static void uart_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct uart *u = opaque;
	uint8_t v = data[0];

	/* wider accesses than a byte are not meaningful on an 8250 */
	if (!is_write)
		memset(data, 0, len);
	pthread_mutex_lock(&u->lock);
	if (is_write) {
		switch (off) {
		case UART_THR:
			if (u->lcr & LCR_DLAB) {
				u->dll = v;
				break;
			}
			u->line[u->len++] = (char)v;
			if (v == '\n' || u->len == sizeof(u->line))
				uart_flush(u);
			break;
		case UART_IER:
			if (u->lcr & LCR_DLAB)
				u->dlm = v;
			else
				u->ier = v & 0x0f;
			break;
		case UART_LCR: u->lcr = v; break;
		case UART_MCR: u->mcr = v; break;
		case UART_SCR: u->scr = v; break;
		default: break;  /* FCR, LSR, MSR writes are ignored */
		}
	} else {
		switch (off) {
		case UART_THR: data[0] = (u->lcr & LCR_DLAB) ? u->dll : 0; break;
		case UART_IER: data[0] = (u->lcr & LCR_DLAB) ? u->dlm : u->ier; break;
		case UART_IIR: data[0] = IIR_NOINT; break;
		case UART_LCR: data[0] = u->lcr; break;
		case UART_MCR: data[0] = u->mcr; break;
		case UART_LSR: data[0] = LSR_THRE | LSR_TEMT; break;
		case UART_MSR: data[0] = 0xb0; break;  /* DCD, DSR, CTS */
		case UART_SCR: data[0] = u->scr; break;
		}
	}
	pthread_mutex_unlock(&u->lock);
}

int uart_init(struct vm *vm)
{
	struct uart *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	pthread_mutex_init(&u->lock, NULL);
	vm->uart = u;
	return io_bus_register(&vm->pio, MINIVMM_UART_PORT, 8, uart_io, u, "uart");
}

void uart_destroy(struct vm *vm)
{
	struct uart *u = vm->uart;

	if (!u)
		return;
	if (u->len)
		uart_flush(u);   /* a last line without its newline */
	pthread_mutex_destroy(&u->lock);
	free(u);
	vm->uart = NULL;
}
