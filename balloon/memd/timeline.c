/*
 * memd records: what the daemon sees and decides, in three forms built
 * from the same figures so they cannot disagree: the control socket's
 * query-host/query-vms replies, the --log timeline (one JSON line per
 * sample, decision, state change and message) and the --metrics-file
 * (Prometheus text format, replaced atomically with rename()).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "balloon/memd/memd.h"

/* A figure, or null when missing, so a reader never mistakes "unknown" for 0. */
static json_t *fig(uint64_t v)
{
	return v == MEMD_NONE ? json_null() : json_integer((json_int_t)v);
}

json_t *memd_host_json(struct memd *d)
{
	const struct memd_host_now *h = &d->host;
	json_t *o = json_object();
	int64_t room = d->have_out ? d->out.room : 0;

	json_object_set_new(o, "policy", json_string(memd_policy_name(d->policy)));
	json_object_set_new(o, "source", json_string(memd_source_name(d->o.source)));
	json_object_set_new(o, "state", json_string(memd_state_name(d->state)));
	json_object_set_new(o, "budget", fig(h->budget));
	json_object_set_new(o, "usage", fig(h->usage));
	json_object_set_new(o, "room", d->have_out ? json_integer(room) : json_null());
	json_object_set_new(o, "reserve", json_integer((json_int_t)d->o.reserve));
	json_object_set_new(o, "oom-kills", d->have_cg ? fig(h->oom_kills) : json_null());
	json_object_set_new(o, "headroom", d->have_out ? json_integer((json_int_t)d->out.headroom) : json_null());
	if (d->have_cg)
		json_object_set_new(o, "cgroup", json_pack("{s:s,s:i,s:o,s:o,s:o}", "path", d->cg.dir, "version",
							    d->cg.version, "usage", fig(h->cg_usage), "limit",
							    fig(h->cg_limit), "soft-limit", fig(h->cg_soft)));
	json_object_set_new(o, "mem-total", fig(h->mi.total));
	json_object_set_new(o, "mem-available", fig(h->mi.available));
	json_object_set_new(o, "mem-free", fig(h->mi.free));
	json_object_set_new(o, "buffers", fig(h->mi.buffers));
	json_object_set_new(o, "cached", fig(h->mi.cached));
	json_object_set_new(o, "psi-some-avg10", json_real(h->psi.some_avg10));
	json_object_set_new(o, "psi-full-avg10", json_real(h->psi.full_avg10));
	json_object_set_new(o, "psi-trigger", json_boolean(d->psi_fd >= 0));
	json_object_set_new(o, "psi-triggers", json_integer((json_int_t)d->psi_triggers));
	json_object_set_new(o, "interval-ms", json_integer((json_int_t)d->o.interval_ms));
	json_object_set_new(o, "ticks", json_integer((json_int_t)d->ticks));
	json_object_set_new(o, "decisions", json_integer((json_int_t)d->decisions));
	json_object_set_new(o, "vms", json_integer(d->nvm));
	json_object_set_new(o, "floors", json_integer((json_int_t)memd_floor_sum(d)));
	json_object_set_new(o, "why", json_string(d->have_out ? d->out.why : ""));
	return o;
}

static json_t *stats_json(const struct memd *d, const struct memd_vm *vm)
{
	const struct memd_guest_stats *s = &vm->in.stats;
	uint64_t now = memd_now_ms();

	return json_pack("{s:b,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
			 "fresh", vm->sampled && memd_stats_fresh(&d->cfg, &vm->in, now),
			 "age-ms", s->updated_ms == MEMD_NONE || !s->updated_ms ? json_null()
				   : json_integer((json_int_t)(now > s->updated_ms ? now - s->updated_ms : 0)),
			 "free", fig(s->free), "available", fig(s->available), "caches", fig(s->caches),
			 "major-faults", fig(s->major_faults), "swap-in", fig(s->swap_in),
			 "oom-kills", fig(s->oom_kills), "alloc-stalls", fig(s->alloc_stalls));
}

