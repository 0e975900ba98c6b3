/*
 * A small vsnprintf shared by the guest kernel and its ring-3 code (each
 * includes its own static copy, so user code never calls into the kernel).
 * Supports %d %i %u %x %X %p %s %c %% with '-', '0', width (or '*') and the
 * l, ll, z length modifiers.
 */
#ifndef GUEST_FMT_H
#define GUEST_FMT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct fmt_out {
	char *buf;
	size_t cap, len;
};

static inline void fmt_putc(struct fmt_out *o, char c)
{
	if (o->len + 1 < o->cap)
		o->buf[o->len] = c;
	o->len++;
}

static inline void fmt_pad(struct fmt_out *o, char c, int n)
{
	while (n-- > 0)
		fmt_putc(o, c);
}

/* Returns the length the full output would have; buf is always terminated. */
static inline size_t fmt_vsnprintf(char *buf, size_t cap, const char *f, va_list ap)
{
	struct fmt_out o = { buf, cap, 0 };

	for (; *f; f++) {
		int left = 0, zero = 0, width = 0, lng = 0;
		char tmp[24];
		int n = 0, neg = 0;
		uint64_t v;
		unsigned base = 10;
		const char *digits = "0123456789abcdef";

		if (*f != '%') {
			fmt_putc(&o, *f);
			continue;
		}
		f++;
		for (;; f++) {
			if (*f == '-')
				left = 1;
			else if (*f == '0')
				zero = 1;
			else
				break;
		}
		if (*f == '*') {
			width = va_arg(ap, int);
			f++;
		}
		while (*f >= '0' && *f <= '9')
			width = width * 10 + (*f++ - '0');
		while (*f == 'l' || *f == 'z') {
			lng++;
			f++;
		}
		switch (*f) {
		case 'c':
			fmt_pad(&o, ' ', left ? 0 : width - 1);
			fmt_putc(&o, (char)va_arg(ap, int));
			fmt_pad(&o, ' ', left ? width - 1 : 0);
			continue;
		case 's': {
			const char *s = va_arg(ap, const char *);
			int len = 0;

			if (!s)
				s = "(null)";
			while (s[len])
				len++;
			fmt_pad(&o, ' ', left ? 0 : width - len);
			while (*s)
				fmt_putc(&o, *s++);
			fmt_pad(&o, ' ', left ? width - len : 0);
			continue;
		}
		case 'd':
		case 'i': {
			int64_t sv = lng ? va_arg(ap, int64_t) : va_arg(ap, int);

			neg = sv < 0;
			v = neg ? (uint64_t)0 - (uint64_t)sv : (uint64_t)sv;
			break;
		}
		case 'u':
			v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			break;
		case 'X':
			digits = "0123456789ABCDEF";
			/* fall through */
		case 'x':
			v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			base = 16;
			break;
		case 'p':
			v = (uint64_t)(uintptr_t)va_arg(ap, void *);
			base = 16;
			fmt_putc(&o, '0');
			fmt_putc(&o, 'x');
			break;
		case '%':
			fmt_putc(&o, '%');
			continue;
		case '\0':
			f--;
			continue;
		default:
			fmt_putc(&o, '%');
			fmt_putc(&o, *f);
			continue;
		}
		do {
			tmp[n++] = digits[v % base];
			v /= base;
		} while (v);
		int total = n + neg;

		if (neg && zero)
			fmt_putc(&o, '-');
		fmt_pad(&o, zero && !left ? '0' : ' ', left ? 0 : width - n - neg);
		if (neg && !zero)
			fmt_putc(&o, '-');
		while (n)
			fmt_putc(&o, tmp[--n]);
		fmt_pad(&o, ' ', left ? width - total : 0);
	}
	if (cap)
		buf[o.len < cap ? o.len : cap - 1] = '\0';
	return o.len;
}

#endif
