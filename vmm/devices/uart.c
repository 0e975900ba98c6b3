/*
 * An 8250-compatible UART at 0x3f8 (COM1) on IRQ 4, the console of both
 * guests. Transmitted bytes go to stdout line by line and the transmitter
 * is always ready, so a polling guest never waits; bytes from stdin (when
 * it can be polled) arrive in a receive buffer. The interrupt line follows
 * the 8250's interrupt condition (received data, transmitter empty) as the
 * guest enables them in IER, which is what Linux's 8250 driver needs for a
 * console in both directions. Registers follow the 16450 layout, divisor
 * latch included, so ordinary drivers can program it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "vmm/devices/uart.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/log.h"
#include "vmm/lib/loop.h"

#define UART_THR 0   /* transmit / receive (DLAB=0), divisor low (DLAB=1) */
#define UART_IER 1   /* interrupt enable / divisor high */
#define UART_IIR 2   /* interrupt identification (read) / FIFO control (write) */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IRQ  4
#define LCR_DLAB  0x80
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define IER_RDI   0x01
#define IER_THRI  0x02
#define IIR_NOINT 0x01
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define RX_SIZE   4096

struct uart {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	bool thri;                  /* "transmitter empty" interrupt pending */
	int irq_level;
	uint8_t rx[RX_SIZE];        /* ring of received bytes */
	size_t rx_head, rx_len;
	bool rx_dropped;
	bool stdin_watched;
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

static uint8_t uart_iir(const struct uart *u)
{
	if ((u->ier & IER_RDI) && u->rx_len)
		return IIR_RDI;
	if ((u->ier & IER_THRI) && u->thri)
		return IIR_THRI;
	return IIR_NOINT;
}

/* The line follows the interrupt condition; the IOAPIC sees its edges. */
static void uart_update_irq(struct uart *u)
{
	int level = !(uart_iir(u) & IIR_NOINT);

	if (level != u->irq_level) {
		u->irq_level = level;
		vm_set_irq(u->vm, UART_IRQ, level);
	}
}

static void uart_transmit(struct uart *u, uint8_t v)
{
	u->line[u->len++] = (char)v;
	if (v == '\n' || u->len == sizeof(u->line))
		uart_flush(u);
	u->thri = true;             /* sent at once: the holding register is empty again */
}

static uint8_t uart_receive(struct uart *u)
{
	uint8_t v;

	if (!u->rx_len)
		return 0;
	v = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % RX_SIZE;
	u->rx_len--;
	return v;
}

static void uart_write(struct uart *u, uint64_t off, uint8_t v)
{
	switch (off) {
	case UART_THR:
		if (u->lcr & LCR_DLAB)
			u->dll = v;
		else
			uart_transmit(u, v);
		break;
	case UART_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		/* enabling the THR interrupt while THR is empty raises it */
		if ((v & IER_THRI) && !(u->ier & IER_THRI))
			u->thri = true;
		u->ier = v & 0x0f;
		break;
	case UART_LCR: u->lcr = v; break;
	case UART_MCR: u->mcr = v; break;
	case UART_SCR: u->scr = v; break;
	default: break;  /* FCR, LSR, MSR writes are ignored: no FIFO, as a 16450 */
	}
}

static uint8_t uart_read(struct uart *u, uint64_t off)
{
	uint8_t iir;

	switch (off) {
	case UART_THR: return (u->lcr & LCR_DLAB) ? u->dll : uart_receive(u);
	case UART_IER: return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case UART_IIR:
		iir = uart_iir(u);
		if (iir == IIR_THRI)
			u->thri = false;    /* reading IIR acknowledges "THR empty" */
		return iir;
	case UART_LCR: return u->lcr;
	case UART_MCR: return u->mcr;
	case UART_LSR: return LSR_THRE | LSR_TEMT | (u->rx_len ? LSR_DR : 0);
	case UART_MSR: return 0xb0;  /* DCD, DSR, CTS */
	default:       return u->scr;
	}
}

static void uart_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct uart *u = opaque;
	uint8_t v = data[0];

	/* wider accesses than a byte are not meaningful on an 8250 */
	if (!is_write)
		memset(data, 0, len);
	pthread_mutex_lock(&u->lock);
	if (is_write)
		uart_write(u, off, v);
	else
		data[0] = uart_read(u, off);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

/* Main loop: stdin has bytes for the guest. */
static void uart_stdin(void *opaque, uint32_t events)
{
	struct uart *u = opaque;
	uint8_t buf[512];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

	(void)events;
	if (n <= 0) {               /* end of input: stop watching */
		loop_del(u->vm->loop, STDIN_FILENO);
		u->stdin_watched = false;
		return;
	}
	pthread_mutex_lock(&u->lock);
	for (ssize_t i = 0; i < n; i++) {
		if (u->rx_len == RX_SIZE) {
			if (!u->rx_dropped)
				log_err("uart", "the guest is not reading its console: input dropped");
			u->rx_dropped = true;
			break;
		}
		u->rx[(u->rx_head + u->rx_len++) % RX_SIZE] = buf[i];
	}
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

/* The transmit path on a vCPU thread: console lines on stdout, and the
 * interrupt line (KVM_IRQ_LINE, kvm_sandbox_irq). */
static const struct sb_rule uart_vcpu_rules[] = {
	SB_ARG(write, 0, STDOUT_FILENO),
};
static const struct sb_list uart_vcpu_sandbox = SB_LIST("uart", uart_vcpu_rules);

int uart_init(struct vm *vm)
{
	struct uart *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	pthread_mutex_init(&u->lock, NULL);
	u->vm = vm;
	vm->uart = u;
	/* a terminal or pipe can be polled; /dev/null and regular files cannot and need not */
	if (vm->loop && loop_add(vm->loop, STDIN_FILENO, EPOLLIN, uart_stdin, u) == 0)
		u->stdin_watched = true;
	if (vm_sandbox_vcpu_add(vm, &uart_vcpu_sandbox) < 0 || vm_sandbox_vcpu_add(vm, &kvm_sandbox_irq) < 0)
		return -ENOSPC;
	return io_bus_register(&vm->pio, MINIVMM_UART_PORT, 8, uart_io, u, "uart");
}

void uart_destroy(struct vm *vm)
{
	struct uart *u = vm->uart;

	if (!u)
		return;
	if (u->stdin_watched && vm->loop)
		loop_del(vm->loop, STDIN_FILENO);
	if (u->len)
		uart_flush(u);   /* a last line without its newline */
	pthread_mutex_destroy(&u->lock);
	free(u);
	vm->uart = NULL;
}
