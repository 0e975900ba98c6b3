/*
 * memd daemon: the tick that joins everything. Each tick (every
 * --interval, and at once when the PSI trigger fires) finds VMs in the run
 * directory, reconnects the ones that failed, samples the host and every
 * VM, asks the policy, applies its decisions and records all of it (log,
 * events, timeline, metrics). VMs are reached through their backend (vm.c,
 * backend_libvirt.c); a VM that fails is reported and retried, one that is
 * gone is dropped; neither stops the others or the daemon. Main thread only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "balloon/memd/memd.h"
#include "vmm/lib/clock.h"
#include "vmm/lib/loop.h"
#include "vmm/lib/log.h"
#include "vmm/qmp/client.h"

#define PSI_STALL_US  150000     /* 150 ms stalled ... */
#define PSI_WINDOW_US 1000000    /* ... within 1 s wakes the daemon */

uint64_t memd_now_ms(void)
{
	return now_ns() / 1000000ULL;
}

const char *memd_source_name(enum memd_source s)
{
	return s == MEMD_SRC_BUDGET ? "budget" : s == MEMD_SRC_CGROUP ? "cgroup" : "host";
}

void memd_log_msg(struct memd *d, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* error level, as minivmm's log_err: only a program that silenced the
	 * shared log (a fuzz target, millions of set-budget lines) goes without */
	if (vmm_log_level >= 0)
		fprintf(stderr, "minivmm-memd: %s\n", msg);
	memd_timeline(d, "message", json_pack("{s:s}", "text", msg));
}

/*
 * A failure of one VM: said once per distinct message, and as an event.
 * Retries back off, so a VM that hangs (each attempt costs a QMP timeout)
 * delays the others' ticks less and less.
 */
static void vm_failed(struct memd *d, struct memd_vm *vm, const char *what, const char *err)
{
	char msg[sizeof(vm->error)];
	uint64_t wait = MEMD_RETRY_MS << (vm->failures < 5 ? vm->failures : 5);

	snprintf(msg, sizeof(msg), "%s: %s", what, err);
	if (strcmp(msg, vm->error) || !vm->error_told) {
		snprintf(vm->error, sizeof(vm->error), "%s", msg);
		memd_log_msg(d, "VM %s (%s): %s; the other VMs are still managed, retrying from %d s to every %d s",
			     vm->name, vm->path, msg, MEMD_RETRY_MS / 1000, MEMD_RETRY_MAX_MS / 1000);
		memd_event(d, "MEMD_VM_ERROR", json_pack("{s:s,s:s,s:s,s:s}", "vm", vm->name, "kind",
							 memd_vm_be(vm)->name, "socket", vm->path, "error", msg));
		vm->error_told = true;
	}
	memd_vm_be(vm)->disconnect(vm);
	vm->failures++;
	vm->retry_ms = memd_now_ms() + (wait < MEMD_RETRY_MAX_MS ? wait : MEMD_RETRY_MAX_MS);
}

int memd_add_vm_be(struct memd *d, const struct memd_backend *be, void *priv, const char *where,
		   const char *name, bool discovered, struct memd_vm **out)
{
	struct memd_vm tmp = { .be = be, .priv = priv };
	struct memd_vm *vm;

	if (d->nvm == MEMD_MAX_VMS) {
		memd_log_msg(d, "VM %s (%s) not managed: at most %d VMs", name, where, MEMD_MAX_VMS);
		if (be->release)
			be->release(&tmp);
		return -ENOSPC;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm || !(vm->path = strdup(where))) {
		free(vm);
		if (be->release)
			be->release(&tmp);
		return -ENOMEM;
	}
	vm->id = ++d->next_id;
	vm->be = be;
	vm->priv = priv;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	vm->discovered = discovered;
	d->vm[d->nvm++] = vm;
	memd_log_msg(d, "VM %s (%s) %s", name, where, !discovered ? "added"
		     : be == &memd_backend_minivmm ? "found in the run directory" : "found on the connection");
	memd_event(d, "MEMD_VM_ADDED", json_pack("{s:s,s:s,s:s,s:b}", "vm", name, "kind", be->name, "socket", where,
						 "discovered", discovered));
	if (out)
		*out = vm;
	return 0;
}

