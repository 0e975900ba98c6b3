/*
 * Unit tests of mm/store.c: round trips, reference counts, dedup proven on
 * the bytes (a forced hash collision must not share), the incompressible
 * path (refused, or raw when allowed), checksum failure detection, the raw
 * (compress=off) mode, and concurrent gets while puts go on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mm/store.h"

#define PG MM_STORE_PAGE

static void fill_text(uint8_t *p, unsigned seed)
{
	static const char *const words[] = { "memory ", "guest ", "page ", "zstd ", "balloon ",
					     "kernel ", "the ", "of ", "and ", "cold " };
	size_t off = 0;
	unsigned x = seed * 2654435761u + 1;

	while (off < PG) {
		x = x * 1103515245u + 12345u;
		const char *w = words[(x >> 16) % 10];
		size_t n = strlen(w);
		if (off + n > PG)
			n = PG - off;
		memcpy(p + off, w, n);
		off += n;
	}
}

static void fill_random(uint8_t *p, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < PG; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
}

static struct mm_store *new_store(bool compress, bool dedup)
{
	struct mm_store_config c = { .compress = compress, .dedup = dedup, .level = 1, .max_csize = 3072 };
	struct mm_store *s = mm_store_new(&c);
	assert_non_null(s);
	return s;
}

/* A new owner tag per put: each put stands for a different guest page
 * unless a test names the owner itself. */
static uint64_t next_owner(void)
{
	static uint64_t n;
	return ++n;
}

static void test_roundtrip_and_refcount(void **state)
{
	struct mm_store *s = new_store(true, true);
	uint8_t a[PG], b[PG], out[PG];
	uint32_t ha, hb, ha2;
	bool dd;
	struct mm_store_stats st;

	(void)state;
	fill_text(a, 1);
	fill_text(b, 2);
	assert_int_equal(mm_store_put(s, a, next_owner(), false, &ha, &dd), 0);
	assert_false(dd);
	assert_int_equal(mm_store_put(s, b, next_owner(), false, &hb, &dd), 0);
	assert_false(dd);
	assert_int_not_equal(ha, hb);
	assert_true(mm_store_csize(s, ha) < PG / 2);   /* text compresses */

	/* Same bytes again: shared, one more reference, nothing new stored. */
	assert_int_equal(mm_store_put(s, a, next_owner(), false, &ha2, &dd), 0);
	assert_true(dd);
	assert_int_equal(ha2, ha);
	assert_int_equal(mm_store_refcount(s, ha), 2);
	mm_store_get_stats(s, &st);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.refs, 3);
	assert_int_equal(st.dedup_hits, 1);

	assert_int_equal(mm_store_get(s, ha, out), 0);
	assert_memory_equal(out, a, PG);
	assert_int_equal(mm_store_get(s, hb, out), 0);
	assert_memory_equal(out, b, PG);

	mm_store_release(s, ha);
	assert_int_equal(mm_store_refcount(s, ha), 1);
	assert_int_equal(mm_store_get(s, ha, out), 0);   /* still held by one page */
	assert_memory_equal(out, a, PG);
	mm_store_release(s, ha);
	assert_int_equal(mm_store_refcount(s, ha), 0);
	assert_int_equal(mm_store_get(s, ha, out), -EINVAL);
	mm_store_get_stats(s, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.stored_bytes, mm_store_csize(s, hb));

	/* A freed entry is reused and the new content is not confused with the old. */
	uint32_t hc;
	fill_text(a, 3);
	assert_int_equal(mm_store_put(s, a, next_owner(), false, &hc, &dd), 0);
	assert_false(dd);
	assert_int_equal(mm_store_get(s, hc, out), 0);
	assert_memory_equal(out, a, PG);
	mm_store_release(s, hb);
	mm_store_release(s, hc);
	mm_store_get_stats(s, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.stored_bytes, 0);
	mm_store_free(s);
}

static uint64_t const_hash(const void *page)
{
	(void)page;
	return 42;
}

static void test_forced_collision_not_shared(void **state)
{
	struct mm_store *s = new_store(true, true);
	uint8_t a[PG], b[PG], out[PG];
	uint32_t ha, hb, ha2;
	bool dd;
	struct mm_store_stats st;

	(void)state;
	/* Every page hashes (and checksums) alike: only the byte comparison tells them apart. */
	mm_store_set_hash(s, const_hash);
	fill_text(a, 10);
	memcpy(b, a, PG);
	b[PG - 1] ^= 1;   /* differs in one bit */
	assert_int_equal(mm_store_put(s, a, next_owner(), false, &ha, &dd), 0);
	assert_int_equal(mm_store_put(s, b, next_owner(), false, &hb, &dd), 0);
	assert_false(dd);
	assert_int_not_equal(ha, hb);
	mm_store_get_stats(s, &st);
	assert_true(st.hash_collisions >= 1);
	assert_int_equal(mm_store_get(s, ha, out), 0);
	assert_memory_equal(out, a, PG);
	assert_int_equal(mm_store_get(s, hb, out), 0);
	assert_memory_equal(out, b, PG);
	/* Real duplicates still share among colliding entries. */
	assert_int_equal(mm_store_put(s, b, next_owner(), false, &ha2, &dd), 0);
	assert_true(dd);
	assert_int_equal(ha2, hb);
	mm_store_free(s);
}

