/*
 * qom: the QOM router. Owns qom-get, qom-set and qom-list and resolves
 * their "path" over the objects subsystems registered with qmp_qom_add()
 * (path -> property table + ctx), so any subsystem can have QOM properties
 * without knowing the others. Paths, error classes and texts are QEMU's:
 * an unknown path is DeviceNotFound "Device 'P' not found", an unknown
 * property "Property 'TYPE.NAME' not found", a partial path ("balloon0")
 * names the one object whose path ends with it. The containers above a
 * registered object ("/", "/machine", ...) exist implicitly.
 *
 * Threads: everything on the main thread (registration before or while
 * serving, the commands from the server).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/qmp/dispatch.h"

struct qom_object {
	char *path;                   /* absolute */
	const char *type;             /* QOM type name */
	const struct qom_prop *props; /* ended by a NULL name */
	void *ctx;
};

struct qom_router {
	struct qom_object *objs;
	int nr, cap;
};

/* What a path resolved to: an object, or (obj NULL) the container at path. */
struct qom_target {
	struct qom_object *obj;
	const char *path;
	const char *type;
};

static struct qom_object *qom_find(struct qom_router *qr, const char *path)
{
	for (int i = 0; i < qr->nr; i++)
		if (strcmp(qr->objs[i].path, path) == 0)
			return &qr->objs[i];
	return NULL;
}

/* Whether an object lives below the container at prefix ("/" is the root). */
static bool qom_below(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strcmp(prefix, "/") == 0)
		return true;
	return strncmp(path, prefix, n) == 0 && path[n] == '/';
}

/* Whether path ends with the components of partial ("balloon0", "peripheral/balloon0"). */
static bool qom_ends_with(const char *path, const char *partial)
{
	size_t n = strlen(path), m = strlen(partial);

	return m < n && path[n - m - 1] == '/' && strcmp(path + n - m, partial) == 0;
}

static int qom_resolve(struct qom_router *qr, const char *path, struct qom_target *t,
		       char *err, size_t errlen)
{
	*t = (struct qom_target){ NULL, path, "container" };
	if (path[0] != '/') {
		int matches = 0;
		for (int i = 0; i < qr->nr; i++) {
			if (qom_ends_with(qr->objs[i].path, path)) {
				t->obj = &qr->objs[i];
				matches++;
			}
		}
		if (matches > 1) {
			qmp_error(err, errlen, NULL, "Path '%s' is ambiguous", path);
			return -EINVAL;
		}
	} else if (strcmp(path, "/") == 0) {
		return 0;    /* the root container always exists */
	} else {
		t->obj = qom_find(qr, path);
		if (!t->obj)
			for (int i = 0; i < qr->nr; i++)
				if (qom_below(qr->objs[i].path, path))
					return 0;    /* a container above a registered object */
	}
	if (!t->obj) {
		qmp_error(err, errlen, "DeviceNotFound", "Device '%s' not found", path);
		return -ENOENT;
	}
	t->path = t->obj->path;
	t->type = t->obj->type;
	return 0;
}

static const struct qom_prop *qom_prop_find(struct qom_target *t, const char *name)
{
	for (const struct qom_prop *p = t->obj ? t->obj->props : NULL; p && p->name; p++)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

/* Reads path and property, resolves path; -errno with err. */
static int qom_args(struct qom_router *qr, json_t *args, const char *const *allowed,
		    struct qom_target *t, const char **prop, char *err, size_t errlen)
{
	const char *path;

	if (qmp_args_only(args, allowed, err, errlen) ||
	    qmp_arg_str(args, "path", true, &path, err, errlen) ||
	    (prop && qmp_arg_str(args, "property", true, prop, err, errlen)))
		return -EINVAL;
	return qom_resolve(qr, path, t, err, errlen);
}

static json_t *qom_cmd_get(void *ctx, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "path", "property", NULL };
	struct qom_target t;
	const char *name;

	if (qom_args(ctx, args, allowed, &t, &name, err, errlen))
		return NULL;
	const struct qom_prop *p = qom_prop_find(&t, name);
	if (p && p->get)
		return p->get(t.obj->ctx, err, errlen);
	if (!p && strcmp(name, "type") == 0)
		return json_string(t.type);
	return qmp_error(err, errlen, NULL, "Property '%s.%s' not found", t.type, name);
}

/* QEMU's visitors refuse a value of the wrong JSON type before the setter runs. */
static int qom_check_type(const char *type, json_t *v, char *err, size_t errlen)
{
	static const char *const ints[] = { "int", "int8", "int16", "int32", "int64", "uint8",
					    "uint16", "uint32", "uint64", "size", NULL };
	const char *want = NULL;
	bool ok = true;

	for (int i = 0; ints[i]; i++)
		if (strcmp(type, ints[i]) == 0) {
			want = "integer";
			ok = json_is_integer(v);
		}
	if (strcmp(type, "bool") == 0) {
		want = "boolean";
		ok = json_is_boolean(v);
	} else if (strcmp(type, "string") == 0 || strcmp(type, "str") == 0) {
		want = "string";
		ok = json_is_string(v);
	}
	if (!want || ok)
		return 0;
	qmp_error(err, errlen, NULL, "Invalid parameter type for 'value', expected: %s", want);
	return -EINVAL;
}