int memd_add_vm(struct memd *d, const char *path, const char *name, bool discovered)
{
	return memd_add_vm_be(d, &memd_backend_minivmm, NULL, path, name, discovered, NULL);
}

void memd_remove_vm(struct memd *d, int i, const char *why)
{
	struct memd_vm *vm = d->vm[i];

	memd_log_msg(d, "VM %s dropped: %s", vm->name, why);
	memd_event(d, "MEMD_VM_REMOVED", json_pack("{s:s,s:s,s:s,s:s}", "vm", vm->name, "kind",
						   memd_vm_be(vm)->name, "socket", vm->path, "why", why));
	memd_vm_be(vm)->disconnect(vm);
	if (memd_vm_be(vm)->release)
		memd_vm_be(vm)->release(vm);
	free(vm->path);
	free(vm);
	memmove(&d->vm[i], &d->vm[i + 1], sizeof(d->vm[0]) * (size_t)(d->nvm - i - 1));
	d->nvm--;
}

uint64_t memd_floor_sum(const struct memd *d)
{
	uint64_t sum = 0;

	for (int i = 0; i < d->nvm; i++) {
		const struct memd_vm *vm = d->vm[i];

		if (vm->sampled)
			sum += memd_vm_floor(&d->cfg, &vm->in);
		else
			sum += memd_opts_floor(&d->o, vm->name);
	}
	return sum;
}

static int check_budget(struct memd *d, uint64_t budget, uint64_t floors, char *err, size_t errlen)
{
	char a[32], b[32], c[32];

	if (budget >= floors)
		return 0;
	snprintf(err, errlen, "budget %s is below the sum of the VMs' floors (%s) by %s: raise the budget "
		 "or lower the floors (--vm-floor NAME=SIZE)", memd_size(budget, a), memd_size(floors, b),
		 memd_size(floors - budget, c));
	return -EINVAL;
}

int memd_set_budget(struct memd *d, uint64_t bytes, char *err, size_t errlen)
{
	char a[32];
	int r = check_budget(d, bytes, memd_floor_sum(d), err, errlen);

	if (r)
		return r;
	d->o.source = MEMD_SRC_BUDGET;
	d->o.budget = bytes;
	memd_log_msg(d, "budget set to %s", memd_size(bytes, a));
	memd_event(d, "MEMD_BUDGET", json_pack("{s:I}", "budget", (json_int_t)bytes));
	return 0;
}

int memd_set_policy(struct memd *d, const char *name, char *err, size_t errlen)
{
	struct memd_policy *p;
	char *s;

	if (memd_policy_new(name, &d->cfg, &p) < 0) {
		snprintf(err, errlen, "policy '%s' is not known: use minivmm, mom or none", name);
		return -EINVAL;
	}
	s = strdup(name);
	if (!s) {
		memd_policy_free(p);
		return -ENOMEM;
	}
	memd_policy_free(d->policy);
	d->policy = p;
	free(d->o.policy);
	d->o.policy = s;
	memd_log_msg(d, "policy set to %s", name);
	memd_event(d, "MEMD_POLICY", json_pack("{s:s}", "policy", name));
	return 0;
}

/*
 * The kernel's OOM killer in the managed cgroup: never silent. Each new
 * kill is said with the limit and usage that led to it, as an event and in
 * the timeline; the VM it ended is then dropped as any VM that exits.
 */
static void check_oom_kills(struct memd *d)
{
	struct memd_host_now *hn = &d->host;
	uint64_t n;
	char a[32], b[32];

	hn->oom_kills = MEMD_NONE;
	if (memd_cgroup_oom_kills(&d->cg, &n) < 0)
		return;
	hn->oom_kills = n >= d->oom_base ? n - d->oom_base : 0;
	if (n <= d->oom_seen)
		return;
	memd_log_msg(d, "the kernel's OOM killer ended %llu process(es) in cgroup %s (limit %s, usage %s): "
		     "a VM ended this way is lost with its memory; lower the budget with set-budget rather than "
		     "the cgroup's limit, keep the limit above the VMs' floors and overhead, or raise it",
		     (unsigned long long)(n - d->oom_seen), d->cg.dir, memd_size(hn->cg_limit, a),
		     memd_size(hn->cg_usage, b));
	memd_event(d, "MEMD_OOM_KILL", json_pack("{s:s,s:I,s:I}", "cgroup", d->cg.dir, "new",
						 (json_int_t)(n - d->oom_seen), "total", (json_int_t)hn->oom_kills));
	d->oom_seen = n;
}