static void test_incompressible(void **state)
{
	struct mm_store *s = new_store(true, true);
	uint8_t r[PG], out[PG];
	uint32_t h;
	bool dd;
	struct mm_store_stats st;

	(void)state;
	fill_random(r, 7);
	assert_int_equal(mm_store_put(s, r, 42, false, &h, &dd), -E2BIG);
	mm_store_get_stats(s, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.incompressible, 1);
	/* The same page offered again (after its skip period) is no duplicate
	 * of itself: never stored raw, however often it comes back. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(mm_store_put(s, r, 42, false, &h, &dd), -E2BIG);
	mm_store_get_stats(s, &st);
	assert_int_equal(st.entries, 0);
	/* The same bytes from another page: likely duplicated, kept raw to share. */
	uint32_t h2, h3;
	assert_int_equal(mm_store_put(s, r, 43, false, &h2, &dd), 0);
	assert_false(dd);
	assert_int_equal(mm_store_csize(s, h2), PG);
	assert_int_equal(mm_store_put(s, r, next_owner(), false, &h3, &dd), 0);
	assert_true(dd);
	assert_int_equal(h3, h2);
	mm_store_release(s, h2);
	mm_store_release(s, h3);
	fill_random(r, 8);
	/* Allowed raw (a huge page goes whole): stored as is, still verified. */
	assert_int_equal(mm_store_put(s, r, next_owner(), true, &h, &dd), 0);
	assert_int_equal(mm_store_csize(s, h), PG);
	assert_int_equal(mm_store_get(s, h, out), 0);
	assert_memory_equal(out, r, PG);
	mm_store_release(s, h);
	mm_store_free(s);
}

static void test_checksum_failure(void **state)
{
	struct mm_store *s = new_store(true, true);
	uint8_t a[PG], out[PG];
	uint32_t h, hr;
	bool dd;
	struct mm_store_stats st;

	(void)state;
	fill_text(a, 5);
	assert_int_equal(mm_store_put(s, a, next_owner(), false, &h, &dd), 0);
	/* Flip bits at several places of the compressed data: each must be caught. */
	for (uint32_t at = 0; at < mm_store_csize(s, h); at += 97) {
		assert_int_equal(mm_store_corrupt(s, h, at), 0);
		assert_int_equal(mm_store_get(s, h, out), -EBADMSG);
		assert_int_equal(mm_store_corrupt(s, h, at), 0);   /* flip back */
		assert_int_equal(mm_store_get(s, h, out), 0);
		assert_memory_equal(out, a, PG);
	}
	fill_random(a, 9);
	assert_int_equal(mm_store_put(s, a, next_owner(), true, &hr, &dd), 0);
	assert_int_equal(mm_store_corrupt(s, hr, 1234), 0);
	assert_int_equal(mm_store_get(s, hr, out), -EBADMSG);
	mm_store_get_stats(s, &st);
	assert_true(st.checksum_failures >= 2);
	mm_store_free(s);
}

static void test_raw_dedup_only(void **state)
{
	struct mm_store *s = new_store(false, true);
	uint8_t a[PG], b[PG], out[PG];
	uint32_t h1, h2;
	bool dd;

	(void)state;
	fill_random(a, 3);
	fill_random(b, 5);
	/* with compression off a unique page would only move into the store: refused */
	assert_int_equal(mm_store_put(s, b, next_owner(), false, &h1, &dd), -E2BIG);
	/* the second sighting of the same content is kept raw, and later copies share it */
	assert_int_equal(mm_store_put(s, a, 7, false, &h1, &dd), -E2BIG);
	assert_int_equal(mm_store_put(s, a, 7, false, &h1, &dd), -E2BIG);   /* itself again */
	assert_int_equal(mm_store_put(s, a, 8, false, &h1, &dd), 0);
	assert_false(dd);
	assert_int_equal(mm_store_csize(s, h1), PG);
	assert_int_equal(mm_store_put(s, a, next_owner(), false, &h2, &dd), 0);
	assert_true(dd);
	assert_int_equal(h1, h2);
	assert_int_equal(mm_store_get(s, h1, out), 0);
	assert_memory_equal(out, a, PG);
	/* a huge page going whole may always be kept raw */
	assert_int_equal(mm_store_put(s, b, next_owner(), true, &h2, &dd), 0);
	assert_false(dd);
	mm_store_release(s, h1);
	mm_store_release(s, h1);
	mm_store_release(s, h2);
	mm_store_free(s);
}

