/*
 * Unit tests of --cpu-features parsing (vmm/kvm/cpuid.c): names map to the
 * CPUID leaf, subleaf, register and bit Linux reads them from, and a bad
 * list is refused with a line that says what is expected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "vmm/kvm/kvm.h"

static void expect_bit(const struct cpuid_hide *h, int i, uint32_t leaf, uint32_t sub, int reg, int bit)
{
	assert_int_equal(h->bits[i].leaf, leaf);
	assert_int_equal(h->bits[i].subleaf, sub);
	assert_int_equal(h->bits[i].reg, reg);
	assert_int_equal(h->bits[i].bit, bit);
}

static void test_names_map_to_bits(void **state)
{
	struct cpuid_hide h;
	char err[256];

	(void)state;
	assert_int_equal(cpuid_hide_parse("-xsave,-avx,-avx2,-x2apic,-cx16,-xsaves,-kvmclock", &h,
					  err, sizeof(err)), 0);
	assert_int_equal(h.n, 7);
	expect_bit(&h, 0, 1, 0xffffffff, 2, 26);       /* ECX.XSAVE */
	expect_bit(&h, 1, 1, 0xffffffff, 2, 28);       /* ECX.AVX */
	expect_bit(&h, 2, 7, 0, 1, 5);                 /* leaf 7 EBX.AVX2 */
	expect_bit(&h, 3, 1, 0xffffffff, 2, 21);       /* ECX.X2APIC */
	expect_bit(&h, 4, 1, 0xffffffff, 2, 13);       /* ECX.CX16 */
	expect_bit(&h, 5, 0xd, 1, 0, 3);               /* leaf 0xd.1 EAX.XSAVES */
	expect_bit(&h, 6, 0x40000001, 0xffffffff, 0, 3);
	assert_int_equal(cpuid_hide_parse("", &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 0);
}

static void test_bad_lists_refused(void **state)
{
	struct cpuid_hide h;
	char err[256];

	(void)state;
	assert_true(cpuid_hide_parse("-avx,-nosuchthing", &h, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "unknown feature 'nosuchthing'"));
	assert_true(cpuid_hide_parse("+avx", &h, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "-NAME"));
	assert_true(cpuid_hide_parse("-avx,,-cx16", &h, err, sizeof(err)) < 0);
	assert_true(cpuid_hide_parse("-", &h, err, sizeof(err)) < 0);
	char many[1024] = "";
	for (int i = 0; i < 40; i++)
		strcat(many, i ? ",-avx" : "-avx");
	assert_true(cpuid_hide_parse(many, &h, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "at most"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_map_to_bits),
		cmocka_unit_test(test_bad_lists_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
