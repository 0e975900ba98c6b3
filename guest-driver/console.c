/*
 * Serial console on the 8250 at 0x3f8 (one lock for all cpus), kernel
 * printf, the exit port, and the libc-style helpers gcc may emit calls to.
 */
#include "fmt.h"
#include "kernel.h"

#define UART_THR 0
#define UART_LSR 5
#define LSR_THRE 0x20

static spinlock_t console_lock;

void console_write(const char *s, size_t n)
{
	spin_lock(&console_lock);
	for (size_t i = 0; i < n; i++) {
		while (!(inb(MINIVMM_UART_PORT + UART_LSR) & LSR_THRE))
			cpu_relax();
		outb(MINIVMM_UART_PORT + UART_THR, (uint8_t)s[i]);
	}
	spin_unlock(&console_lock);
}

size_t ksnprintf(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = fmt_vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	return n;
}

void kprintf(const char *fmt, ...)
{
	char buf[320];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = fmt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	console_write(buf, n);
}

void machine_exit(int status)
{
	kprintf("guest: exit status=%d\n", status);
	for (;;) {
		outl(MINIVMM_EXIT_PORT, (uint32_t)status);
		__asm__ volatile("cli; hlt");
	}
}

/* rep string instructions: one emulated instruction instead of a loop */
void *memset(void *d, int c, size_t n)
{
	void *r = d;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return r;
}

void *memcpy(void *d, const void *s, size_t n)
{
	void *r = d;

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return r;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}