static json_t *vm_json(const struct memd *d, const struct memd_vm *vm)
{
	const struct memd_vm_in *in = &vm->in;
	json_t *o = json_object();
	bool s = vm->sampled;

	json_object_set_new(o, "name", json_string(vm->name));
	json_object_set_new(o, "kind", json_string(memd_vm_be(vm)->name));
	memd_vm_be(vm)->describe(vm, o);
	json_object_set_new(o, "discovered", json_boolean(vm->discovered));
	json_object_set_new(o, "connected", json_boolean(memd_vm_connected(vm)));
	json_object_set_new(o, "pid", vm->pid > 0 ? json_integer(vm->pid) : json_null());
	json_object_set_new(o, "error", vm->error[0] ? json_string(vm->error) : json_null());
	json_object_set_new(o, "ram", s ? fig(in->ram) : json_null());
	json_object_set_new(o, "balloon-target", s ? fig(in->balloon_target) : json_null());
	json_object_set_new(o, "balloon-actual", s ? fig(in->balloon_actual) : json_null());
	json_object_set_new(o, "resident", s ? fig(in->resident) : json_null());
	json_object_set_new(o, "rss", s ? fig(vm->rss) : json_null());
	json_object_set_new(o, "resident-target", s ? fig(in->resident_target) : json_null());
	json_object_set_new(o, "resident-target-supported", json_boolean(in->resident_target_ok));
	json_object_set_new(o, "balloon", json_boolean(vm->has_balloon));
	json_object_set_new(o, "floor", json_integer((json_int_t)(s ? memd_vm_floor(&d->cfg, in)
								 : memd_opts_floor(&d->o, vm->name))));
	json_object_set_new(o, "weight", json_integer(in->weight ? in->weight : 100));
	json_object_set_new(o, "saved", json_pack("{s:o,s:o,s:o,s:o}", "reported", fig(s ? in->saved_reported : MEMD_NONE),
						  "zero", fig(s ? in->saved_zero : MEMD_NONE),
						  "shared", fig(s ? in->saved_shared : MEMD_NONE),
						  "compressed", fig(s ? in->saved_compressed : MEMD_NONE)));
	json_object_set_new(o, "refault-rate", s ? fig(in->refault_rate) : json_null());
	json_object_set_new(o, "guest-stats", stats_json(d, vm));
	json_object_set_new(o, "actions", json_integer((json_int_t)vm->actions));
	json_object_set_new(o, "why", json_string(vm->why));
	for (size_t i = 0; d->have_out && i < d->out.nvm; i++)
		if (d->out.vm[i].id == vm->id)
			json_object_set_new(o, "pressured", json_boolean(d->out.vm[i].pressured));
	return o;
}

json_t *memd_vms_json(struct memd *d)
{
	json_t *a = json_array();

	for (int i = 0; i < d->nvm; i++)
		json_array_append_new(a, vm_json(d, d->vm[i]));
	return a;
}

void memd_timeline(struct memd *d, const char *type, json_t *record)
{
	struct timespec ts;
	char *s;

	if (!d->log || !record) {
		json_decref(record);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	/* "t" is seconds since the daemon started (for plots), "time" the wall clock */
	json_object_set_new(record, "t", json_real((double)(memd_now_ms() - d->start_ms) / 1000.0));
	json_object_set_new(record, "time", json_real((double)ts.tv_sec + (double)ts.tv_nsec / 1e9));
	json_object_set_new(record, "type", json_string(type));
	s = json_dumps(record, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(15));
	json_decref(record);
	if (s) {
		fprintf(d->log, "%s\n", s);
		free(s);
	}
}

void memd_timeline_sample(struct memd *d)
{
	if (!d->log)
		return;
	memd_timeline(d, "sample", json_pack("{s:o,s:o}", "host", memd_host_json(d), "vms", memd_vms_json(d)));
}

/* ---- Prometheus text format ---- */

struct buf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		if (b->oom)
			return;
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		char *s = realloc(b->s, b->cap * 2 + (size_t)n + 1);

		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = b->cap * 2 + (size_t)n + 1;
	}
}

static void gauge(struct buf *b, const char *name, const char *help)
{
	put(b, "# HELP minivmm_memd_%s %s\n# TYPE minivmm_memd_%s gauge\n", name, help, name);
}

static void value(struct buf *b, const char *name, const char *labels, uint64_t v)
{
	if (v != MEMD_NONE)
		put(b, "minivmm_memd_%s%s %llu\n", name, labels, (unsigned long long)v);
}

/* A label value with \ " and newlines escaped, as the text format requires. */
static void label(char *out, size_t len, const char *k, const char *v)
{
	size_t n = (size_t)snprintf(out, len, "{%s=\"", k);

	for (; *v && n + 4 < len; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n') {
			out[n++] = '\\';
			out[n++] = *v == '\n' ? 'n' : *v;
		} else {
			out[n++] = *v;
		}
	}
	snprintf(out + n, len - n, "\"}");
}

