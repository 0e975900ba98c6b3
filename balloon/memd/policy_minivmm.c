/*
 * The "minivmm" policy: keeps the managed VMs within their budget (or the
 * host above its reserve), deciding every tick and in the very tick a PSI
 * trigger arrives.
 *
 * Host states (memd_classify): ok, tight (room < 10%), pressure (room < 3%,
 * a PSI trigger, PSI some >= 10%), critical (over budget, PSI full >= 5%).
 * Worse states are entered at once, calmer ones one level at a time after
 * 5 s with a 2% margin, so the actions below cannot flap.
 *
 * Under pressure it reclaims up to a goal of 6% room, counting what is
 * already in flight, cheapest for the guests first:
 *   0. reported-free and zero pages: the VMMs take them on their own (free
 *      page reporting, the zero-page stage of reclaim); their effect is in
 *      the usage already, so they are only reported here;
 *   1. a resident target per VM that supports one: its reclaim compresses
 *      and deduplicates cold pages, under its own refault-rate controller;
 *      guests with the most resident memory above their floor per weight
 *      first; never a guest showing pressure or refaulting hard;
 *   2. balloon inflation of the guests with the most free memory above
 *      their floor per weight, never below the floor and always leaving the
 *      guest 10% of its memory free (at least 64 MiB).
 * Critical counts resident targets at half their size (reclaim takes
 * seconds) so balloons act in the same tick, and doubles the step limit.
 *
 * In tight and ok, memory goes back first to guests showing pressure
 * (allocation stalls, OOM kills, swap-in, major faults or host refaults over
 * a rate, little available memory): their resident target is cleared and
 * their balloon deflated, keeping the host at the 6% goal; in ok the other
 * guests' resident targets are cleared and balloons deflated too, keeping
 * 12% room. A guest given memory is not squeezed again for the cooldown.
 *
 * Pacing: a VM's step is twice what it achieved per second toward its last
 * target (5% of its RAM until measured; 16 MiB to 10% of RAM). A balloon or
 * resident target that makes no progress for 5 s, or is not reached in
 * 30 s, is stepped back to what the VM has, and the VM cools down for 30 s.
 * Stale or missing guest stats: the guest is neither ballooned nor judged
 * pressured (its resident target may still be used).
 */
#include <stdio.h>
#include <string.h>

#include "balloon/memd/policy_priv.h"

#define KEEP_FREE_MIN (64 * MiB)        /* a ballooned guest keeps at least this available */
#define KEEP_FREE_PCT 10                /* ... or this % of its memory */
#define LOW_AVAIL_PCT 5                 /* available below this % of its memory is pressure */

/* Progress toward one target (balloon or resident). */
struct track {
	uint64_t target;        /* MEMD_NONE: nothing outstanding */
	uint64_t since_ms, progress_ms;
	uint64_t start, last;
	double rate;            /* bytes/s achieved toward targets; 0 = not measured */
};

struct mv_vm {
	struct track bal, res;
	bool trim;                      /* the resident target is a headroom trim: cleared once reached */
	uint64_t trim_target;
	uint64_t cooldown_until;
	uint64_t pressure_ms;           /* last time pressure was seen; 0 never */
	bool have_prev;
	uint64_t prev_ms, majflt, swap_in, ooms, stalls, refault;
};

struct mv_state {
	struct memd_hyst hy;
	bool have_room;
	int64_t prev_room;              /* room at the previous tick, for the growth rate */
	uint64_t prev_ms;
	struct memd_slots slots;
	struct mv_vm vm[MEMD_MAX_VMS];
};

/* This tick's view of one VM. */
struct mv_cur {
	const struct memd_vm_in *in;
	struct mv_vm *st;
	struct memd_vm_decision *d;
	uint64_t floor, weight, step;
	uint64_t btarget;               /* balloon target, the actual if none was given */
	bool fresh;                     /* guest stats usable */
	uint64_t avail;                 /* MEMD_NONE unknown */
	bool pressured, stepped_back, cooling;
	uint64_t idle_trim, idle_squeeze;   /* idle bytes a headroom trim / a squeeze may take */
	char name[32];
};

static void mv_init(void *st, const struct memd_config *cfg)
{
	struct mv_state *s = st;

	s->hy.state = MEMD_OK;
}

