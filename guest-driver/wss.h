/*
 * wss: the hot-size schedule of workload=wss ("64M,512M@30s,128M@90s"),
 * parsed by the kernel from the command line into struct uparams. Static
 * inline and free of kernel calls so host tools can share it.
 */
#ifndef GUEST_WSS_H
#define GUEST_WSS_H

#include <stdint.h>

#include "fillgen.h"
#include "uapi.h"

/*
 * Each comma-separated step is SIZE[@SECONDS[s]]; the first step has no @
 * (or @0) and later ones have strictly increasing times. Returns 0 and fills
 * wss_hot/wss_at_s/wss_steps, or -1 on anything else (the caller says what
 * is expected). Sizes are rounded up to 4 KiB by the caller's size checks.
 */
static inline int wss_parse_hot(const char *s, struct uparams *p)
{
	uint32_t n = 0;

	if (!s || !*s)
		return -1;
	while (*s) {
		char tok[32], at[24];
		uint32_t tl = 0, al = 0;
		uint64_t size, secs = 0;

		while (*s && *s != ',' && *s != '@') {
			if (tl + 1 >= sizeof(tok))
				return -1;
			tok[tl++] = *s++;
		}
		tok[tl] = '\0';
		if (*s == '@') {
			s++;
			while (*s && *s != ',' && *s != 's') {
				if (al + 1 >= sizeof(at))
					return -1;
				at[al++] = *s++;
			}
			at[al] = '\0';
			if (*s == 's')
				s++;
			if (fillgen_parse_u64(at, &secs) < 0)
				return -1;
		} else if (n > 0) {
			return -1;      /* only the first step may leave out its time */
		}
		if (*s == ',') {
			s++;
			if (!*s)
				return -1;
		} else if (*s) {
			return -1;
		}
		if (n >= UPARAM_WSS_STEPS || fillgen_parse_size(tok, &size) < 0)
			return -1;
		if ((n == 0 && secs != 0) || (n > 0 && secs <= p->wss_at_s[n - 1]))
			return -1;
		p->wss_hot[n] = size;
		p->wss_at_s[n] = secs;
		n++;
	}
	p->wss_steps = n;
	return 0;
}

#endif
