/*
 * memd policy front end: the registry of policies, the checks every input
 * passes before a policy sees it, default tunables, floors and stats
 * freshness, the per-VM slot table, the host-state classifier with its
 * hysteresis, and the formatting of why strings.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balloon/memd/policy_priv.h"

struct memd_policy {
	const struct memd_policy_ops *ops;
	struct memd_config cfg;
	uint64_t last_ms;
	bool ticked;
	/* the policy's own state follows, ops->state_size bytes */
	max_align_t state[];
};

static const struct memd_policy_ops *const policies[] = {
	&memd_policy_minivmm_ops,
	&memd_policy_mom_ops,
	&memd_policy_none_ops,
};

void memd_config_default(struct memd_config *cfg)
{
	*cfg = (struct memd_config){
		.stale_ms = 5000,
		.floor_min = 256 * MiB,
		.floor_pct = 25,
		.tight_pct = 10,
		.pressure_pct = 3,
		.goal_pct = 6,
		.margin_pct = 2,
		.psi_some_pressure = 10.0,
		.psi_full_critical = 5.0,
		.calm_ms = 5000,
		.stall_ms = 5000,
		.bound_ms = 30000,
		.cooldown_ms = 30000,
		.step_pct = 5,
		.max_step_pct = 10,
		.min_change = 4 * MiB,
		.major_fault_rate = 100,
		.refault_rate = 200,
		.headroom_pct = 40,
		.trim_idle_s = 10,
		.squeeze_idle_s = 5,
		.lookahead_ms = 2000,
	};
}

uint64_t memd_vm_idle(const struct memd_vm_in *vm, uint32_t seconds)
{
	static const uint32_t secs[MEMD_IDLE_N] = MEMD_IDLE_SECONDS_INIT;

	for (int k = 0; k < MEMD_IDLE_N; k++)
		if (secs[k] >= seconds)
			return vm->idle[k] == MEMD_NONE ? 0 : vm->idle[k];
	return 0;
}

int memd_policy_new(const char *name, const struct memd_config *cfg, struct memd_policy **out)
{
	const struct memd_policy_ops *ops = NULL;
	struct memd_policy *p;

	*out = NULL;
	for (size_t i = 0; name && i < sizeof(policies) / sizeof(policies[0]); i++)
		if (!strcmp(policies[i]->name, name))
			ops = policies[i];
	if (!ops)
		return -EINVAL;
	p = calloc(1, sizeof(*p) + ops->state_size);
	if (!p)
		return -ENOMEM;
	p->ops = ops;
	if (cfg)
		p->cfg = *cfg;
	else
		memd_config_default(&p->cfg);
	ops->init(p->state, &p->cfg);
	*out = p;
	return 0;
}

void memd_policy_free(struct memd_policy *p)
{
	free(p);
}

const char *memd_policy_name(const struct memd_policy *p)
{
	return p->ops->name;
}

const char *memd_state_name(enum memd_state s)
{
	switch (s) {
	case MEMD_OK: return "ok";
	case MEMD_TIGHT: return "tight";
	case MEMD_PRESSURE: return "pressure";
	case MEMD_CRITICAL: return "critical";
	}
	return "?";
}

uint64_t memd_vm_floor(const struct memd_config *cfg, const struct memd_vm_in *vm)
{
	uint64_t f = vm->floor ? vm->floor : memd_max(cfg->floor_min, vm->ram * cfg->floor_pct / 100);

	return memd_min(f, vm->ram);
}

bool memd_stats_fresh(const struct memd_config *cfg, const struct memd_vm_in *vm, uint64_t now_ms)
{
	const struct memd_guest_stats *s = &vm->stats;

	if (s->updated_ms == MEMD_NONE || s->updated_ms == 0)
		return false;
	/* a guest clock ahead of ours is not staleness */
	if (s->updated_ms < now_ms && now_ms - s->updated_ms > cfg->stale_ms)
		return false;
	return s->free != MEMD_NONE || s->available != MEMD_NONE;
}