static uint64_t absdiff(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/*
 * Follows value toward target; returns true when the target is stalled
 * (no progress for stall_ms, or not reached within bound_ms).
 */
static bool track(struct track *t, const struct memd_config *cfg, uint64_t target, uint64_t value,
		  uint64_t now)
{
	if (target == MEMD_NONE || value == MEMD_NONE || absdiff(target, value) <= cfg->min_change) {
		if (t->target != MEMD_NONE && now > t->since_ms && absdiff(t->start, value) > cfg->min_change)
			t->rate = (double)absdiff(t->start, value) * 1000.0 / (double)(now - t->since_ms);
		t->target = MEMD_NONE;
		return false;
	}
	if (t->target != target) {
		*t = (struct track){ .target = target, .since_ms = now, .progress_ms = now, .start = value,
				     .last = value, .rate = t->rate };
		return false;
	}
	if ((target < value && t->last >= value + MiB) || (target > value && value >= t->last + MiB)) {
		t->progress_ms = now;
		t->last = value;
		if (now > t->since_ms)
			t->rate = (double)absdiff(t->start, value) * 1000.0 / (double)(now - t->since_ms);
	}
	return now - t->progress_ms >= cfg->stall_ms || now - t->since_ms >= cfg->bound_ms;
}

/* Steps are whole MiB: targets stay page-aligned and read well in the timeline. */
static uint64_t mib_down(uint64_t b)
{
	return b & ~(MiB - 1);
}

static uint64_t counter_delta(uint64_t cur, uint64_t prev)
{
	return cur == MEMD_NONE || prev == MEMD_NONE || cur < prev ? 0 : cur - prev;
}

/* Pressure signals since the previous tick; appends them to the VM's why. */
static bool detect_pressure(struct mv_cur *c, const struct memd_config *cfg, uint64_t now)
{
	const struct memd_guest_stats *g = &c->in->stats;
	struct mv_vm *v = c->st;
	uint64_t dt = v->have_prev && now > v->prev_ms ? now - v->prev_ms : 0;
	uint64_t refault = c->in->refault_rate;
	bool now_p = false;
	char s1[MEMD_SZ];

	if (c->fresh && dt) {
		uint64_t stalls = counter_delta(g->alloc_stalls, v->stalls);
		uint64_t ooms = counter_delta(g->oom_kills, v->ooms);
		uint64_t swin = counter_delta(g->swap_in, v->swap_in);
		uint64_t majrate = counter_delta(g->major_faults, v->majflt) * 1000 / dt;

		if (stalls) {
			memd_why(c->d->why, " [alloc stalls +%llu]", (unsigned long long)stalls);
			now_p = true;
		}
		if (ooms) {
			memd_why(c->d->why, " [OOM kills +%llu]", (unsigned long long)ooms);
			now_p = true;
		}
		if (swin) {
			memd_why(c->d->why, " [swap-in +%s]", memd_sz(s1, (int64_t)swin));
			now_p = true;
		}
		if (majrate >= cfg->major_fault_rate) {
			memd_why(c->d->why, " [major faults %llu/s]", (unsigned long long)majrate);
			now_p = true;
		}
	}
	if (c->fresh && c->avail != MEMD_NONE && c->avail < c->in->balloon_actual * LOW_AVAIL_PCT / 100) {
		memd_why(c->d->why, " [available %s < %d%%]", memd_sz(s1, (int64_t)c->avail), LOW_AVAIL_PCT);
		now_p = true;
	}
	if (refault != MEMD_NONE && refault >= cfg->refault_rate && (!v->have_prev || v->refault == MEMD_NONE ||
								     refault >= v->refault)) {
		memd_why(c->d->why, " [refaults %llu/s rising]", (unsigned long long)refault);
		now_p = true;
	}
	if (c->fresh) {
		v->have_prev = true;
		v->prev_ms = now;
		v->majflt = g->major_faults;
		v->swap_in = g->swap_in;
		v->ooms = g->oom_kills;
		v->stalls = g->alloc_stalls;
	}
	v->refault = refault;
	if (now_p)
		v->pressure_ms = now;
	/* pressure seen within calm_ms still counts, so one quiet sample does not flip the guest */
	return v->pressure_ms && now - v->pressure_ms < memd_max(cfg->calm_ms, 1);
}

static uint64_t step_of(const struct memd_config *cfg, const struct mv_vm *v, uint64_t ram, bool critical)
{
	double rate = v->bal.rate > v->res.rate ? v->bal.rate : v->res.rate;
	uint64_t lo = 4 * cfg->min_change, hi = ram * cfg->max_step_pct / 100 * (critical ? 2 : 1);
	uint64_t s = rate > 0 ? (uint64_t)(rate * 2.0) : ram * cfg->step_pct / 100;

	return memd_min(memd_max(s, lo), memd_max(hi, lo));
}

/* Stalled targets are stepped back to what the VM has now. */
static void step_back(struct mv_cur *c, const struct memd_config *cfg, uint64_t now, bool over)
{
	const struct memd_vm_in *vm = c->in;
	struct mv_vm *v = c->st;
	char a[MEMD_SZ], b[MEMD_SZ], d[MEMD_SZ];

	if (track(&v->bal, cfg, vm->balloon_target, vm->balloon_actual, now)) {
		uint64_t to = memd_min(memd_max(vm->balloon_actual, c->floor), vm->ram);

		memd_why(c->d->why, " balloon stepped back: target %s not reached in %.1f s (actual %s, "
			 "no progress for %.1f s), target := %s;", memd_sz(a, (int64_t)vm->balloon_target),
			 (double)(now - v->bal.since_ms) / 1000, memd_sz(b, (int64_t)vm->balloon_actual),
			 (double)(now - v->bal.progress_ms) / 1000, memd_sz(d, (int64_t)to));
		c->d->balloon = MEMD_SET;
		c->d->balloon_target = to;
		v->bal.target = MEMD_NONE;
		c->stepped_back = true;
	}
	if (vm->resident_target != MEMD_NONE && vm->resident_target_ok && v->trim &&
	    track(&v->res, cfg, vm->resident_target, vm->resident, now)) {
		memd_why(c->d->why, " headroom trim to %s cleared: resident %s (no progress for %.1f s);",
			 memd_sz(a, (int64_t)vm->resident_target), memd_sz(b, (int64_t)vm->resident),
			 (double)(now - v->res.progress_ms) / 1000);
		/* no cooldown: what the VM could take is gone from its idle pages now */
		c->d->resident = MEMD_CLEAR;
		v->res.target = MEMD_NONE;
		v->trim = false;
	} else if (vm->resident_target != MEMD_NONE && vm->resident_target_ok && !over &&
	    track(&v->res, cfg, vm->resident_target, vm->resident, now)) {
		/* over the budget a target is held even unreached: it is what throttles the VM */
		memd_why(c->d->why, " resident target %s stepped back to resident %s (no progress for %.1f s);",
			 memd_sz(a, (int64_t)vm->resident_target), memd_sz(b, (int64_t)vm->resident),
			 (double)(now - v->res.progress_ms) / 1000);
		c->d->resident = MEMD_SET;
		c->d->resident_target = memd_max(vm->resident, c->floor);
		v->res.target = MEMD_NONE;
		c->stepped_back = true;
	} else if (vm->resident_target == MEMD_NONE) {
		track(&v->res, cfg, MEMD_NONE, vm->resident, now);
	}
	if (c->stepped_back)
		v->cooldown_until = now + cfg->cooldown_ms;
}

/* Bytes the VM's current targets will still free. */
static uint64_t in_flight(const struct mv_cur *c)
{
	const struct memd_vm_in *vm = c->in;
	uint64_t f = 0;

	if (c->d->balloon == MEMD_KEEP && c->btarget < vm->balloon_actual)
		f += vm->balloon_actual - c->btarget;
	if (c->d->resident == MEMD_KEEP && vm->resident_target != MEMD_NONE && vm->resident != MEMD_NONE &&
	    vm->resident_target < vm->resident)
		f += vm->resident - vm->resident_target;
	return f;
}

/* Candidates sorted by key descending, ties by input order (deterministic). */
static size_t sort_by(size_t n, const uint64_t key[], size_t idx[])
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		size_t j = k;

		if (key[i] == 0)
			continue;
		while (j > 0 && key[idx[j - 1]] < key[i]) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = i;
		k++;
	}
	return k;
}