static void sample_host(struct memd *d, struct memd_host_in *h)
{
	struct memd_host_now *hn = &d->host;

	if (memd_read_meminfo(&hn->mi) < 0)
		memset(&hn->mi, 0xff, sizeof(hn->mi));
	if (memd_read_psi(d->have_cg && d->cg.pressure_file ? d->cg.pressure_file : "/proc/pressure/memory",
			  &hn->psi) < 0)
		memset(&hn->psi, 0, sizeof(hn->psi));
	hn->budget = hn->usage = hn->cg_usage = hn->cg_limit = hn->cg_soft = MEMD_NONE;
	if (d->o.source == MEMD_SRC_CGROUP && d->have_cg) {
		/* unreadable (the cgroup was removed): the policy refuses the tick and says so */
		if (memd_cgroup_read(&d->cg, &hn->cg_usage, &hn->cg_limit) < 0)
			hn->cg_usage = hn->cg_limit = MEMD_NONE;
		hn->usage = hn->cg_usage;
		check_oom_kills(d);
		/* an unlimited cgroup is bounded by the host */
		hn->budget = hn->cg_limit == MEMD_NONE ? hn->mi.total : hn->cg_limit;
		/*
		 * A soft limit (v1) or memory.high (v2) under the hard one is the
		 * administrator's wish to get there: the budget. It is also how a
		 * limit goes down safely: v1 refuses a hard limit under the usage
		 * (EBUSY) and v2 OOM-kills, so lower the soft one first, let the
		 * VMs get under it, then the hard one.
		 */
		hn->cg_soft = memd_cgroup_soft(&d->cg);
		if (hn->cg_soft != MEMD_NONE && hn->cg_soft < hn->budget)
			hn->budget = hn->cg_soft;
	} else if (d->o.source == MEMD_SRC_BUDGET) {
		hn->budget = d->o.budget;
		hn->usage = 0;
		for (int i = 0; i < d->nvm; i++) {
			const struct memd_vm *vm = d->vm[i];

			if (!vm->sampled)
				continue;
			/* RSS holds guest RAM, the store and the VMM's own memory; without it, what the VM says */
			if (vm->rss != MEMD_NONE)
				hn->usage += vm->rss;
			else if (vm->in.resident != MEMD_NONE)
				hn->usage += vm->in.resident;
		}
	}
	*h = (struct memd_host_in){
		.now_ms = memd_now_ms(),
		.budget = hn->budget,
		.usage = hn->usage,
		.reserve = d->o.reserve,
		.mem_total = hn->mi.total,
		.mem_free = hn->mi.free,
		.buffers = hn->mi.buffers,
		.cached = hn->mi.cached,
		.mem_available = hn->mi.available,
		.psi_some_avg10 = hn->psi.some_avg10,
		.psi_full_avg10 = hn->psi.full_avg10,
		.psi_trigger = d->psi_fired,
		.ksm_pages_to_scan = memd_ksm_pages_to_scan(&d->ksm),
		.vmm_rss = 0,
	};
	for (int i = 0; i < d->nvm; i++)
		if (d->vm[i]->sampled && d->vm[i]->rss != MEMD_NONE)
			h->vmm_rss += d->vm[i]->rss;
	/*
	 * MOM knows only a host. Where memd manages a budget or a cgroup, that
	 * budget is the host MOM is asked to keep: MemTotal the budget, free
	 * what the VMs leave of it (no page cache of its own). Its rules stay
	 * exactly MOM's; they just see the same memory the other policies do.
	 */
	if (h->budget != MEMD_NONE && h->usage != MEMD_NONE) {
		h->mem_total = h->budget;
		h->mem_free = h->usage < h->budget ? h->budget - h->usage : 0;
		h->buffers = h->cached = 0;
	}
}

