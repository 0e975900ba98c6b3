/*
 * The "mom" policy: oVirt MOM's default rules, reproduced as the baseline
 * (doc/balloon.rules and doc/ksm.rules of oVirt/mom, see
 * ../shared/POLICY-ANCHORS.md). Deliberately not improved: it samples every
 * 5 s, averages the last 10 samples (StatAvg), evaluates every 10 s, counts
 * page cache as free on the host, has no notion of guest pressure, of stale
 * stats or of a budget. Arithmetic is done as MOM does it, in KiB (libvirt's
 * unit) with doubles, and a target is truncated to whole KiB as MOM's
 * balloon controller does with int().
 */
#include <stdio.h>

#include "balloon/memd/policy_priv.h"

#define MOM_SAMPLE_MS 5000              /* host and guest monitors' interval */
#define MOM_POLICY_MS 10000             /* policy engine interval */
#define MOM_NSAMPLES  10                /* StatAvg window */

/* balloon.rules constants */
#define PRESSURE_THRESHOLD         0.20
#define PRESSURE_CRITICAL          0.05
#define MIN_GUEST_FREE_PERCENT     0.20
#define MAX_BALLOON_CHANGE_PERCENT 0.05
#define MIN_BALLOON_CHANGE_PERCENT 0.0025

/* ksm.rules constants */
#define KSM_PAGES_BOOST       300
#define KSM_PAGES_DECAY       (-50)
#define KSM_NPAGES_MIN        64
#define KSM_NPAGES_MAX        1250
#define KSM_SLEEP_MS_BASELINE 10
#define KSM_FREE_PERCENT      0.20

struct mom_ring {
	double v[MOM_NSAMPLES];
	int n, next;
};

struct mom_vm {
	struct mom_ring cur, unused;    /* KiB */
	bool ready;                     /* the last collection had every field MOM needs */
};

struct mom_state {
	struct memd_slots slots;
	struct mom_vm vm[MEMD_MAX_VMS];
	struct mom_ring host_free;      /* KiB: MemFree + Buffers + Cached */
	bool host_ready;
	bool sampled, evaluated;
	uint64_t last_sample_ms, last_eval_ms;
	enum memd_state state;
};

static void ring_push(struct mom_ring *r, double v)
{
	r->v[r->next] = v;
	r->next = (r->next + 1) % MOM_NSAMPLES;
	if (r->n < MOM_NSAMPLES)
		r->n++;
}

static double ring_avg(const struct mom_ring *r)
{
	double sum = 0;

	for (int i = 0; i < r->n; i++)
		sum += r->v[i];
	return r->n ? sum / r->n : 0;
}

static double ring_last(const struct mom_ring *r)
{
	return r->v[(r->next + MOM_NSAMPLES - 1) % MOM_NSAMPLES];
}

static double kib(uint64_t bytes)
{
	return (double)bytes / 1024.0;
}

static void mom_init(void *st, const struct memd_config *cfg)
{
	struct mom_state *s = st;

	s->state = MEMD_OK;
}

/* The monitors' collection: host and every guest, all in one go every 5 s. */
static void collect(struct mom_state *s, const struct memd_input *in, const int slot[])
{
	const struct memd_host_in *h = &in->host;

	s->host_ready = h->mem_free != MEMD_NONE && h->buffers != MEMD_NONE && h->cached != MEMD_NONE;
	if (s->host_ready)
		ring_push(&s->host_free, kib(h->mem_free) + kib(h->buffers) + kib(h->cached));
	for (size_t i = 0; i < in->nvm; i++) {
		const struct memd_vm_in *vm = &in->vm[i];
		struct mom_vm *v = &s->vm[slot[i]];

		/* libvirt's memoryStats without "unused" fails MOM's collector: the guest sits out */
		v->ready = vm->stats.free != MEMD_NONE && vm->balloon_actual != MEMD_NONE;
		if (v->ready) {
			ring_push(&v->cur, kib(vm->balloon_actual));
			ring_push(&v->unused, kib(vm->stats.free));
		}
	}
}

/* no libm: the daemon links none */
static double dmax(double a, double b)
{
	return a > b ? a : b;
}

static bool change_big_enough(double cur, double new_val)
{
	double d = new_val - cur;

	return (d < 0 ? -d : d) > MIN_BALLOON_CHANGE_PERCENT * cur;
}

static void set_target(struct memd_vm_decision *d, double size_kib)
{
	d->balloon = MEMD_SET;
	d->balloon_target = (uint64_t)size_kib * 1024;  /* int() in MOM's controller */
}