static bool squeezable(const struct mv_cur *c)
{
	return !c->pressured && !c->stepped_back && !c->cooling;
}

/* Tier 1: resident targets. Returns what it asked for. */
static uint64_t squeeze_resident(struct mv_cur *c, size_t n, uint64_t need, const struct memd_config *cfg,
			       bool last_resort)
{
	uint64_t key[MEMD_MAX_VMS], asked = 0;
	size_t idx[MEMD_MAX_VMS], k;
	char a[MEMD_SZ], b[MEMD_SZ], d[MEMD_SZ], e[MEMD_SZ], g[MEMD_SZ];

	for (size_t i = 0; i < n; i++) {
		const struct memd_vm_in *vm = c[i].in;
		uint64_t base;

		key[i] = 0;
		if (!vm->resident_target_ok || vm->resident == MEMD_NONE || c[i].stepped_back)
			continue;
		/* the last resort takes from guests under pressure too: slow beats killed */
		if (!last_resort && (!squeezable(&c[i]) ||
				     (vm->refault_rate != MEMD_NONE && vm->refault_rate >= cfg->refault_rate)))
			continue;
		if (last_resort && c[i].d->resident != MEMD_KEEP)
			continue;
		base = memd_min(vm->resident, vm->resident_target);
		if (base > c[i].floor)
			key[i] = (base - c[i].floor) * 100 / c[i].weight;
	}
	k = sort_by(n, key, idx);
	for (size_t j = 0; j < k && asked < need; j++) {
		struct mv_cur *v = &c[idx[j]];
		uint64_t base = memd_min(v->in->resident, v->in->resident_target);
		/* idle pages cost the guest nothing: they need no pacing */
		uint64_t allow = memd_max(v->step, v->idle_squeeze);
		uint64_t take = mib_down(memd_min(memd_min(allow, base - v->floor), need - asked));

		if (take < cfg->min_change)
			continue;
		v->d->resident = MEMD_SET;
		v->d->resident_target = mib_down(base - take);
		v->st->trim = false;
		asked += take;
		memd_why(v->d->why, " resident target %s (-%s, cold pages compressed/deduplicated; floor %s, "
			 "step %s, idle %s);", memd_sz(a, (int64_t)(base - take)), memd_sz(b, (int64_t)take),
			 memd_sz(d, (int64_t)v->floor), memd_sz(e, (int64_t)v->step),
			 memd_sz(g, (int64_t)v->idle_squeeze));
	}
	return asked;
}

