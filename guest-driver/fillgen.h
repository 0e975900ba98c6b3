/*
 * fillgen: the deterministic page contents of the fill workload, shared by
 * the guest's ring-3 code and the host tool tests/tools/fillsum.c so both
 * compute the same checksum. Static inline, no kernel or libc dependencies.
 *
 * Page i at generation g has a kind chosen from the mix (zero, duplicate,
 * random, text) by a hash of (seed, i, g). Round 1 writes every page at
 * generation 0; round r >= 2 rewrites the pages whose selector
 * (hash % FILLGEN_REWRITE_PERIOD) equals r % FILLGEN_REWRITE_PERIOD with
 * generation r - 1, so about one eighth of memory changes each round.
 * The checksum of a round is the 64-bit wrapping sum over all pages of
 * fillgen_hash_page(page contents, i): independent of how pages are split
 * between cpus.
 */
#ifndef GUEST_FILLGEN_H
#define GUEST_FILLGEN_H

#include <stddef.h>
#include <stdint.h>

#define FILLGEN_PAGE           4096u
#define FILLGEN_WORDS          (FILLGEN_PAGE / 8)
#define FILLGEN_DUP_PATTERNS   4u
#define FILLGEN_REWRITE_PERIOD 8u

enum fillgen_kind { FILLGEN_ZERO, FILLGEN_DUP, FILLGEN_RANDOM, FILLGEN_TEXT, FILLGEN_NKINDS };

struct fillgen_mix {
	uint32_t pct[FILLGEN_NKINDS];   /* percent of pages of each kind, sum 100 */
};

static inline uint64_t fillgen_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* splitmix64 stream */
static inline uint64_t fillgen_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	return fillgen_mix64(*s);
}

static inline uint64_t fillgen_key(uint64_t seed, uint64_t index, uint64_t gen, uint64_t salt)
{
	return fillgen_mix64(fillgen_mix64(seed ^ salt) + fillgen_mix64(index * 0x632be59bd9b4e019ULL + gen));
}

/* Does round r (>= 2) rewrite page i? */
static inline int fillgen_rewritten(uint64_t seed, uint64_t index, uint64_t round)
{
	uint64_t sel = fillgen_key(seed, index, 0, 0x5e1ec7) % FILLGEN_REWRITE_PERIOD;

	return round >= 2 && round % FILLGEN_REWRITE_PERIOD == sel;
}

/* Generation of page i after round r (rounds count from 1). */
static inline uint64_t fillgen_gen(uint64_t seed, uint64_t index, uint64_t round)
{
	uint64_t sel = fillgen_key(seed, index, 0, 0x5e1ec7) % FILLGEN_REWRITE_PERIOD;
	uint64_t back = (round + FILLGEN_REWRITE_PERIOD - sel) % FILLGEN_REWRITE_PERIOD;

	/* the last rewriting round is round - back, if that is round 2 or later */
	if (round < back + 2)
		return 0;
	return round - back - 1;
}

static inline enum fillgen_kind fillgen_kind_of(uint64_t seed, const struct fillgen_mix *m,
						uint64_t index, uint64_t gen)
{
	uint32_t pct = (uint32_t)(fillgen_key(seed, index, gen, 0x6b1d) % 100);
	uint32_t acc = 0;

	for (int k = 0; k < FILLGEN_NKINDS; k++) {
		acc += m->pct[k];
		if (pct < acc)
			return (enum fillgen_kind)k;
	}
	return FILLGEN_ZERO;
}

static const char *const fillgen_words[64] = {
	"the", "memory", "page", "guest", "host", "balloon", "kernel", "virtual",
	"machine", "of", "and", "to", "in", "is", "that", "for",
	"compress", "zero", "duplicate", "random", "text", "with", "as", "on",
	"huge", "table", "fault", "cold", "hot", "store", "data", "block",
	"a", "an", "it", "by", "from", "at", "be", "this",
	"reclaim", "inflate", "deflate", "report", "free", "stats", "vcpu", "queue",
	"descriptor", "ring", "index", "buffer", "address", "physical", "mapping", "translation",
	"quick", "brown", "fox", "jumps", "over", "lazy", "dog", "again",
};