static void shrink_guest(const struct mom_vm *v, const struct memd_vm_in *vm, double hfp,
			 struct memd_vm_decision *d)
{
	double cur = ring_last(&v->cur), gfp, used, bmin, size;
	char a[MEMD_SZ], b[MEMD_SZ], c[MEMD_SZ];

	if (hfp <= PRESSURE_CRITICAL)
		gfp = -0.05 + hfp;      /* critical: force the guest to swap */
	else
		gfp = MIN_GUEST_FREE_PERCENT * (hfp / PRESSURE_THRESHOLD);
	used = ring_avg(&v->cur) - ring_avg(&v->unused);
	bmin = dmax(kib(vm->floor), used + gfp * cur);
	size = cur * (1 - MAX_BALLOON_CHANGE_PERCENT);
	if (size < bmin)
		size = bmin;
	snprintf(d->why, MEMD_WHY_MAX, "mom shrink: guest free %.4f; used %s; min max(%s, used+free x cur) = %s",
		 gfp, memd_sz(a, (int64_t)(used * 1024)), memd_sz(b, (int64_t)vm->floor),
		 memd_sz(c, (int64_t)(bmin * 1024)));
	if (size <= cur && change_big_enough(cur, size)) {
		set_target(d, size);
		memd_why(d->why, "; target max(cur %s x 0.95, min) = %s", memd_sz(a, (int64_t)(cur * 1024)),
			 memd_sz(b, (int64_t)d->balloon_target));
	} else {
		memd_why(d->why, "; cur %s kept: %s", memd_sz(a, (int64_t)(cur * 1024)),
			 size > cur ? "min is above cur" : "change <= 0.25% of cur");
	}
}

static void grow_guest(const struct mom_vm *v, const struct memd_vm_in *vm, struct memd_vm_decision *d)
{
	double cur = ring_last(&v->cur), max = kib(vm->ram), used, bmin, size;
	char a[MEMD_SZ], b[MEMD_SZ], c[MEMD_SZ];

	if (!(cur < max)) {
		snprintf(d->why, MEMD_WHY_MAX, "mom grow: not ballooned (cur %s = max)",
			 memd_sz(a, (int64_t)(cur * 1024)));
		return;
	}
	used = ring_avg(&v->cur) - ring_avg(&v->unused);
	bmin = dmax(kib(vm->floor), used + MIN_GUEST_FREE_PERCENT * cur);
	size = cur * (1 + MAX_BALLOON_CHANGE_PERCENT);
	if (size < bmin)
		size = bmin;
	if (size > max)
		size = max;
	snprintf(d->why, MEMD_WHY_MAX, "mom grow: used %s; min max(%s, used+0.20 x cur) = %s",
		 memd_sz(a, (int64_t)(used * 1024)), memd_sz(b, (int64_t)vm->floor),
		 memd_sz(c, (int64_t)(bmin * 1024)));
	if (change_big_enough(cur, size)) {
		set_target(d, size);
		memd_why(d->why, "; target min(max %s, max(cur %s x 1.05, min)) = %s",
			 memd_sz(a, (int64_t)vm->ram), memd_sz(b, (int64_t)(cur * 1024)),
			 memd_sz(c, (int64_t)d->balloon_target));
	} else {
		memd_why(d->why, "; cur %s kept: change <= 0.25%% of cur", memd_sz(a, (int64_t)(cur * 1024)));
	}
}

static void ksm_rule(const struct memd_host_in *h, double avg_free, struct memd_ksm_decision *k)
{
	double total = kib(h->mem_total), thres = total * KSM_FREE_PERCENT;
	double committed = h->vmm_rss == MEMD_NONE ? 0 : kib(h->vmm_rss);
	int64_t pages = h->ksm_pages_to_scan == MEMD_NONE ? 0 : (int64_t)h->ksm_pages_to_scan;
	bool boost = avg_free < thres;

	k->action = MEMD_SET;
	if (thres + committed < total && avg_free > thres) {
		k->run = 0;
		snprintf(k->why, MEMD_WHY_MAX, "mom ksm off: free %.0fK > 20%% of MemTotal (%.0fK) and "
			 "VM RSS %.0fK + that < MemTotal", avg_free, thres, committed);
		return;
	}
	k->run = 1;
	/* 16 GiB in KiB: ksmd sleeps less on bigger hosts (MOM divides; sysfs takes an integer) */
	k->sleep_ms = (uint64_t)(KSM_SLEEP_MS_BASELINE * 16.0 * 1024 * 1024 / total);
	pages += boost ? KSM_PAGES_BOOST : KSM_PAGES_DECAY;
	if (pages > KSM_NPAGES_MAX)
		pages = KSM_NPAGES_MAX;
	else if (pages < KSM_NPAGES_MIN)
		pages = KSM_NPAGES_MIN;
	k->pages_to_scan = (uint64_t)pages;
	snprintf(k->why, MEMD_WHY_MAX, "mom ksm on: free %.0fK %s 20%% of MemTotal (%.0fK), VM RSS %.0fK; "
		 "pages_to_scan %s to %llu, sleep %llu ms", avg_free, boost ? "<" : ">=", thres, committed,
		 boost ? "+300" : "-50", (unsigned long long)k->pages_to_scan,
		 (unsigned long long)k->sleep_ms);
}