/* Tier 2: balloon inflation of the guests with the most free memory above their floor. */
static uint64_t squeeze_balloon(struct mv_cur *c, size_t n, uint64_t need, const struct memd_config *cfg,
			       bool critical)
{
	uint64_t key[MEMD_MAX_VMS], room[MEMD_MAX_VMS], asked = 0;
	size_t idx[MEMD_MAX_VMS], k;
	char a[MEMD_SZ], b[MEMD_SZ], d[MEMD_SZ], e[MEMD_SZ], g[MEMD_SZ];

	for (size_t i = 0; i < n; i++) {
		const struct memd_vm_in *vm = c[i].in;
		uint64_t base = memd_min(c[i].btarget, vm->balloon_actual), keep, avail;

		key[i] = room[i] = 0;
		if (!c[i].fresh || c[i].avail == MEMD_NONE || !squeezable(&c[i]) || c[i].d->balloon != MEMD_KEEP)
			continue;
		/* one kind of squeeze per guest and tick, unless critical */
		if (c[i].d->resident == MEMD_SET && !critical)
			continue;
		/* what the guest will have free once the balloon reaches base */
		avail = c[i].avail > vm->balloon_actual - base ? c[i].avail - (vm->balloon_actual - base) : 0;
		keep = memd_max(KEEP_FREE_MIN, base * KEEP_FREE_PCT / 100);
		if (base <= c[i].floor || avail <= keep)
			continue;
		room[i] = memd_min(base - c[i].floor, avail - keep);
		key[i] = room[i] * 100 / c[i].weight;
	}
	k = sort_by(n, key, idx);
	for (size_t j = 0; j < k && asked < need; j++) {
		size_t i = idx[j];
		struct mv_cur *v = &c[i];
		uint64_t base = memd_min(v->btarget, v->in->balloon_actual);
		uint64_t take = mib_down(memd_min(memd_min(v->step, room[i]), need - asked));

		if (take < cfg->min_change)
			continue;
		v->d->balloon = MEMD_SET;
		v->d->balloon_target = base - take;
		asked += take;
		memd_why(v->d->why, " balloon target %s (-%s: free above floor %s is %s, step %s);",
			 memd_sz(a, (int64_t)(base - take)), memd_sz(b, (int64_t)take),
			 memd_sz(d, (int64_t)v->floor), memd_sz(e, (int64_t)room[i]), memd_sz(g, (int64_t)v->step));
	}
	return asked;
}

/*
 * Gives memory back: pressured guests first (a full step each), then, if
 * general, the others (a paced step); heavier weights first within each.
 */
