/*
 * memd config: the daemon's options, one setter for the command line and
 * the config file alike (so an option means the same in both), and the
 * config file's two forms: "key = value" lines and a JSON object (jansson).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balloon/memd/memd.h"
#include "vmm/lib/opts.h"
#include "vmm/lib/size.h"

#define CONFIG_MAX_BYTES (1u << 20)

void memd_opts_init(struct memd_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->source = MEMD_SRC_HOST;
	o->budget = MEMD_NONE;
	o->reserve = MEMD_DEFAULT_RESERVE;
	o->interval_ms = MEMD_DEFAULT_INTERVAL_MS;
}

void memd_opts_free(struct memd_opts *o)
{
	for (int i = 0; i < o->nvm; i++)
		free(o->vm[i]);
	for (int i = 0; i < o->nlibvirt; i++)
		free(o->libvirt[i]);
	free(o->cgroup);
	free(o->run_dir);
	free(o->policy);
	free(o->control);
	free(o->log);
	free(o->metrics);
	memset(o, 0, sizeof(*o));
}

const char *memd_size(uint64_t bytes, char buf[32])
{
	return size_format(bytes, SIZE_EXACT, buf, 32);
}

static int set_str(char **dst, const char *val, char *err, size_t errlen)
{
	char *s = strdup(val);

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	free(*dst);
	*dst = s;
	return 0;
}

/* "unix:PATH" or PATH, which must not be empty. */
static int set_path(char **dst, const char *key, const char *val, char *err, size_t errlen)
{
	const char *p = strncmp(val, "unix:", 5) == 0 ? val + 5 : val;

	if (!*p) {
		snprintf(err, errlen, "--%s needs a socket or file path (unix:PATH)", key);
		return -EINVAL;
	}
	return set_str(dst, p, err, errlen);
}

static struct memd_vm_opt *vmopt_for(struct memd_opts *o, const char *name, char *err, size_t errlen)
{
	for (int i = 0; i < o->nvmopt; i++)
		if (!strcmp(o->vmopt[i].name, name))
			return &o->vmopt[i];
	if (o->nvmopt == MEMD_MAX_SPECS) {
		snprintf(err, errlen, "more than %d VM names with a floor or weight", MEMD_MAX_SPECS);
		return NULL;
	}
	snprintf(o->vmopt[o->nvmopt].name, MEMD_NAME_MAX, "%s", name);
	return &o->vmopt[o->nvmopt++];
}

/* NAME=VALUE for --vm-floor and --vm-weight; NAME "*" is every VM without its own. */
static int set_vm_value(struct memd_opts *o, const char *key, const char *val, char *err, size_t errlen)
{
	const char *eq = strrchr(val, '=');
	bool floor = !strcmp(key, "vm-floor");
	char name[MEMD_NAME_MAX];
	struct memd_vm_opt *vo;
	uint64_t v;

	if (!eq || eq == val || (size_t)(eq - val) >= sizeof(name)) {
		snprintf(err, errlen, "--%s '%s' is not NAME=%s (a VM's --name, or * for every VM; "
			 "names up to %d characters)", key, val, floor ? "SIZE" : "N", MEMD_NAME_MAX - 1);
		return -EINVAL;
	}
	memcpy(name, val, (size_t)(eq - val));
	name[eq - val] = '\0';
	if (floor ? size_parse(eq + 1, &v) < 0 || v == 0 : opts_u64(eq + 1, 1, 10000, &v) < 0) {
		snprintf(err, errlen, floor ? "--%s '%s': '%s' is not a size above 0 (e.g. 256M)"
			 : "--%s '%s': '%s' is not a weight from 1 to 10000 (100 is the default)", key, val, eq + 1);
		return -EINVAL;
	}
	vo = vmopt_for(o, name, err, errlen);
	if (!vo)
		return -EINVAL;
	if (floor)
		vo->floor = v;
	else
		vo->weight = (uint32_t)v;
	return 0;
}

