/*
 * registry: the QMP command table every subsystem extends from its own file
 * (QMP_COMMAND), lookup and in-process execution, the error class a failing
 * handler sets, and query-commands, which lists the table.
 */
#include <errno.h>
#include <string.h>

#include "vmm/lib/log.h"
#include "vmm/qmp/qmp.h"
#include "vmm/qmp/server.h"

#define QMP_MAX_COMMANDS  128

struct qmp_command {
	const char *name;
	qmp_cmd_fn fn;
};

/* A fixed table: constructors fill it before main(), no allocation needed. */
static struct qmp_command qmp_commands[QMP_MAX_COMMANDS];
static int qmp_nr_commands;

/* Set by a failing handler through qmp_set_error_class(); main thread only. */
static const char *qmp_error_class;

void qmp_set_error_class(const char *cls)
{
	qmp_error_class = cls;
}

qmp_cmd_fn qmp_lookup(const char *name)
{
	for (int i = 0; i < qmp_nr_commands; i++)
		if (strcmp(qmp_commands[i].name, name) == 0)
			return qmp_commands[i].fn;
	return NULL;
}

int qmp_register(const char *name, qmp_cmd_fn fn)
{
	if (!name || !*name || !fn)
		return -EINVAL;
	if (qmp_lookup(name)) {
		log_err("qmp", "command '%s' registered twice; keeping the first", name);
		return -EEXIST;
	}
	if (qmp_nr_commands == QMP_MAX_COMMANDS) {
		log_err("qmp", "command table full, '%s' not registered", name);
		return -ENOSPC;
	}
	qmp_commands[qmp_nr_commands++] = (struct qmp_command){ name, fn };
	return 0;
}

json_t *qmp_execute(struct vm *vm, const char *name, json_t *args, char *err, size_t errlen)
{
	qmp_cmd_fn fn = qmp_lookup(name);

	if (!fn) {
		snprintf(err, errlen, "The command %s has not been found", name);
		return NULL;
	}
	json_t *empty = NULL;
	if (!args)
		args = empty = json_object();
	err[0] = '\0';
	qmp_error_class = NULL;
	json_t *ret = fn(vm, args, err, errlen);
	if (!ret && !err[0])
		snprintf(err, errlen, "%s failed", name);
	json_decref(empty);
	return ret;
}

const char *qmp_last_error_class(void)
{
	return qmp_error_class;
}

static json_t *qmp_cmd_query_commands(struct vm *vm, json_t *args, char *err, size_t errlen)
{
	if (qmp_args_only(args, NULL, err, errlen))
		return NULL;
	json_t *list = json_array();
	for (int i = 0; list && i < qmp_nr_commands; i++)
		json_array_append_new(list, json_pack("{s:s}", "name", qmp_commands[i].name));
	return list;
}
QMP_COMMAND("query-commands", qmp_cmd_query_commands)
