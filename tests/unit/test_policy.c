/*
 * Unit tests of mm/policy*.c: Clock's cold threshold and second chance,
 * 2Q's scan resistance (pages that proved reuse by refaulting while their
 * ghost lived are evicted after one-off scan pages), the registry, and the
 * adaptive cold-age controller.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mm/policy.h"

#define N 1024

static void resident(struct mm_pagestate *ps, uint64_t lo, uint64_t hi, unsigned age)
{
	for (uint64_t i = lo; i < hi; i++) {
		ps_set_state(ps, i, MM_PAGE_RESIDENT, 0);
		for (unsigned a = 0; a < age; a++)
			ps_age(ps, i, false);
	}
}

static bool contains(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static void test_registry(void **state)
{
	(void)state;
	assert_ptr_equal(mm_policy_find("clock"), &mm_policy_clock);
	assert_ptr_equal(mm_policy_find("2q"), &mm_policy_2q);
	assert_null(mm_policy_find("lru"));
}

static void test_clock(void **state)
{
	struct mm_pagestate ps;
	struct mm_policy p;
	uint64_t v[N];
	size_t n;

	(void)state;
	assert_int_equal(ps_init(&ps, N, 2 << 20), 0);
	assert_int_equal(mm_policy_init(&p, &mm_policy_clock, &ps), 0);
	resident(&ps, 0, 100, 5);     /* cold */
	resident(&ps, 100, 200, 1);   /* warm */
	ps_set_state(&ps, 300, MM_PAGE_COMPRESSED, 1);
	ps_flag_set(&ps, 10, PS_REF);                 /* refaulted recently */
	ps_update(&ps, 11, PS_SKIP, PS_SKIP);         /* incompressible */

	n = p.ops->select(&p, 3, false, v, N);
	/* Clock may name a page on both turns; count distinct ones. */
	size_t distinct = 0;
	for (uint64_t i = 0; i < N; i++)
		if (contains(v, n, i))
			distinct++;
	assert_false(contains(v, n, 150));          /* too young */
	assert_false(contains(v, n, 300));          /* not resident */
	assert_false(contains(v, n, 11));           /* skipped */
	assert_true(contains(v, n, 0) && contains(v, n, 99));
	/* The referenced page lost its bit on the first turn and was taken on the second. */
	assert_false(ps_get(&ps, 10) & PS_REF);
	assert_int_equal(distinct, 99);

	/* A limited batch stops early and the hand resumes where it stopped. */
	p.hand = 0;
	ps_flag_set(&ps, 0, PS_REF);
	n = p.ops->select(&p, 3, false, v, 10);
	assert_int_equal(n, 10);
	assert_false(contains(v, n, 0));            /* second chance */
	assert_int_equal(v[0], 1);
	n = p.ops->select(&p, 3, false, v, 1);
	assert_int_equal(v[0], 12);                 /* 11 is skipped */

	/* force: any resident page, references ignored, one turn. */
	p.hand = 0;
	n = p.ops->select(&p, 1000, true, v, N);
	assert_int_equal(n, 199);
	assert_true(contains(v, n, 150));
	mm_policy_fini(&p);
	ps_fini(&ps);
}