int memd_opts_set(struct memd_opts *o, const char *key, const char *val, char *err, size_t errlen)
{
	uint64_t v;

	if (!strcmp(key, "budget")) {
		if (size_parse(val, &v) < 0 || v == 0) {
			snprintf(err, errlen, "--budget '%s' is not a size above 0: use a number with a K, M or G "
				 "suffix, e.g. 8G", val);
			return -EINVAL;
		}
		o->source = MEMD_SRC_BUDGET;
		o->budget = v;
		return 0;
	}
	if (!strcmp(key, "cgroup")) {
		if (!*val) {
			snprintf(err, errlen, "--cgroup needs a memory cgroup directory");
			return -EINVAL;
		}
		o->source = MEMD_SRC_CGROUP;
		return set_str(&o->cgroup, val, err, errlen);
	}
	if (!strcmp(key, "reserve")) {
		if (size_parse(val, &v) < 0) {
			snprintf(err, errlen, "--reserve '%s' is not a size (e.g. 1G)", val);
			return -EINVAL;
		}
		o->reserve = v;
		return 0;
	}
	if (!strcmp(key, "headroom")) {
		if (size_parse(val, &v) < 0) {
			snprintf(err, errlen, "--headroom '%s' is not a size (e.g. 1G; 0 = automatic)", val);
			return -EINVAL;
		}
		o->headroom = v;
		return 0;
	}
	if (!strcmp(key, "ksm")) {
		if (strcmp(val, "on") && strcmp(val, "off")) {
			snprintf(err, errlen, "--ksm '%s' is not on or off", val);
			return -EINVAL;
		}
		o->ksm = !strcmp(val, "on");
		return 0;
	}
	if (!strcmp(key, "vm")) {
		if (o->nvm == MEMD_MAX_SPECS) {
			snprintf(err, errlen, "more than %d --vm sockets", MEMD_MAX_SPECS);
			return -EINVAL;
		}
		o->vm[o->nvm] = NULL;
		if (set_path(&o->vm[o->nvm], key, val, err, errlen))
			return -EINVAL;
		o->nvm++;
		return 0;
	}
	if (!strcmp(key, "libvirt")) {
		if (!*val || !strstr(val, ":")) {
			snprintf(err, errlen, "--libvirt '%s' is not a libvirt connection URI (e.g. qemu:///system, "
				 "test:///default)", val);
			return -EINVAL;
		}
		if (o->nlibvirt == MEMD_MAX_SPECS) {
			snprintf(err, errlen, "more than %d --libvirt connections", MEMD_MAX_SPECS);
			return -EINVAL;
		}
		for (int i = 0; i < o->nlibvirt; i++)
			if (!strcmp(o->libvirt[i], val))
				return 0;  /* one connection per URI: the same domains must not be managed twice */
		o->libvirt[o->nlibvirt] = NULL;
		if (set_str(&o->libvirt[o->nlibvirt], val, err, errlen))
			return -ENOMEM;
		o->nlibvirt++;
		return 0;
	}
	if (!strcmp(key, "run-dir")) {
		if (!*val) {
			snprintf(err, errlen, "--run-dir needs a directory");
			return -EINVAL;
		}
		return set_str(&o->run_dir, val, err, errlen);
	}
	if (!strcmp(key, "vm-floor") || !strcmp(key, "vm-weight"))
		return set_vm_value(o, key, val, err, errlen);
	if (!strcmp(key, "policy")) {
		if (strcmp(val, "minivmm") && strcmp(val, "mom") && strcmp(val, "none")) {
			snprintf(err, errlen, "--policy '%s' is not known: use minivmm, mom or none", val);
			return -EINVAL;
		}
		return set_str(&o->policy, val, err, errlen);
	}
	if (!strcmp(key, "control"))
		return set_path(&o->control, key, val, err, errlen);
	if (!strcmp(key, "log"))
		return set_path(&o->log, key, val, err, errlen);
	if (!strcmp(key, "metrics-file"))
		return set_path(&o->metrics, key, val, err, errlen);
	if (!strcmp(key, "interval")) {
		double s;

		if (opts_double(val, 0.05, 60, &s) < 0) {
			snprintf(err, errlen, "--interval '%s' is not valid: give seconds from 0.05 to 60 (default 1)",
				 val);
			return -EINVAL;
		}
		o->interval_ms = (uint64_t)(s * 1000 + 0.5);
		return 0;
	}
	if (!strcmp(key, "config"))
		return memd_opts_load(o, val, err, errlen);
	snprintf(err, errlen, "unknown option '%s'", key);
	return -ENOENT;
}