static inline void fillgen_text(uint64_t key, uint8_t *p)
{
	uint64_t s = key;
	uint32_t off = 0, col = 0;

	while (off < FILLGEN_PAGE) {
		const char *w = fillgen_words[fillgen_next(&s) & 63];

		while (*w && off < FILLGEN_PAGE) {
			p[off++] = (uint8_t)*w++;
			col++;
		}
		if (off < FILLGEN_PAGE) {
			p[off++] = col > 64 ? '\n' : ' ';
			col = col > 64 ? 0 : col + 1;
		}
	}
}

static inline void fillgen_stream(uint64_t key, uint64_t *w)
{
	uint64_t s = key;

	for (uint32_t i = 0; i < FILLGEN_WORDS; i++)
		w[i] = fillgen_next(&s);
}

/* Writes the contents of page index at generation gen into w (4 KiB). */
static inline void fillgen_page(uint64_t seed, const struct fillgen_mix *m, uint64_t index,
				uint64_t gen, uint64_t *w)
{
	uint64_t h = fillgen_key(seed, index, gen, 0x7a9e);

	switch (fillgen_kind_of(seed, m, index, gen)) {
	case FILLGEN_ZERO:
		for (uint32_t i = 0; i < FILLGEN_WORDS; i++)
			w[i] = 0;
		break;
	case FILLGEN_DUP:
		fillgen_stream(fillgen_key(seed, h % FILLGEN_DUP_PATTERNS, 0, 0xd0b), w);
		break;
	case FILLGEN_RANDOM:
		fillgen_stream(h, w);
		break;
	default:
		fillgen_text(h, (uint8_t *)w);
		break;
	}
}

static inline uint64_t fillgen_hash_page(const uint64_t *w, uint64_t index)
{
	uint64_t a = fillgen_mix64(index ^ 0xfeedULL), b = ~a;

	for (uint32_t i = 0; i < FILLGEN_WORDS; i += 2) {
		a = (a ^ w[i]) * 0x9e3779b97f4a7c15ULL;
		b = (b ^ w[i + 1]) * 0xc2b2ae3d27d4eb4fULL;
		a = (a << 27) | (a >> 37);
		b = (b << 31) | (b >> 33);
	}
	return fillgen_mix64(a ^ (b * 3));
}

/* "64M", "1G", "4096", "512K" -> bytes; -1 on garbage, overflow or zero. */
static inline int fillgen_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;

	if (!s || *s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	switch (*s) {
	case 'k': case 'K': mult = 1ULL << 10; s++; break;
	case 'm': case 'M': mult = 1ULL << 20; s++; break;
	case 'g': case 'G': mult = 1ULL << 30; s++; break;
	case 't': case 'T': mult = 1ULL << 40; s++; break;
	default: break;
	}
	if (*s || v == 0 || v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* Decimal or 0x hex -> value; -1 on garbage or overflow. */
static inline int fillgen_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned base = 10;

	if (!s || !*s)
		return -1;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!*s)
			return -1;
	}
	for (; *s; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -1;
		if (v > (UINT64_MAX - d) / base)
			return -1;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

/* "zero:25,dup:25,random:25,text:25" (any subset, summing to 100) -> mix; -1 if bad. */
static inline int fillgen_parse_mix(const char *s, struct fillgen_mix *m)
{
	static const char *const names[FILLGEN_NKINDS] = { "zero", "dup", "random", "text" };
	uint32_t sum = 0;

	for (int k = 0; k < FILLGEN_NKINDS; k++)
		m->pct[k] = 0;
	if (!s || !*s)
		return -1;
	while (*s) {
		int k, found = -1;
		uint32_t v = 0;

		for (k = 0; k < FILLGEN_NKINDS; k++) {
			const char *n = names[k], *p = s;

			while (*n && *p == *n) {
				n++;
				p++;
			}
			if (!*n && *p == ':') {
				found = k;
				s = p + 1;
				break;
			}
		}
		if (found < 0 || *s < '0' || *s > '9')
			return -1;
		for (; *s >= '0' && *s <= '9'; s++) {
			v = v * 10 + (uint32_t)(*s - '0');
			if (v > 100)
				return -1;
		}
		if (*s == ',')
			s++;
		else if (*s)
			return -1;
		m->pct[found] = v;
		sum += v;
	}
	return sum == 100 ? 0 : -1;
}

#endif