static void test_2q_scan_resistance(void **state)
{
	struct mm_pagestate ps;
	struct mm_policy p;
	uint64_t v[N];
	size_t n;

	(void)state;
	assert_int_equal(ps_init(&ps, N, 2 << 20), 0);
	assert_int_equal(mm_policy_init(&p, &mm_policy_2q, &ps), 0);
	assert_true(p.meta_bytes > 0);
	/* Working set 0..63: evicted once, refaulted while their ghosts lived -> hot. */
	resident(&ps, 0, 64, 0);
	for (uint64_t i = 0; i < 64; i++) {
		p.ops->evicted(&p, i);
		ps_set_state(&ps, i, MM_PAGE_COMPRESSED, 1);
		assert_true(ps_get(&ps, i) & PS_GHOST);
	}
	for (uint64_t i = 0; i < 64; i++) {
		ps_set_state(&ps, i, MM_PAGE_RESIDENT, 0);
		p.ops->refault(&p, i);
		assert_true(ps_get(&ps, i) & PS_HOT);
	}
	/* A one-off scan touched 64..511; everything is now equally old. */
	resident(&ps, 64, 512, 0);
	for (uint64_t i = 0; i < 512; i++)
		for (int a = 0; a < 4; a++)
			ps_age(&ps, i, false);

	/* Asking for the scan's worth of victims takes only scan pages. */
	p.hand = 0;
	n = p.ops->select(&p, 2, false, v, 448);
	assert_int_equal(n, 448);
	for (size_t i = 0; i < n; i++)
		assert_true(v[i] >= 64);

	/* Clock, same history, would have taken the working set first. */
	struct mm_policy c;
	assert_int_equal(mm_policy_init(&c, &mm_policy_clock, &ps), 0);
	for (uint64_t i = 0; i < 64; i++)
		ps_flag_clear(&ps, i, PS_REF);
	n = c.ops->select(&c, 2, false, v, 448);
	assert_true(contains(v, n, 0));
	mm_policy_fini(&c);

	/* Hot pages go only when twice as cold and nothing else is left. */
	for (uint64_t i = 64; i < 512; i++)
		ps_set_state(&ps, i, MM_PAGE_ZERO, 0);
	for (uint64_t i = 0; i < 64; i++)
		ps_flag_clear(&ps, i, PS_REF);
	n = p.ops->select(&p, 2, false, v, N);
	assert_int_equal(n, 0);                      /* age 4 < 2*2+1 */
	for (uint64_t i = 0; i < 64; i++)
		ps_age(&ps, i, false);
	n = p.ops->select(&p, 2, false, v, N);
	assert_int_equal(n, 64);

	/* A page evicted without coming back does not become hot. */
	p.ops->evicted(&p, 600);
	ps_set_state(&ps, 600, MM_PAGE_RESIDENT, 0);
	ps_flag_clear(&ps, 600, PS_GHOST);
	p.ops->refault(&p, 600);
	assert_false(ps_get(&ps, 600) & PS_HOT);
	mm_policy_fini(&p);
	ps_fini(&ps);
}

static void test_controller(void **state)
{
	struct mm_ctrl c;

	(void)state;
	mm_ctrl_init(&c, 2, 100);
	assert_true(c.cur_age == 2);
	/* 1000 refaults/s against a target of 100: the threshold rises. */
	double a1 = mm_ctrl_update(&c, 1000, 1.0);
	assert_true(a1 > 2);
	double a2 = mm_ctrl_update(&c, 1000, 1.0);
	assert_true(a2 > a1);
	/* In the band between half the target and the target: hold. */
	assert_true(mm_ctrl_update(&c, 70, 1.0) == a2);
	/* Well under: walk down, never below the floor. */
	double a3 = mm_ctrl_update(&c, 0, 1.0);
	assert_true(a3 < a2);
	for (int i = 0; i < 100; i++)
		mm_ctrl_update(&c, 0, 1.0);
	assert_true(c.cur_age == 2);
	/* Bounded above. */
	for (int i = 0; i < 100; i++)
		mm_ctrl_update(&c, 1000000, 1.0);
	assert_true(c.cur_age == c.max_age);
	/* Target 0: off. */
	mm_ctrl_init(&c, 5, 0);
	assert_true(mm_ctrl_update(&c, 1000000, 1.0) == 5);
	/* Zero cold age still rises from 0. */
	mm_ctrl_init(&c, 0, 10);
	assert_true(mm_ctrl_update(&c, 1000, 1.0) >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_clock),
		cmocka_unit_test(test_2q_scan_resistance),
		cmocka_unit_test(test_controller),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