static void test_dedup_off(void **state)
{
	struct mm_store *s = new_store(true, false);
	uint8_t a[PG];
	uint32_t h1, h2;
	bool dd;

	(void)state;
	fill_text(a, 4);
	assert_int_equal(mm_store_put(s, a, next_owner(), false, &h1, &dd), 0);
	assert_int_equal(mm_store_put(s, a, next_owner(), false, &h2, &dd), 0);
	assert_false(dd);
	assert_int_not_equal(h1, h2);
	mm_store_free(s);
}

/* Many entries: the index grows, every page still comes back right. */
struct mt_arg {
	struct mm_store *s;
	uint32_t *h;
	int n;
	int bad;
};

static void *mt_reader(void *p)
{
	struct mt_arg *a = p;
	uint8_t want[PG], out[PG];

	for (int round = 0; round < 3; round++)
		for (int i = 0; i < a->n; i++) {
			fill_text(want, (unsigned)i + 100);
			if (mm_store_get(a->s, a->h[i], out) || memcmp(out, want, PG))
				a->bad++;
		}
	return NULL;
}

static void test_store_max_bounds_held_bytes(void **state)
{
	struct mm_store_config c = { .compress = true, .dedup = true, .level = 1, .max_csize = 3072,
				     .max_bytes = 16384 };
	struct mm_store *s = mm_store_new(&c);
	uint8_t p[PG], out[PG];
	uint32_t h[64], hd;
	struct mm_store_stats st;
	bool dd;
	int n = 0, ret = 0;

	(void)state;
	assert_non_null(s);
	/* distinct text pages until the bound refuses one: never over it */
	while (n < 64) {
		fill_text(p, 100 + (unsigned)n);
		ret = mm_store_put(s, p, next_owner(), false, &h[n], &dd);
		if (ret)
			break;
		n++;
	}
	assert_int_equal(ret, -ENOSPC);
	assert_true(n > 2);
	mm_store_get_stats(s, &st);
	assert_true(st.stored_bytes <= 16384);
	assert_int_equal(st.full, 1);
	/* a duplicate of held bytes costs nothing: still shared when full */
	fill_text(p, 100);
	assert_int_equal(mm_store_put(s, p, next_owner(), false, &hd, &dd), 0);
	assert_true(dd);
	assert_int_equal(hd, h[0]);
	/* everything held reads back; releasing makes room again */
	for (int i = 0; i < n; i++) {
		uint8_t want[PG];

		fill_text(want, 100 + (unsigned)i);
		assert_int_equal(mm_store_get(s, h[i], out), 0);
		assert_memory_equal(out, want, PG);
	}
	mm_store_release(s, h[1]);
	fill_text(p, 100 + (unsigned)n);
	assert_int_equal(mm_store_put(s, p, next_owner(), false, &h[n], &dd), 0);
	mm_store_free(s);
}

static void test_many_and_concurrent(void **state)
{
	struct mm_store *s = new_store(true, true);
	enum { N = 3000 };
	uint32_t *h = calloc(N, sizeof(*h));
	uint8_t a[PG];
	bool dd;
	pthread_t t;
	struct mt_arg arg = { .s = s, .h = h, .n = N / 2 };

	(void)state;
	for (int i = 0; i < N / 2; i++) {
		fill_text(a, (unsigned)i + 100);
		assert_int_equal(mm_store_put(s, a, next_owner(), false, &h[i], &dd), 0);
	}
	/* Reads of held entries proceed while puts grow the store. */
	assert_int_equal(pthread_create(&t, NULL, mt_reader, &arg), 0);
	for (int i = N / 2; i < N; i++) {
		fill_text(a, (unsigned)i + 100);
		assert_int_equal(mm_store_put(s, a, next_owner(), false, &h[i], &dd), 0);
	}
	pthread_join(t, NULL);
	assert_int_equal(arg.bad, 0);
	arg.n = N;
	mt_reader(&arg);
	assert_int_equal(arg.bad, 0);
	free(h);
	mm_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_and_refcount),
		cmocka_unit_test(test_forced_collision_not_shared),
		cmocka_unit_test(test_incompressible),
		cmocka_unit_test(test_checksum_failure),
		cmocka_unit_test(test_raw_dedup_only),
		cmocka_unit_test(test_dedup_off),
		cmocka_unit_test(test_many_and_concurrent),
		cmocka_unit_test(test_store_max_bounds_held_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
