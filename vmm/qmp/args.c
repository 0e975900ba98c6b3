/*
 * args: reading a command's "arguments" object with QEMU's error texts, so
 * every handler rejects a missing, mistyped or unexpected argument alike,
 * and errors with a QEMU error class. Pure functions: any thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmm/qmp/qmp.h"

static int qmp_arg_get(json_t *args, const char *key, bool required, json_t **val,
		       char *err, size_t errlen)
{
	*val = json_is_object(args) ? json_object_get(args, key) : NULL;
	if (*val)
		return 0;
	if (!required)
		return -ENOENT;
	snprintf(err, errlen, "Parameter '%s' is missing", key);
	return -EINVAL;
}

int qmp_arg_u64(json_t *args, const char *key, bool required, uint64_t *out,
		char *err, size_t errlen)
{
	json_t *v;
	int ret = qmp_arg_get(args, key, required, &v, err, errlen);
	if (ret)
		return ret;
	/* jansson integers are signed 64-bit; negative values are not sizes */
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		snprintf(err, errlen, "Invalid parameter type for '%s', expected: integer >= 0", key);
		return -EINVAL;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int qmp_arg_str(json_t *args, const char *key, bool required, const char **out,
		char *err, size_t errlen)
{
	json_t *v;
	int ret = qmp_arg_get(args, key, required, &v, err, errlen);
	if (ret)
		return ret;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "Invalid parameter type for '%s', expected: string", key);
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

int qmp_arg_bool(json_t *args, const char *key, bool required, bool *out,
		 char *err, size_t errlen)
{
	json_t *v;
	int ret = qmp_arg_get(args, key, required, &v, err, errlen);
	if (ret)
		return ret;
	if (!json_is_boolean(v)) {
		snprintf(err, errlen, "Invalid parameter type for '%s', expected: boolean", key);
		return -EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

int qmp_args_only(json_t *args, const char *const *allowed, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v) {
		bool ok = false;
		for (int i = 0; allowed && allowed[i]; i++)
			ok |= strcmp(allowed[i], key) == 0;
		if (!ok) {
			snprintf(err, errlen, "Parameter '%s' is unexpected", key);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The class travels in the error text itself ("\x1fClass\x1fdescription")
 * rather than in a side channel, so an error set on a worker thread or in
 * a provider's helper reaches the reply without any shared state. The
 * marker byte never occurs in a message worth showing.
 */
#define QMP_CLASS_MARK '\x1f'

json_t *qmp_error(char *err, size_t errlen, const char *cls, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (!errlen)
		return NULL;
	if (cls)
		n = snprintf(err, errlen, "%c%s%c", QMP_CLASS_MARK, cls, QMP_CLASS_MARK);
	if (n < 0 || (size_t)n >= errlen)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return NULL;
}

void qmp_error_split(char *err, char *cls, size_t clslen)
{
	const char *end = err[0] == QMP_CLASS_MARK ? strchr(err + 1, QMP_CLASS_MARK) : NULL;

	if (!end) {
		snprintf(cls, clslen, "GenericError");
		return;
	}
	snprintf(cls, clslen, "%.*s", (int)(end - err - 1), err + 1);
	memmove(err, end + 1, strlen(end + 1) + 1);
}