static int check_input(const struct memd_policy *p, const struct memd_input *in, char *why, size_t len)
{
	const struct memd_host_in *h = &in->host;

	if (in->nvm > MEMD_MAX_VMS || (in->nvm && !in->vm)) {
		snprintf(why, len, "input refused: %zu VMs (at most %d)", in->nvm, MEMD_MAX_VMS);
		return -EINVAL;
	}
	if (p->ticked && h->now_ms < p->last_ms) {
		snprintf(why, len, "input refused: time went back from %llu to %llu ms",
			 (unsigned long long)p->last_ms, (unsigned long long)h->now_ms);
		return -EINVAL;
	}
	if (h->budget != MEMD_NONE && h->usage == MEMD_NONE) {
		snprintf(why, len, "input refused: a budget without its usage");
		return -EINVAL;
	}
	if (h->mem_total == MEMD_NONE || h->mem_total == 0 ||
	    (h->budget == MEMD_NONE && h->mem_available == MEMD_NONE)) {
		snprintf(why, len, "input refused: MemTotal or MemAvailable missing");
		return -EINVAL;
	}
	for (size_t i = 0; i < in->nvm; i++) {
		if (!in->vm[i].ram) {
			snprintf(why, len, "input refused: VM %llu has no RAM size",
				 (unsigned long long)in->vm[i].id);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (in->vm[j].id == in->vm[i].id) {
				snprintf(why, len, "input refused: VM id %llu given twice",
					 (unsigned long long)in->vm[i].id);
				return -EINVAL;
			}
		}
	}
	return 0;
}

int memd_policy_tick(struct memd_policy *p, const struct memd_input *in, struct memd_output *out)
{
	int err;

	memset(out, 0, sizeof(*out));
	err = check_input(p, in, out->why, sizeof(out->why));
	if (err)
		return err;
	out->nvm = in->nvm;
	for (size_t i = 0; i < in->nvm; i++) {
		out->vm[i].id = in->vm[i].id;
		out->vm[i].floor = memd_vm_floor(&p->cfg, &in->vm[i]);
	}
	p->ops->tick(p->state, &p->cfg, in, out);
	p->last_ms = in->host.now_ms;
	p->ticked = true;
	return 0;
}

void memd_slots_match(struct memd_slots *s, const struct memd_input *in, int slot[], bool fresh[])
{
	bool seen[MEMD_MAX_VMS] = { false };

	for (size_t i = 0; i < in->nvm; i++) {
		slot[i] = -1;
		fresh[i] = false;
		for (int k = 0; k < MEMD_MAX_VMS; k++) {
			if (s->used[k] && s->id[k] == in->vm[i].id) {
				slot[i] = k;
				seen[k] = true;
				break;
			}
		}
	}
	for (int k = 0; k < MEMD_MAX_VMS; k++)
		if (!seen[k])
			s->used[k] = false;
	for (size_t i = 0; i < in->nvm; i++) {
		for (int k = 0; slot[i] < 0 && k < MEMD_MAX_VMS; k++) {
			if (!s->used[k]) {
				s->used[k] = true;
				s->id[k] = in->vm[i].id;
				slot[i] = k;
				fresh[i] = true;
			}
		}
	}
}

void memd_room_of(const struct memd_host_in *h, struct memd_room *r)
{
	r->budget = h->budget != MEMD_NONE;
	if (r->budget) {
		r->scale = h->budget ? h->budget : 1;
		r->room = (int64_t)h->budget - (int64_t)h->usage;
	} else {
		r->scale = h->mem_total;
		r->room = (int64_t)h->mem_available - (int64_t)(h->reserve == MEMD_NONE ? 0 : h->reserve);
	}
}