static const char *action_name(const struct memd_vm_decision *dec)
{
	if (dec->balloon == MEMD_SET && dec->resident == MEMD_SET)
		return "balloon+resident-target";
	if (dec->balloon == MEMD_SET)
		return dec->resident == MEMD_CLEAR ? "balloon+clear-resident-target" : "balloon";
	return dec->resident == MEMD_SET ? "resident-target" : "clear-resident-target";
}

static void apply(struct memd *d, struct memd_vm *vm, const struct memd_vm_decision *dec)
{
	char did[160], err[256];
	json_t *rec;
	int r;

	snprintf(vm->why, sizeof(vm->why), "%s", dec->why);
	if (dec->balloon == MEMD_KEEP && dec->resident == MEMD_KEEP)
		return;
	r = memd_vm_be(vm)->apply(d, vm, dec, did, sizeof(did), err, sizeof(err));
	if (r) {
		vm_failed(d, vm, "applying a decision", err);
		return;
	}
	if (!did[0])
		return;
	vm->actions++;
	d->decisions++;
	rec = json_pack("{s:s,s:s,s:s,s:s}", "vm", vm->name, "action", action_name(dec), "did", did,
			"why", dec->why);
	if (dec->balloon == MEMD_SET)
		json_object_set_new(rec, "balloon-target", json_integer((json_int_t)dec->balloon_target));
	if (dec->resident == MEMD_SET)
		json_object_set_new(rec, "resident-target", json_integer((json_int_t)dec->resident_target));
	json_object_set_new(rec, "state", json_string(memd_state_name(d->out.state)));
	memd_event(d, "MEMD_DECISION", json_incref(rec));
	memd_timeline(d, "decision", rec);
	if (d->o.verbose)
		fprintf(stderr, "minivmm-memd: VM %s: %s (%s)\n", vm->name, did, dec->why);
}

static void apply_ksm(struct memd *d)
{
	const struct memd_ksm_decision *k = &d->out.ksm;
	bool changed;
	char err[400];

	if (memd_ksm_apply(&d->ksm, k, &changed, err, sizeof(err)) < 0) {
		if (!d->ksm_told)
			memd_log_msg(d, "KSM decision not applied: %s", err);
		d->ksm_told = true;
		return;
	}
	if (changed) {
		json_t *rec = json_pack("{s:i,s:I,s:I,s:s}", "run", k->run, "pages-to-scan",
					(json_int_t)d->ksm.cur[1], "sleep-ms", (json_int_t)d->ksm.cur[2], "why", k->why);

		memd_event(d, "MEMD_KSM", json_incref(rec));
		memd_timeline(d, "ksm", rec);
		if (d->o.verbose)
			fprintf(stderr, "minivmm-memd: ksm: %s\n", k->why);
	}
}