/* A JSON value as option text: strings as they are, numbers in decimal. */
static int json_text(json_t *v, char *buf, size_t len)
{
	if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%g", json_real_value(v));
	else
		return -EINVAL;
	return 0;
}

/* JSON: {"budget": "8G", "vm": ["unix:..."], "vm-floor": {"db": "1G"}, "vms": {"db": {"floor": "1G", "weight": 200}}} */
static int parse_json(struct memd_opts *o, const char *text, const char *origin, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr), *v;
	const char *key;
	char buf[512], e2[400];
	int r = 0;

	if (!json_is_object(root)) {
		snprintf(err, errlen, "%s: %s", origin, root ? "a JSON config is one object of option names"
			 : jerr.text);
		json_decref(root);
		return -EINVAL;
	}
	json_object_foreach(root, key, v) {
		if (!strcmp(key, "vms") && json_is_object(v)) {
			const char *name;
			json_t *vm;

			json_object_foreach(v, name, vm) {
				const char *k;
				json_t *x;

				if (!json_is_object(vm)) {
					snprintf(e2, sizeof(e2), "vms.%s: give an object with floor and/or weight", name);
					r = -EINVAL;
				}
				json_object_foreach(vm, k, x) {
					char t[64];

					if (strcmp(k, "floor") && strcmp(k, "weight")) {
						snprintf(e2, sizeof(e2), "vms.%s.%s: a VM has floor and weight only", name, k);
						r = -EINVAL;
					} else if (json_text(x, t, sizeof(t)) < 0) {
						snprintf(e2, sizeof(e2), "vms.%s.%s must be a string or a number", name, k);
						r = -EINVAL;
					} else {
						snprintf(buf, sizeof(buf), "%s=%s", name, t);
						r = memd_opts_set(o, !strcmp(k, "floor") ? "vm-floor" : "vm-weight", buf,
								  e2, sizeof(e2));
					}
					if (r)
						break;
				}
				if (r)
					break;
			}
		} else if ((!strcmp(key, "vm-floor") || !strcmp(key, "vm-weight")) && json_is_object(v)) {
			const char *name;
			json_t *x;

			json_object_foreach(v, name, x) {
				char t[64];

				if (json_text(x, t, sizeof(t)) < 0) {
					snprintf(e2, sizeof(e2), "%s.%s must be a string or a number", key, name);
					r = -EINVAL;
					break;
				}
				snprintf(buf, sizeof(buf), "%s=%s", name, t);
				if ((r = memd_opts_set(o, key, buf, e2, sizeof(e2))))
					break;
			}
		} else if (json_is_array(v)) {
			size_t i;
			json_t *x;

			json_array_foreach(v, i, x) {
				if (json_text(x, buf, sizeof(buf)) < 0) {
					snprintf(e2, sizeof(e2), "%s: array items must be strings or numbers", key);
					r = -EINVAL;
					break;
				}
				if ((r = memd_opts_set(o, key, buf, e2, sizeof(e2))))
					break;
			}
		} else if (json_text(v, buf, sizeof(buf)) == 0) {
			r = memd_opts_set(o, key, buf, e2, sizeof(e2));
		} else {
			snprintf(e2, sizeof(e2), "%s: give a string or a number", key);
			r = -EINVAL;
		}
		if (!r && !strcmp(key, "config")) {
			snprintf(e2, sizeof(e2), "a config file may not load another (config)");
			r = -EINVAL;
		}
		if (r)
			break;
	}
	json_decref(root);
	if (r)
		snprintf(err, errlen, "%s: %s", origin, e2);
	return r ? -EINVAL : 0;
}