static uint64_t give_back(struct mv_cur *c, size_t n, int64_t giveable, bool general,
			  const struct memd_config *cfg, uint64_t now)
{
	uint64_t given = 0, key[MEMD_MAX_VMS];
	size_t idx[MEMD_MAX_VMS];
	char a[MEMD_SZ], b[MEMD_SZ];

	for (size_t i = 0; i < n; i++)
		key[i] = c[i].weight;
	n = sort_by(n, key, idx);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1 && !general)
			break;
		for (size_t j = 0; j < n; j++) {
			struct mv_cur *v = &c[idx[j]];
			const struct memd_vm_in *vm = v->in;
			uint64_t base, add;

			if (v->pressured != (pass == 0) || v->stepped_back)
				continue;
			/* a headroom trim ends by itself once reached; others are cleared with room to spare */
			if (pass == 1 && vm->resident_target != MEMD_NONE && vm->resident_target_ok &&
			    v->d->resident == MEMD_KEEP && !v->st->trim) {
				v->d->resident = MEMD_CLEAR;
				memd_why(v->d->why, " resident target cleared;");
			}
			/* a pressured guest's target rises a full step out of the room, never cleared at
			 * once: a guest re-reading all its memory would take the room and more */
			if (pass == 0 && vm->resident_target != MEMD_NONE && vm->resident_target_ok &&
			    v->d->resident == MEMD_KEEP && vm->resident_target < vm->ram && giveable > (int64_t)given) {
				add = memd_min(memd_min(mib_down(memd_max(v->step, vm->ram * cfg->max_step_pct / 100)),
							vm->ram - vm->resident_target), (uint64_t)giveable - given);
				if (add >= cfg->min_change) {
					v->d->resident = MEMD_SET;
					v->d->resident_target = vm->resident_target + add;
					v->st->trim = false;
					given += add;
					memd_why(v->d->why, " resident target raised to %s (+%s, guest under pressure);",
						 memd_sz(a, (int64_t)(vm->resident_target + add)), memd_sz(b, (int64_t)add));
				}
			}
			base = memd_max(v->btarget, vm->balloon_actual);
			if (base >= vm->ram || v->d->balloon != MEMD_KEEP || giveable <= (int64_t)given)
				continue;
			/* a pressured guest gets a full step; the others a step the host can spare */
			add = memd_min(memd_min(vm->ram - base, pass ? v->step : memd_max(v->step,
								vm->ram * cfg->max_step_pct / 100)),
				       (uint64_t)giveable - given);
			if (base + add < vm->ram)
				add = mib_down(add);
			if (add < cfg->min_change && base + add < vm->ram)
				continue;
			v->d->balloon = MEMD_SET;
			v->d->balloon_target = base + add;
			given += add;
			if (!pass)
				v->st->cooldown_until = now + cfg->cooldown_ms;
			memd_why(v->d->why, " balloon deflated to %s (+%s%s);", memd_sz(a, (int64_t)(base + add)),
				 memd_sz(b, (int64_t)add), pass ? ", host has room" : ", guest under pressure");
		}
	}
	return given;
}

/*
 * Headroom: room kept ahead of what arrives faster than any reaction (a
 * new VM's boot-time fill, a guest's burst), made of idle pages only, so
 * it costs the guests nothing: each VM with pages idle for trim_idle_s is
 * given a one-shot resident target below its resident memory by at most
 * those pages, most idle first; the target is cleared once reached.
 */
static uint64_t trim_idle(struct mv_cur *c, size_t n, uint64_t want, const struct memd_config *cfg, unsigned idle_s)
{
	uint64_t key[MEMD_MAX_VMS], asked = 0;
	size_t idx[MEMD_MAX_VMS], k;
	char a[MEMD_SZ], b[MEMD_SZ];

	for (size_t i = 0; i < n; i++) {
		const struct memd_vm_in *vm = c[i].in;

		key[i] = 0;
		if (!vm->resident_target_ok || vm->resident == MEMD_NONE || !squeezable(&c[i]) ||
		    c[i].d->resident != MEMD_KEEP || (vm->refault_rate != MEMD_NONE &&
						      vm->refault_rate >= cfg->refault_rate))
			continue;
		/* pages still being evicted for the current target are idle until they are gone */
		c[i].idle_trim -= memd_min(c[i].idle_trim, in_flight(&c[i]));
		key[i] = c[i].idle_trim * 100 / c[i].weight;
	}
	k = sort_by(n, key, idx);
	for (size_t j = 0; j < k && asked < want; j++) {
		struct mv_cur *v = &c[idx[j]];
		uint64_t base = memd_min(v->in->resident, v->in->resident_target);
		uint64_t take = base > v->floor ? mib_down(memd_min(memd_min(v->idle_trim, base - v->floor),
								   want - asked)) : 0;

		if (take < cfg->min_change)
			continue;
		v->d->resident = MEMD_SET;
		v->d->resident_target = mib_down(base - take);
		/* a target held under pressure stays held; otherwise this one ends when reached */
		if (v->in->resident_target == MEMD_NONE || v->st->trim) {
			v->st->trim = true;
			v->st->trim_target = v->d->resident_target;
		}
		asked += take;
		memd_why(v->d->why, " headroom trim to %s (-%s of pages idle >= %us);", memd_sz(a, (int64_t)(base - take)),
			 memd_sz(b, (int64_t)take), idle_s);
	}
	return asked;
}