char *memd_metrics_text(struct memd *d)
{
	struct buf b = { .s = malloc(4096), .cap = 4096 };
	const struct memd_host_now *h = &d->host;
	static const enum memd_state states[] = { MEMD_OK, MEMD_TIGHT, MEMD_PRESSURE, MEMD_CRITICAL };
	static const struct { const char *name, *help; } vmg[] = {
		{ "vm_ram_bytes", "Guest RAM of the VM." },
		{ "vm_balloon_target_bytes", "Memory the guest was last asked to keep." },
		{ "vm_balloon_actual_bytes", "Memory the guest has (balloon actual)." },
		{ "vm_resident_bytes", "Host memory of guest RAM and its store." },
		{ "vm_rss_bytes", "Resident memory of the VM process (hugetlb included)." },
		{ "vm_floor_bytes", "The floor the daemon never balloons below." },
		{ "vm_guest_available_bytes", "The guest's own available memory." },
		{ "vm_saved_reported_bytes", "Memory the guest reported free, given back." },
		{ "vm_saved_zero_bytes", "Zero pages dropped." },
		{ "vm_saved_shared_bytes", "Memory saved by deduplication." },
		{ "vm_saved_compressed_bytes", "Memory saved by compression." },
		{ "vm_actions_total", "Decisions applied to the VM." },
		{ "vm_connected", "1 when the daemon reaches the VM's monitor." },
	};

	if (!b.s)
		return NULL;
	b.s[0] = '\0';
	gauge(&b, "budget_bytes", "Memory the managed VMs may use together (budget or cgroup limit).");
	value(&b, "budget_bytes", "", h->budget);
	gauge(&b, "usage_bytes", "Memory counted against the budget.");
	value(&b, "usage_bytes", "", h->usage);
	gauge(&b, "mem_available_bytes", "The host's MemAvailable.");
	value(&b, "mem_available_bytes", "", h->mi.available);
	gauge(&b, "mem_total_bytes", "The host's MemTotal.");
	value(&b, "mem_total_bytes", "", h->mi.total);
	gauge(&b, "room_bytes", "Room under the budget (or above the reserve); negative when over.");
	if (d->have_out)
		put(&b, "minivmm_memd_room_bytes %lld\n", (long long)d->out.room);
	gauge(&b, "headroom_bytes", "Room the minivmm policy keeps ahead of bursts with idle pages.");
	if (d->have_out)
		put(&b, "minivmm_memd_headroom_bytes %llu\n", (unsigned long long)d->out.headroom);
	gauge(&b, "psi_some_avg10", "PSI memory some avg10 (percent).");
	put(&b, "minivmm_memd_psi_some_avg10 %.2f\n", h->psi.some_avg10);
	gauge(&b, "psi_full_avg10", "PSI memory full avg10 (percent).");
	put(&b, "minivmm_memd_psi_full_avg10 %.2f\n", h->psi.full_avg10);
	gauge(&b, "state", "The host state: 1 for the current one.");
	for (size_t i = 0; i < 4; i++)
		put(&b, "minivmm_memd_state{state=\"%s\"} %d\n", memd_state_name(states[i]), d->state == states[i]);
	gauge(&b, "vms", "VMs the daemon manages.");
	put(&b, "minivmm_memd_vms %d\n", d->nvm);
	put(&b, "# HELP minivmm_memd_decisions_total Decisions applied.\n# TYPE minivmm_memd_decisions_total counter\n");
	put(&b, "minivmm_memd_decisions_total %llu\n", (unsigned long long)d->decisions);
	for (size_t g = 0; g < sizeof(vmg) / sizeof(vmg[0]); g++) {
		gauge(&b, vmg[g].name, vmg[g].help);
		for (int i = 0; i < d->nvm; i++) {
			const struct memd_vm *vm = d->vm[i];
			const struct memd_vm_in *in = &vm->in;
			uint64_t v[] = { in->ram, in->balloon_target, in->balloon_actual, in->resident, vm->rss,
					 memd_vm_floor(&d->cfg, in), in->stats.available, in->saved_reported,
					 in->saved_zero, in->saved_shared, in->saved_compressed, vm->actions,
					 memd_vm_connected(vm) };
			char lab[160];

			if (!vm->sampled && g != 11 && g != 12)
				continue;
			label(lab, sizeof(lab), "vm", vm->name);
			value(&b, vmg[g].name, lab, v[g]);
		}
	}
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

int memd_metrics_write(struct memd *d, const char *path, char *err, size_t errlen)
{
	char tmp[4200];
	char *text = memd_metrics_text(d);
	FILE *f;
	int r = 0;

	if (!text) {
		snprintf(err, errlen, "metrics: out of memory");
		return -ENOMEM;
	}
	/* the collector must never read half a file: write aside, then rename over */
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	f = fopen(tmp, "we");
	if (!f || fputs(text, f) < 0 || fflush(f) || fsync(fileno(f)) < 0) {
		r = -errno;
		snprintf(err, errlen, "metrics: cannot write %s: %s", tmp, strerror(errno));
	}
	if (f && fclose(f) && !r) {
		r = -errno;
		snprintf(err, errlen, "metrics: cannot write %s: %s", tmp, strerror(errno));
	}
	if (!r && rename(tmp, path) < 0) {
		r = -errno;
		snprintf(err, errlen, "metrics: cannot rename %s to %s: %s", tmp, path, strerror(errno));
	}
	if (r)
		unlink(tmp);
	free(text);
	return r;
}