int memd_opts_parse(struct memd_opts *o, const char *text, const char *origin, char *err, size_t errlen)
{
	const char *p = text + strspn(text, " \t\r\n");
	char e2[400];
	int lno = 0;

	if (*p == '{' || *p == '[')
		return parse_json(o, text, origin, err, errlen);
	while (*text) {
		size_t n = strcspn(text, "\n");
		char line[1024], *key, *val, *end;

		lno++;
		if (n >= sizeof(line)) {
			snprintf(err, errlen, "%s:%d: line longer than %zu characters", origin, lno, sizeof(line) - 1);
			return -EINVAL;
		}
		memcpy(line, text, n);
		line[n] = '\0';
		text += n + (text[n] == '\n');
		if ((end = strchr(line, '#')))
			*end = '\0';
		key = line + strspn(line, " \t\r");
		for (end = key + strlen(key); end > key && strchr(" \t\r", end[-1]); end--)
			*(end - 1) = '\0';
		if (!*key)
			continue;
		val = strchr(key, '=');
		if (!val) {
			snprintf(err, errlen, "%s:%d: '%s' is not key = value (e.g. budget = 8G)", origin, lno, key);
			return -EINVAL;
		}
		for (end = val; end > key && strchr(" \t", end[-1]); end--)
			;
		*end = '\0';
		val++;
		val += strspn(val, " \t");
		if (!strcmp(key, "config")) {
			snprintf(err, errlen, "%s:%d: a config file may not load another (config)", origin, lno);
			return -EINVAL;
		}
		if (memd_opts_set(o, key, val, e2, sizeof(e2))) {
			snprintf(err, errlen, "%s:%d: %s", origin, lno, e2);
			return -EINVAL;
		}
	}
	return 0;
}

int memd_opts_load(struct memd_opts *o, const char *path, char *err, size_t errlen)
{
	char *text;
	int r = memd_read_text(path, CONFIG_MAX_BYTES, &text);

	if (r) {
		snprintf(err, errlen, "cannot read config file %s: %s", path,
			 r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
		return r;
	}
	r = memd_opts_parse(o, text, path, err, errlen);
	free(text);
	return r;
}

static const struct memd_vm_opt *find(const struct memd_opts *o, const char *name, bool floor, bool any_ok)
{
	const struct memd_vm_opt *any = NULL;

	for (int i = 0; i < o->nvmopt; i++) {
		const struct memd_vm_opt *v = &o->vmopt[i];

		if (floor ? !v->floor : !v->weight)
			continue;
		if (!strcmp(v->name, name))
			return v;
		if (any_ok && !strcmp(v->name, "*"))
			any = v;
	}
	return any;
}

uint64_t memd_opts_floor(const struct memd_opts *o, const char *name)
{
	const struct memd_vm_opt *v = find(o, name, true, true);

	return v ? v->floor : 0;
}

uint64_t memd_opts_floor_own(const struct memd_opts *o, const char *name)
{
	const struct memd_vm_opt *v = find(o, name, true, false);

	return v ? v->floor : 0;
}

uint32_t memd_opts_weight_own(const struct memd_opts *o, const char *name)
{
	const struct memd_vm_opt *v = find(o, name, false, false);

	return v ? v->weight : 0;
}

uint32_t memd_opts_weight(const struct memd_opts *o, const char *name)
{
	const struct memd_vm_opt *v = find(o, name, false, true);

	return v ? v->weight : 0;
}

uint64_t memd_opts_floor_sum(const struct memd_opts *o)
{
	uint64_t sum = 0;

	for (int i = 0; i < o->nvmopt; i++)
		if (strcmp(o->vmopt[i].name, "*"))
			sum += o->vmopt[i].floor;
	return sum;
}