static void mom_tick(void *st, const struct memd_config *cfg, const struct memd_input *in,
		     struct memd_output *out)
{
	struct mom_state *s = st;
	const struct memd_host_in *h = &in->host;
	int slot[MEMD_MAX_VMS];
	bool fresh[MEMD_MAX_VMS];
	struct memd_room r;
	double avg_free, hfp;
	uint64_t now = h->now_ms;

	memd_room_of(h, &r);
	out->room = r.room;
	memd_slots_match(&s->slots, in, slot, fresh);
	for (size_t i = 0; i < in->nvm; i++) {
		if (fresh[i])
			s->vm[slot[i]] = (struct mom_vm){ .ready = false };
		out->vm[i].floor = in->vm[i].floor;     /* MOM's balloon_min: no default floor */
	}
	if (!s->sampled || now - s->last_sample_ms >= MOM_SAMPLE_MS) {
		collect(s, in, slot);
		s->sampled = true;
		s->last_sample_ms = now;
	}
	if (s->evaluated && now - s->last_eval_ms < MOM_POLICY_MS) {
		out->state = s->state;
		snprintf(out->why, MEMD_WHY_MAX, "mom: %s; next evaluation in %.1f s", memd_state_name(s->state),
			 (double)(MOM_POLICY_MS - (now - s->last_eval_ms)) / 1000);
		for (size_t i = 0; i < in->nvm; i++)
			snprintf(out->vm[i].why, MEMD_WHY_MAX, "mom: waits for its 10 s policy period");
		snprintf(out->ksm.why, MEMD_WHY_MAX, "mom: waits for its 10 s policy period");
		return;
	}
	s->evaluated = true;
	s->last_eval_ms = now;
	out->decided = true;
	if (!s->host_free.n) {
		snprintf(out->why, MEMD_WHY_MAX, "mom: no host sample yet (MemFree, Buffers or Cached missing)");
		for (size_t i = 0; i < in->nvm; i++)
			snprintf(out->vm[i].why, MEMD_WHY_MAX, "mom: no host sample yet");
		snprintf(out->ksm.why, MEMD_WHY_MAX, "mom: no host sample yet");
		out->state = s->state;
		return;
	}
	avg_free = ring_avg(&s->host_free);
	hfp = avg_free / kib(h->mem_total);
	s->state = hfp < PRESSURE_THRESHOLD ? (hfp <= PRESSURE_CRITICAL ? MEMD_CRITICAL : MEMD_PRESSURE)
					    : MEMD_OK;
	out->state = s->state;
	snprintf(out->why, MEMD_WHY_MAX, "mom: host free %.4f = StatAvg(MemFree+Buffers+Cached) %.0fK over %d "
		 "samples / MemTotal %.0fK; %s", hfp, avg_free, s->host_free.n, kib(h->mem_total),
		 hfp < PRESSURE_THRESHOLD ? "< 0.20: shrink every guest" : ">= 0.20: grow ballooned guests");
	for (size_t i = 0; i < in->nvm; i++) {
		const struct mom_vm *v = &s->vm[slot[i]];

		if (!v->ready)
			snprintf(out->vm[i].why, MEMD_WHY_MAX, "mom: no memory stats from the guest "
				 "(MOM leaves such guests out)");
		else if (hfp < PRESSURE_THRESHOLD)
			shrink_guest(v, &in->vm[i], hfp, &out->vm[i]);
		else
			grow_guest(v, &in->vm[i], &out->vm[i]);
	}
	ksm_rule(h, avg_free, &out->ksm);
}

const struct memd_policy_ops memd_policy_mom_ops = {
	.name = "mom",
	.state_size = sizeof(struct mom_state),
	.init = mom_init,
	.tick = mom_tick,
};