void memd_tick(struct memd *d, bool psi)
{
	struct memd_input *in = &d->in;
	uint64_t now;
	char err[256];
	size_t n = 0;
	int r;

	if (psi) {
		d->psi_fired = true;
		d->psi_triggers++;
	}
	d->ticking = true;
	if (d->nlv)
		memd_lv_tick(d);
	if (d->o.run_dir || (!d->o.nvm && !d->o.nlibvirt))
		memd_vm_discover(d);
	now = memd_now_ms();
	for (int i = 0; i < d->nvm; i++) {
		struct memd_vm *vm = d->vm[i];
		const struct memd_backend *be = memd_vm_be(vm);

		if (!be->connected(vm) && now >= vm->retry_ms) {
			r = be->connect(d, vm, err, sizeof(err));
			if (r == -ESRCH) {
				memd_remove_vm(d, i--, err);
				continue;
			}
			if (r) {
				vm_failed(d, vm, "cannot manage it", err);
				continue;
			}
			if (vm->error[0])
				memd_log_msg(d, "VM %s (%s) reachable again", vm->name, vm->path);
			vm->error[0] = '\0';
			vm->error_told = false;
		}
		if (!be->connected(vm))
			continue;
		r = be->sample(d, vm, memd_now_ms(), err, sizeof(err));
		if (r == -ESRCH)
			memd_remove_vm(d, i--, err);
		else if (r)
			vm_failed(d, vm, "sampling it failed", err);
		else
			vm->failures = 0;
	}
	sample_host(d, &in->host);
	for (int i = 0; i < d->nvm; i++)
		if (d->vm[i]->sampled)
			d->vin[n++] = d->vm[i]->in;
	in->vm = d->vin;
	in->nvm = n;
	r = memd_policy_tick(d->policy, in, &d->out);
	d->ticks++;
	d->last_tick_ms = in->host.now_ms;
	d->psi_fired = false;
	if (r) {
		memd_log_msg(d, "policy %s refused this tick's input: %s", memd_policy_name(d->policy), d->out.why);
		d->have_out = false;
		d->ticking = false;
		return;
	}
	d->have_out = true;
	if (d->o.ksm && d->out.decided && d->out.ksm.action == MEMD_SET)
		apply_ksm(d);
	if (d->out.state != d->state || d->ticks == 1) {
		json_t *ev = json_pack("{s:s,s:s,s:s}", "from", memd_state_name(d->state), "to",
				       memd_state_name(d->out.state), "why", d->out.why);

		memd_event(d, "MEMD_STATE", json_incref(ev));
		memd_timeline(d, "state", ev);
		d->state = d->out.state;
	}
	for (size_t i = 0, k = 0; i < d->out.nvm; i++) {
		/* out.vm[i] answers vin[i]; find its VM by id (the list may not have changed) */
		for (; k < (size_t)d->nvm && d->vm[k]->id != d->out.vm[i].id; k++)
			;
		if (k < (size_t)d->nvm && memd_vm_connected(d->vm[k]))
			apply(d, d->vm[k], &d->out.vm[i]);
	}
	d->ticking = false;
	memd_timeline_sample(d);
	if (d->o.metrics && in->host.now_ms >= d->next_metrics_ms) {
		if (memd_metrics_write(d, d->o.metrics, err, sizeof(err)) < 0)
			memd_log_msg(d, "%s", err);
		d->next_metrics_ms = in->host.now_ms + MEMD_METRICS_PERIOD_MS;
	}
}

static void on_timer(void *opaque, uint32_t events)
{
	memd_tick(opaque, false);
}

static void on_psi(void *opaque, uint32_t events)
{
	struct memd *d = opaque;

	if (events & EPOLLERR) {
		memd_log_msg(d, "the PSI trigger failed; pressure is read every tick");
		loop_del(d->loop, d->psi_fd);
		close(d->psi_fd);
		d->psi_fd = -1;
		return;
	}
	if (events & EPOLLPRI)
		memd_tick(d, true);
}

static char *vm_name_of(const char *path, char *buf, size_t len)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t n = strlen(base);

	if (n > 4 && (!strcmp(base + n - 4, ".qmp") || !strcmp(base + n - 5, ".sock")))
		n -= base[n - 4] == '.' ? 4 : 5;
	snprintf(buf, len, "%.*s", (int)n, base);
	return buf;
}

