/*
 * minivmm-ctl's commands for minivmm-memd's control socket: host (the
 * budget, usage, pressure and state), vms (a table of the managed VMs)
 * and watch (both every second, with each decision as it is made).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/ctl/ctl.h"
#include "vmm/lib/size.h"

/* A byte figure for a table cell; "-" when missing. */
static const char *cell(json_t *v, char *buf, size_t len)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return "-";
	size_format((uint64_t)json_integer_value(v), SIZE_EXACT, buf, len);
	/* "256 MiB" -> "256M": a table wants narrow columns */
	char *sp = strchr(buf, ' ');
	if (sp && sp[1] && strcmp(sp + 1, "B")) {
		sp[0] = sp[1];
		sp[1] = '\0';
	}
	return buf;
}

int ctl_memd_host(struct ctl *c)
{
	json_t *h = ctl_must(c, "query-host", NULL);
	const char *k;
	json_t *v;

	json_object_foreach(h, k, v) {
		if (json_is_integer(v) && !strcmp(k, "room") && json_integer_value(v) < 0) {
			char b[32];

			printf("%-28s -%s (over)\n", k, size_format((uint64_t)-json_integer_value(v), SIZE_FIXED2,
								  b, sizeof(b)));
			continue;
		}
		ctl_print_tree(k, v, 0);
	}
	json_decref(h);
	return 0;
}

static void print_vms(json_t *vms)
{
	size_t i;
	json_t *vm;

	printf("%-16s %8s %8s %8s %8s %8s %8s %5s  %s\n", "VM", "RAM", "TARGET", "ACTUAL", "RESIDENT", "FLOOR",
	       "AVAIL", "PRESS", "STATUS");
	json_array_foreach(vms, i, vm) {
		char b[7][32];
		const char *err = json_string_value(json_object_get(vm, "error"));
		json_t *gs = json_object_get(vm, "guest-stats");

		printf("%-16s %8s %8s %8s %8s %8s %8s %5s  %s\n",
		       json_string_value(json_object_get(vm, "name")),
		       cell(json_object_get(vm, "ram"), b[0], 32), cell(json_object_get(vm, "balloon-target"), b[1], 32),
		       cell(json_object_get(vm, "balloon-actual"), b[2], 32), cell(json_object_get(vm, "resident"), b[3], 32),
		       cell(json_object_get(vm, "floor"), b[4], 32),
		       json_is_true(json_object_get(gs, "fresh")) ? cell(json_object_get(gs, "available"), b[5], 32) : "-",
		       json_is_true(json_object_get(vm, "pressured")) ? "yes" : "no",
		       err ? err : json_is_true(json_object_get(vm, "connected")) ? "managed" : "connecting");
	}
	if (!json_array_size(vms))
		printf("(no VMs: give minivmm-memd --vm unix:PATH, or start minivmm with --name NAME)\n");
}

int ctl_memd_vms(struct ctl *c)
{
	json_t *vms = ctl_must(c, "query-vms", NULL);

	print_vms(vms);
	json_decref(vms);
	return 0;
}

void ctl_memd_print_event(json_t *ev)
{
	const char *name = json_string_value(json_object_get(ev, "event"));
	json_t *data = json_object_get(ev, "data");
	const char *vm = json_string_value(json_object_get(data, "vm"));

	ctl_print_time();
	if (name && !strcmp(name, "MEMD_DECISION"))
		printf("%s: %s (%s)\n", vm ? vm : "?", json_string_value(json_object_get(data, "did")),
		       json_string_value(json_object_get(data, "why")));
	else if (name && !strcmp(name, "MEMD_STATE"))
		printf("host state %s -> %s: %s\n", json_string_value(json_object_get(data, "from")),
		       json_string_value(json_object_get(data, "to")), json_string_value(json_object_get(data, "why")));
	else {
		char *s = json_dumps(data, JSON_COMPACT);

		printf("event %s %s\n", name ? name : "?", s ? s : "");
		free(s);
	}
	fflush(stdout);
}

int ctl_memd_watch(struct ctl *c)
{
	char b[4][32];

	ctl_catch_interrupt();
	c->watch = true;
	printf("watching minivmm-memd at %s (Ctrl-C to stop)\n", c->path);
	fflush(stdout);
	for (long round = 0; !ctl_interrupted && (!c->count || round < c->count); round++) {
		char err[512];
		json_t *h = ctl_cmd(c, "query-host", NULL, err, sizeof(err));
		json_t *vms = h ? ctl_cmd(c, "query-vms", NULL, err, sizeof(err)) : NULL;

		if (!h || !vms) {
			json_decref(h);
			if (ctl_interrupted)
				break;
			die("watch: %s", err);
		}
		ctl_print_time();
		printf("%s policy %s: budget %s usage %s room %s, MemAvailable %s, psi some %.2f full %.2f\n",
		       json_string_value(json_object_get(h, "state")), json_string_value(json_object_get(h, "policy")),
		       cell(json_object_get(h, "budget"), b[0], 32), cell(json_object_get(h, "usage"), b[1], 32),
		       json_integer_value(json_object_get(h, "room")) < 0 ? "over" : cell(json_object_get(h, "room"), b[2], 32),
		       cell(json_object_get(h, "mem-available"), b[3], 32),
		       json_real_value(json_object_get(h, "psi-some-avg10")),
		       json_real_value(json_object_get(h, "psi-full-avg10")));
		print_vms(vms);
		fflush(stdout);
		json_decref(h);
		json_decref(vms);
		if (!c->count || round + 1 < c->count)
			ctl_wait_second(c);
	}
	printf("\n");
	return 0;
}