static json_t *qom_cmd_set(void *ctx, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "path", "property", "value", NULL };
	struct qom_target t;
	const char *name;

	if (qom_args(ctx, args, allowed, &t, &name, err, errlen))
		return NULL;
	json_t *v = json_object_get(args, "value");
	if (!v)
		return qmp_error(err, errlen, NULL, "Parameter 'value' is missing");
	const struct qom_prop *p = qom_prop_find(&t, name);
	if (!p && strcmp(name, "type") != 0)
		return qmp_error(err, errlen, NULL, "Property '%s.%s' not found", t.type, name);
	if (!p || !p->set)
		return qmp_error(err, errlen, NULL, "Property '%s.%s' is not writable", t.type, name);
	if (qom_check_type(p->type, v, err, errlen) || p->set(t.obj->ctx, v, err, errlen))
		return NULL;
	return json_object();
}

static bool qom_list_has(json_t *list, const char *name)
{
	size_t i;
	json_t *e;

	json_array_foreach(list, i, e)
		if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
			return true;
	return false;
}

static void qom_list_add(json_t *list, const char *name, const char *type)
{
	json_array_append_new(list, json_pack("{s:s,s:s}", "name", name, "type", type));
}

/* Adds a child<TYPE> entry for every object or container right below prefix. */
static void qom_list_children(struct qom_router *qr, const char *prefix, json_t *list)
{
	size_t skip = strcmp(prefix, "/") == 0 ? 1 : strlen(prefix) + 1;

	for (int i = 0; i < qr->nr; i++) {
		const char *path = qr->objs[i].path;
		if (!qom_below(path, prefix))
			continue;
		const char *slash = strchr(path + skip, '/');
		size_t len = slash ? (size_t)(slash - path) : strlen(path);
		char child[256], type[300];
		snprintf(child, sizeof(child), "%.*s", (int)(len - skip), path + skip);
		if (qom_list_has(list, child))
			continue;
		snprintf(type, sizeof(type), "child<%s>", slash ? "container" : qr->objs[i].type);
		qom_list_add(list, child, type);
	}
}

static json_t *qom_cmd_list(void *ctx, json_t *args, char *err, size_t errlen)
{
	static const char *const allowed[] = { "path", NULL };
	struct qom_router *qr = ctx;
	struct qom_target t;

	if (qom_args(qr, args, allowed, &t, NULL, err, errlen))
		return NULL;
	json_t *list = json_array();
	qom_list_add(list, "type", "string");
	for (const struct qom_prop *p = t.obj ? t.obj->props : NULL; p && p->name; p++)
		if (strcmp(p->name, "type") != 0)
			qom_list_add(list, p->name, p->type);
	qom_list_children(qr, t.path, list);
	return list;
}

/* ---- registration ---- */

int qom_router_add(struct qom_router *qr, const char *path, const char *type,
		   const struct qom_prop *props, void *ctx)
{
	size_t len = path ? strlen(path) : 0;

	if (!len || path[0] != '/' || path[len - 1] == '/' || len >= 256 || !type || !props)
		return -EINVAL;
	if (qom_find(qr, path))
		return -EEXIST;
	if (qr->nr == qr->cap) {
		int cap = qr->cap ? qr->cap * 2 : 8;
		struct qom_object *p = realloc(qr->objs, (size_t)cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		qr->objs = p;
		qr->cap = cap;
	}
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	qr->objs[qr->nr++] = (struct qom_object){ copy, type, props, ctx };
	return 0;
}

int qmp_qom_add(struct qmp_registry *reg, const char *path, const char *type,
		const struct qom_prop *props, void *ctx)
{
	return qom_router_add(qmp_registry_qom(reg), path, type, props, ctx);
}

int qom_router_new(struct qmp_registry *reg, struct qom_router **out)
{
	struct qom_router *qr = calloc(1, sizeof(*qr));
	int ret;

	if (!qr)
		return -ENOMEM;
	ret = qmp_register(reg, "qom-get", qom_cmd_get, qr);
	if (!ret)
		ret = qmp_register(reg, "qom-set", qom_cmd_set, qr);
	if (!ret)
		ret = qmp_register(reg, "qom-list", qom_cmd_list, qr);
	if (ret) {
		free(qr);
		return ret;
	}
	*out = qr;
	return 0;
}

void qom_router_free(struct qom_router *qr)
{
	if (!qr)
		return;
	for (int i = 0; i < qr->nr; i++)
		free(qr->objs[i].path);
	free(qr->objs);
	free(qr);
}