/* What the pressured guests would get back in one step each (their balloons' deflation). */
static uint64_t pressured_want(const struct mv_cur *c, size_t n, const struct memd_config *cfg)
{
	uint64_t want = 0;

	for (size_t i = 0; i < n; i++) {
		const struct memd_vm_in *vm = c[i].in;
		uint64_t base = memd_max(c[i].btarget, vm->balloon_actual);

		if (!c[i].pressured || c[i].stepped_back || c[i].d->balloon != MEMD_KEEP || base >= vm->ram)
			continue;
		want += memd_min(vm->ram - base, memd_max(c[i].step, vm->ram * cfg->max_step_pct / 100));
	}
	return want;
}

static uint64_t headroom_of(const struct memd_config *cfg, const struct memd_input *in, uint64_t scale)
{
	uint64_t big = 0;

	if (cfg->headroom)
		return cfg->headroom;
	for (size_t i = 0; i < in->nvm; i++)
		if (in->vm[i].ram != MEMD_NONE)
			big = memd_max(big, in->vm[i].ram);
	return memd_min(big, scale * cfg->headroom_pct / 100);
}

static void mv_tick(void *st, const struct memd_config *cfg, const struct memd_input *in,
		    struct memd_output *out)
{
	struct mv_state *s = st;
	const struct memd_host_in *h = &in->host;
	struct mv_cur cur[MEMD_MAX_VMS];
	int slot[MEMD_MAX_VMS];
	bool fresh[MEMD_MAX_VMS];
	struct memd_room r;
	uint64_t now = h->now_ms, flight = 0, saved = 0;
	int64_t scale, ahead = 0;
	uint64_t want;
	bool critical, over;
	char s1[MEMD_SZ], s2[MEMD_SZ], s3[MEMD_SZ], s4[MEMD_SZ], s5[MEMD_SZ];