int memd_start(struct memd *d, char *err, size_t errlen)
{
	const char *pname = d->o.policy ? d->o.policy : "minivmm";
	const char *psi_path = "/proc/pressure/memory";
	char name[MEMD_NAME_MAX];
	int r;

	d->psi_fd = d->timer_fd = -1;
	memd_config_default(&d->cfg);
	d->state = MEMD_OK;
	d->start_ms = memd_now_ms();
	if (d->o.source == MEMD_SRC_BUDGET &&
	    (r = check_budget(d, d->o.budget, memd_opts_floor_sum(&d->o), err, errlen)))
		return r;
	if (d->o.source == MEMD_SRC_CGROUP) {
		r = memd_cgroup_open(d->o.cgroup, &d->cg, err, errlen);
		if (r)
			return r;
		d->have_cg = true;
		if (memd_cgroup_oom_kills(&d->cg, &d->oom_base) < 0)
			d->oom_base = 0;
		d->oom_seen = d->oom_base;
		if (d->cg.pressure_file)
			psi_path = d->cg.pressure_file;
	}
	d->cfg.headroom = d->o.headroom;
	if (d->o.ksm && (r = memd_ksm_open(&d->ksm, "/sys/kernel/mm/ksm", err, errlen)))
		return r;
	if (memd_policy_new(pname, &d->cfg, &d->policy) < 0) {
		snprintf(err, errlen, "policy '%s' is not known: use minivmm, mom or none", pname);
		return -EINVAL;
	}
	if (d->o.log) {
		d->log = fopen(d->o.log, "ae");
		if (!d->log) {
			r = -errno;
			snprintf(err, errlen, "--log %s: %s", d->o.log, strerror(errno));
			return r;
		}
		setvbuf(d->log, NULL, _IOLBF, 0);
	}
	d->loop = loop_new();
	if (!d->loop) {
		snprintf(err, errlen, "cannot create the event loop");
		return -ENOMEM;
	}
	if (d->o.control && (r = memd_control_open(d, d->o.control, err, errlen)))
		return r;
	d->psi_fd = memd_psi_trigger(psi_path, PSI_STALL_US, PSI_WINDOW_US, err, errlen);
	if (d->psi_fd == -EINVAL) {
		/* without CAP_SYS_RESOURCE the kernel takes only windows in whole 2 s: keep the ratio */
		d->psi_fd = memd_psi_trigger(psi_path, 2 * PSI_STALL_US, 2 * PSI_WINDOW_US, err, errlen);
		if (d->psi_fd >= 0)
			memd_log_msg(d, "PSI trigger 'some %d %d' refused (a 1 s window needs CAP_SYS_RESOURCE): "
				     "using 'some %d %d'", PSI_STALL_US, PSI_WINDOW_US, 2 * PSI_STALL_US,
				     2 * PSI_WINDOW_US);
	}
	if (d->psi_fd < 0) {
		memd_log_msg(d, "no PSI trigger (%s): pressure is read every tick instead", err);
		d->psi_fd = -1;
	} else if (loop_add(d->loop, d->psi_fd, EPOLLPRI, on_psi, d) < 0) {
		close(d->psi_fd);
		d->psi_fd = -1;
	} else {
		snprintf(d->psi_file, sizeof(d->psi_file), "%s", psi_path);
	}
	err[0] = '\0';
	d->timer_fd = loop_add_timer(d->loop, d->o.interval_ms * 1000000ULL, on_timer, d);
	if (d->timer_fd < 0) {
		snprintf(err, errlen, "cannot create the tick timer: %s", strerror(-d->timer_fd));
		return d->timer_fd;
	}
	for (int i = 0; i < d->o.nvm; i++)
		memd_add_vm(d, d->o.vm[i], vm_name_of(d->o.vm[i], name, sizeof(name)), false);
	if (d->o.nlibvirt && (r = memd_lv_start(d, err, errlen)))
		return r;
	{
		char src[600], b[32];

		if (d->have_cg)
			snprintf(src, sizeof(src), "cgroup v%d %s", d->cg.version, d->cg.dir);
		else if (d->o.source == MEMD_SRC_BUDGET)
			snprintf(src, sizeof(src), "budget %s", memd_size(d->o.budget, b));
		else
			snprintf(src, sizeof(src), "host, keeping %s available", memd_size(d->o.reserve, b));
		memd_log_msg(d, "started: policy %s, %s, tick %.2f s, %s%s", pname, src,
			     (double)d->o.interval_ms / 1000.0, d->psi_fd >= 0 ? "PSI trigger on " : "no PSI trigger",
			     d->psi_fd >= 0 ? d->psi_file : "");
	}
	memd_tick(d, false);
	return 0;
}

void memd_stop(struct memd *d)
{
	char err[256];

	if (d->o.metrics && d->have_out && memd_metrics_write(d, d->o.metrics, err, sizeof(err)) < 0)
		fprintf(stderr, "minivmm-memd: %s\n", err);
	while (d->nvm)
		memd_remove_vm(d, d->nvm - 1, "the daemon stops");
	memd_lv_stop(d);
	memd_ksm_restore(&d->ksm);
	memd_control_close(d);
	if (d->psi_fd >= 0) {
		if (d->loop)
			loop_del(d->loop, d->psi_fd);
		close(d->psi_fd);
	}
	if (d->loop)
		loop_free(d->loop);
	if (d->log)
		fclose(d->log);
	memd_policy_free(d->policy);
	if (d->have_cg)
		memd_cgroup_close(&d->cg);
	memd_opts_free(&d->o);
}
