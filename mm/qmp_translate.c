/*
 * qmp_translate: the translation inspector's QMP commands, registered with
 * the manager as their context (translate.h):
 *
 *   query-translation {"gva": ADDR, "cpu": N}   guest-virtual, vCPU N (0)
 *   query-translation {"gpa": ADDR}             from the second stage
 *   query-translation-summary                   every stage's page sizes
 *
 * ADDR is a JSON integer or a string ("0xffff800000001000", decimal too):
 * JSON integers are signed 64-bit, so an upper-half guest-virtual address
 * is either a string or its negative two's-complement value. Addresses are
 * byte addresses; the answer names the page that holds the byte.
 * Main thread (reading a vCPU's registers pauses the vCPUs).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mm/manager_priv.h"
#include "mm/translate.h"
#include "vmm/qmp/qmp.h"

/* x86's widest guest-physical address space: 52 bits. */
#define GPA_LIMIT (1ull << 52)

/* -ENOENT when absent; -EINVAL with err for a value that is no address. */
static int arg_addr(json_t *args, const char *key, bool is_gpa, uint64_t *out, char *err, size_t errlen)
{
	json_t *v = json_is_object(args) ? json_object_get(args, key) : NULL;

	if (!v)
		return -ENOENT;
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);

		if (n < 0 && is_gpa) {
			snprintf(err, errlen, "Parameter 'gpa' is negative: a guest-physical address is 0 "
				 "or more (use a string such as \"0xfee00000\")");
			return -EINVAL;
		}
		*out = (uint64_t)n;
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;

		errno = 0;
		*out = strtoull(s, &end, 0);
		if (!*s || *end || errno || s[0] == '-') {
			snprintf(err, errlen, "Parameter '%s' is not an address: '%s' (give an integer, or a "
				 "string such as \"0x7f0000001000\")", key, s);
			return -EINVAL;
		}
	} else {
		snprintf(err, errlen, "Invalid parameter type for '%s', expected: integer or string", key);
		return -EINVAL;
	}
	if (is_gpa && *out >= GPA_LIMIT) {
		snprintf(err, errlen, "Parameter 'gpa' 0x%" PRIx64 " is out of range: guest-physical "
			 "addresses have at most 52 bits", *out);
		return -EINVAL;
	}
	return 0;
}

static json_t *qmp_query_translation(void *ctx, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "gva", "gpa", "cpu", NULL };
	struct mm_manager *m = ctx;
	uint64_t gva = 0, gpa = 0, cpu = 0;
	int rv, rp, rc;

	if (qmp_args_only(args, allowed, err, errlen))
		return NULL;
	rv = arg_addr(args, "gva", false, &gva, err, errlen);
	if (rv == -EINVAL)
		return NULL;
	rp = arg_addr(args, "gpa", true, &gpa, err, errlen);
	if (rp == -EINVAL)
		return NULL;
	rc = qmp_arg_u64(args, "cpu", false, &cpu, err, errlen);
	if (rc == -EINVAL)
		return NULL;
	if (!rv && !rp)
		return qmp_error(err, errlen, NULL, "give either 'gva' (with 'cpu') or 'gpa', not both");
	if (rv && rp)
		return qmp_error(err, errlen, NULL, "Parameter 'gva' or 'gpa' is missing");
	if (!rp && !rc)
		return qmp_error(err, errlen, NULL, "'cpu' goes with 'gva': a guest-physical address "
				 "does not depend on a vCPU");
	if (cpu > INT32_MAX)
		return qmp_error(err, errlen, "DeviceNotFound", "no vCPU %" PRIu64, cpu);
	json_t *r = mm_translate_query(m, rp ? gva : gpa, !rp, (int)cpu, err, errlen);
	if (!r && strncmp(err, "no vCPU", 7) == 0) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", err);
		return qmp_error(err, errlen, "DeviceNotFound", "%s", msg);
	}
	return r;
}

static json_t *qmp_query_translation_summary(void *ctx, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	return mm_translate_summary(ctx, err, errlen);
}

int mm_translate_qmp_register(struct qmp_registry *reg, struct mm_manager *m)
{
	int ret = qmp_register(reg, "query-translation", qmp_query_translation, m);

	if (!ret)
		ret = qmp_register(reg, "query-translation-summary", qmp_query_translation_summary, m);
	return ret;
}