	memd_room_of(h, &r);
	scale = (int64_t)r.scale;
	/* Room shrinking fast (a fill, a new VM): act on where it will be a lookahead from now. */
	if (s->have_room && now > s->prev_ms && s->prev_room > r.room)
		ahead = (int64_t)((double)(s->prev_room - r.room) * (double)cfg->lookahead_ms /
				  (double)(now - s->prev_ms));
	s->have_room = true;
	s->prev_room = r.room;
	s->prev_ms = now;
	{
		/* the state is judged on that room too: a fill about to cross the line is pressure now */
		struct memd_room ra = r;

		ra.room -= ahead;
		memd_classify(&s->hy, cfg, h, &ra, out->why, sizeof(out->why));
	}
	out->state = s->hy.state;
	out->room = r.room;
	out->decided = true;
	critical = out->state == MEMD_CRITICAL;
	/*
	 * Critical on the room ahead or held by hysteresis acts early and in
	 * larger steps; holding guests under pressure back (nobody grows, the
	 * last-resort squeeze, targets held unreached) waits until the host is
	 * over its budget now. A guest refaulting its growing working set in
	 * would otherwise make the room fall, the lookahead call it critical,
	 * and the squeeze that follows make it refault more: a loop measured
	 * with 24% of the budget free.
	 */
	over = critical && memd_critical_now(cfg, h, &r);
	memd_slots_match(&s->slots, in, slot, fresh);
	for (size_t i = 0; i < in->nvm; i++) {
		struct mv_cur *c = &cur[i];
		const struct memd_vm_in *vm = &in->vm[i];
		const struct memd_guest_stats *g = &vm->stats;

		if (fresh[i])
			s->vm[slot[i]] = (struct mv_vm){ .bal.target = MEMD_NONE, .res.target = MEMD_NONE };
		memset(c, 0, sizeof(*c));
		c->in = vm;
		c->st = &s->vm[slot[i]];
		c->d = &out->vm[i];
		c->btarget = vm->balloon_target == MEMD_NONE ? vm->balloon_actual : vm->balloon_target;
		c->floor = out->vm[i].floor;
		c->weight = vm->weight ? vm->weight : 100;
		c->fresh = memd_stats_fresh(cfg, vm, now);
		c->avail = !c->fresh ? MEMD_NONE : g->available != MEMD_NONE ? g->available
			 : g->free != MEMD_NONE && g->caches != MEMD_NONE ? g->free + g->caches : g->free;
		c->cooling = now < c->st->cooldown_until;
		if (vm->resident_target_ok) {
			c->idle_trim = memd_vm_idle(vm, cfg->trim_idle_s);
			c->idle_squeeze = memd_vm_idle(vm, cfg->squeeze_idle_s);
		}
		/* our trim was changed by someone else: it is not ours to clear */
		if (c->st->trim && (vm->resident_target == MEMD_NONE || absdiff(vm->resident_target, c->st->trim_target) >= MiB))
			c->st->trim = false;
		c->step = step_of(cfg, c->st, vm->ram, critical);
		memd_vm_label(vm, c->name, sizeof(c->name));
		snprintf(c->d->why, MEMD_WHY_MAX, "%s:", c->name);
		if (!c->fresh)
			memd_why(c->d->why, " guest stats %s, not ballooned;",
				 g->updated_ms == MEMD_NONE || g->updated_ms == 0 ? "missing" : "stale or all-ones");
		c->pressured = detect_pressure(c, cfg, now);
		out->vm[i].pressured = c->pressured;
		step_back(c, cfg, now, over);
		if (c->st->trim && c->d->resident == MEMD_KEEP && vm->resident != MEMD_NONE &&
		    vm->resident <= vm->resident_target + cfg->min_change) {
			memd_why(c->d->why, " headroom trim reached (resident %s), target cleared;",
				 memd_sz(s1, (int64_t)vm->resident));
			c->d->resident = MEMD_CLEAR;
			c->st->trim = false;
		}
		flight += in_flight(c);
		if (vm->saved_reported != MEMD_NONE)
			saved += vm->saved_reported;
		if (vm->saved_zero != MEMD_NONE)
			saved += vm->saved_zero;
	}
	out->headroom = headroom_of(cfg, in, (uint64_t)scale);
	if (ahead)
		memd_why(out->why, "; room falling %s per %.1f s", memd_sz(s1, ahead), (double)cfg->lookahead_ms / 1000);
	if (out->state >= MEMD_PRESSURE) {
		int64_t goal = (int64_t)cfg->goal_pct * scale / 100, need = goal - r.room + ahead, net;
		uint64_t res = 0, bal = 0;
		bool psi = h->psi_trigger || h->psi_some_avg10 >= cfg->psi_some_pressure ||
			   h->psi_full_avg10 >= cfg->psi_full_critical;

		/* PSI says pressure now, with room to spare: reclaim one pressure band anyway.
		 * A state only held by hysteresis reclaims no more than the room calls for. */
		if (psi && need < (int64_t)cfg->pressure_pct * scale / 100)
			need = (int64_t)cfg->pressure_pct * scale / 100;
		/*
		 * A pressured guest held at a target it refaults against gets a
		 * step more, which the others give (below). Not cleared: with the
		 * host this close to its budget, a guest let grow freely (a full
		 * re-read of its memory) takes it over, and the kernel kills. Over
		 * the budget nobody grows: a refaulting guest is slowed (its VMM
		 * throttles faults over the target) rather than killed.
		 */
		uint64_t raised = 0;

		for (size_t i = 0; i < in->nvm && !over; i++) {
			struct mv_cur *c = &cur[i];
			uint64_t t = c->in->resident_target, add;

			if (!c->pressured || t == MEMD_NONE || !c->in->resident_target_ok || c->d->resident != MEMD_KEEP ||
			    t >= c->in->ram)
				continue;
			add = memd_min(mib_down(memd_max(c->step, c->in->ram * cfg->max_step_pct / 100)), c->in->ram - t);
			c->d->resident = MEMD_SET;
			c->d->resident_target = t + add;
			c->st->trim = false;
			raised += add;
			memd_why(c->d->why, " resident target raised to %s (+%s: guest under pressure; others make room);",
				 memd_sz(s1, (int64_t)(t + add)), memd_sz(s2, (int64_t)add));
			if (c->in->resident != MEMD_NONE && c->in->resident > t)
				flight -= memd_min(flight, c->in->resident - t);
		}
		net = need - (int64_t)flight;
		/* Rebalancing: what pressured guests need comes from the others, beyond what the host needs. */
		want = over ? 0 : pressured_want(cur, in->nvm, cfg) + raised;  /* over the budget nobody grows */
		if (net + (int64_t)want >= (int64_t)cfg->min_change) {
			int64_t ask = net + (int64_t)want;

			res = squeeze_resident(cur, in->nvm, (uint64_t)ask, cfg, false);
			bal = squeeze_balloon(cur, in->nvm, (uint64_t)ask - (critical ? res / 2 : res), cfg, critical);
			if (over && res + bal < (uint64_t)ask) {
				uint64_t last = squeeze_resident(cur, in->nvm, (uint64_t)ask - res - bal, cfg, true);

				if (last)
					memd_why(out->why, "; last resort: %s from guests under pressure",
						 memd_sz(s1, (int64_t)last));
				res += last;
			}
		}
		memd_why(out->why, "; need %s for %u%% room: in flight %s, resident targets %s, balloons %s; "
			 "reported-free+zero already %s", memd_sz(s1, need), cfg->goal_pct, memd_sz(s2, (int64_t)flight),
			 memd_sz(s3, (int64_t)res), memd_sz(s4, (int64_t)bal), memd_sz(s5, (int64_t)saved));
		if (net >= (int64_t)cfg->min_change && res + bal < (uint64_t)net)
			memd_why(out->why, "; short by %s: the rest are at floor, pressured, paced or cooling down",
				 memd_sz(s1, net - (int64_t)(res + bal)));
		/* balloons move at once; resident targets take seconds, so count them at half */
		if (want) {
			int64_t spare = (int64_t)(bal + res / 2) - (net > 0 ? net : 0);
			uint64_t given = spare > 0 ? give_back(cur, in->nvm, spare, false, cfg, now) : 0;

			memd_why(out->why, "; pressured guests want %s, given %s from the others",
				 memd_sz(s1, (int64_t)want), memd_sz(s2, (int64_t)given));
		}
	} else {
		bool ok = out->state == MEMD_OK;
		int64_t keep = ok ? (int64_t)(cfg->tight_pct + cfg->margin_pct) * scale / 100
				  : (int64_t)cfg->goal_pct * scale / 100;
		uint64_t given = 0;

		int64_t giveable = r.room - (int64_t)cfg->goal_pct * scale / 100;
		uint64_t taken = 0;

		/* pressured guests may bring the host down to the goal; beyond it the others give */
		want = pressured_want(cur, in->nvm, cfg);
		if (want && (int64_t)want > giveable && (int64_t)want - (giveable > 0 ? giveable : 0) >=
		    (int64_t)cfg->min_change) {
			uint64_t ask = want - (uint64_t)(giveable > 0 ? giveable : 0);

			taken = squeeze_balloon(cur, in->nvm, ask, cfg, false);
			taken += squeeze_resident(cur, in->nvm, ask - taken, cfg, false) / 2;
			memd_why(out->why, "; pressured guests want %s, the others give %s", memd_sz(s1, (int64_t)want),
				 memd_sz(s2, (int64_t)taken));
		}
		given = give_back(cur, in->nvm, (giveable > 0 ? giveable : 0) + (int64_t)taken, false, cfg, now);
		/* general growth never eats into the headroom */
		keep = keep > (int64_t)out->headroom ? keep : (int64_t)out->headroom;
		if (ok)
			given += give_back(cur, in->nvm, r.room - keep - (int64_t)given, true, cfg, now);
		memd_why(out->why, "; %s, gave back %s", ok ? "pressured guests first, then all" :
			 "no squeeze, pressured guests only", memd_sz(s1, (int64_t)given));
	}
	{
		int64_t short_by = (int64_t)out->headroom - (r.room - ahead) - (int64_t)flight;
		uint64_t trimmed = 0;

		unsigned idle_s = cfg->trim_idle_s;

		/* far short of it (a burst under way): pages idle 2 s will do, the refault rate guards */
		if (short_by > (int64_t)out->headroom / 2) {
			idle_s = 2;
			for (size_t i = 0; i < in->nvm; i++)
				if (cur[i].in->resident_target_ok)
					cur[i].idle_trim = memd_max(cur[i].idle_trim, memd_vm_idle(cur[i].in, idle_s));
		}
		if (short_by >= (int64_t)cfg->min_change)
			trimmed = trim_idle(cur, in->nvm, (uint64_t)short_by, cfg, idle_s);
		memd_why(out->why, "; headroom %s: %s", memd_sz(s1, (int64_t)out->headroom),
			 short_by < (int64_t)cfg->min_change ? "kept" : "");
		if (short_by >= (int64_t)cfg->min_change)
			memd_why(out->why, "short by %s, idle pages trimmed %s", memd_sz(s2, short_by),
				 memd_sz(s3, (int64_t)trimmed));
	}
	for (size_t i = 0; i < in->nvm; i++) {
		struct mv_cur *c = &cur[i];

		if (c->d->balloon == MEMD_SET)
			c->d->balloon_target = memd_min(memd_max(c->d->balloon_target, c->floor), c->in->ram);
		if (c->d->resident == MEMD_SET)
			c->d->resident_target = memd_max(c->d->resident_target, c->floor);
		if (c->d->balloon == MEMD_KEEP && c->d->resident == MEMD_KEEP)
			memd_why(c->d->why, " keep (%s, actual %s, floor %s%s)", memd_state_name(out->state),
				 memd_sz(s1, (int64_t)c->in->balloon_actual), memd_sz(s2, (int64_t)c->floor),
				 c->cooling ? ", cooling down" : c->pressured ? ", under pressure" : "");
	}
	snprintf(out->ksm.why, MEMD_WHY_MAX, "minivmm: KSM not used (minivmm deduplicates in its own store)");
}

const struct memd_policy_ops memd_policy_minivmm_ops = {
	.name = "minivmm",
	.state_size = sizeof(struct mv_state),
	.init = mv_init,
	.tick = mv_tick,
};