/* The state the figures call for; margin_pct and halved PSI levels when judging calm. */
static enum memd_state level(const struct memd_config *cfg, const struct memd_host_in *h,
			     const struct memd_room *r, bool calm)
{
	int64_t pct = calm ? cfg->margin_pct : 0;
	double div = calm ? 2.0 : 1.0;
	int64_t scale = (int64_t)r->scale;

	if (r->room < pct * scale / 100 || h->psi_full_avg10 >= cfg->psi_full_critical / div)
		return MEMD_CRITICAL;
	if (r->room < (cfg->pressure_pct + pct) * scale / 100 || h->psi_trigger ||
	    h->psi_some_avg10 >= cfg->psi_some_pressure / div)
		return MEMD_PRESSURE;
	if (r->room < (cfg->tight_pct + pct) * scale / 100)
		return MEMD_TIGHT;
	return MEMD_OK;
}

bool memd_critical_now(const struct memd_config *cfg, const struct memd_host_in *h,
		       const struct memd_room *r)
{
	return level(cfg, h, r, false) == MEMD_CRITICAL;
}

void memd_classify(struct memd_hyst *hy, const struct memd_config *cfg, const struct memd_host_in *h,
		   const struct memd_room *r, char *why, size_t len)
{
	enum memd_state raw = level(cfg, h, r, false), calm = level(cfg, h, r, true), was = hy->state;
	char s1[MEMD_SZ], s2[MEMD_SZ];
	uint64_t now = h->now_ms;

	if (raw > hy->state) {
		hy->state = raw;
		hy->calming = false;
	} else if (calm < hy->state) {
		if (!hy->calming) {
			hy->calming = true;
			hy->calm_since = now;
		}
		if (now - hy->calm_since >= cfg->calm_ms) {
			hy->state--;
			hy->calm_since = now;
			hy->calming = calm < hy->state;
		}
	} else {
		hy->calming = false;
	}
	snprintf(why, len, "%s: room %s = %.1f%% of %s %s", memd_state_name(hy->state),
		 memd_sz(s1, r->room), 100.0 * (double)r->room / (double)r->scale,
		 r->budget ? "budget" : "MemTotal", memd_sz(s2, (int64_t)r->scale));
	if (h->psi_trigger)
		memd_why(why, ", psi trigger fired");
	if (h->psi_some_avg10 > 0 || h->psi_full_avg10 > 0)
		memd_why(why, ", psi some %.2f full %.2f", h->psi_some_avg10, h->psi_full_avg10);
	if (hy->state > was)
		memd_why(why, "; entered at once from %s", memd_state_name(was));
	else if (hy->state < was)
		memd_why(why, "; calmer than %s for %.1f s", memd_state_name(was), (double)cfg->calm_ms / 1000);
	else if (hy->calming)
		memd_why(why, "; held: calm for %.1f of %.1f s", (double)(now - hy->calm_since) / 1000,
			 (double)cfg->calm_ms / 1000);
	else if (raw < hy->state)
		memd_why(why, "; held: not yet clear of the %s threshold by the %u%% margin",
			 memd_state_name(hy->state), cfg->margin_pct);
}

void memd_why(char *why, const char *fmt, ...)
{
	size_t n = strnlen(why, MEMD_WHY_MAX);
	va_list ap;

	if (n + 1 >= MEMD_WHY_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(why + n, MEMD_WHY_MAX - n, fmt, ap);
	va_end(ap);
}

const char *memd_sz(char *buf, int64_t b)
{
	uint64_t m = b < 0 ? (uint64_t)-b : (uint64_t)b;

	if (m >= (1ULL << 30))
		snprintf(buf, MEMD_SZ, "%.2fG", (double)b / (double)(1ULL << 30));
	else
		snprintf(buf, MEMD_SZ, "%.1fM", (double)b / (double)MiB);
	return buf;
}

const char *memd_vm_label(const struct memd_vm_in *vm, char *buf, size_t len)
{
	if (vm->name && *vm->name)
		snprintf(buf, len, "%s", vm->name);
	else
		snprintf(buf, len, "vm%llu", (unsigned long long)vm->id);
	return buf;
}
