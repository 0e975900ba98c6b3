/*
 * Unit tests of the memd policy core (balloon/memd/): MOM's balloon and KSM
 * rules checked against the formulas of its policy files (KiB arithmetic,
 * StatAvg over 10 samples, 5 s sampling, 10 s period); the minivmm policy's
 * host states and their hysteresis, reaction to a PSI trigger in the same
 * tick, the order of actions (resident target, then balloon), floors and
 * weights, stalled targets stepped back and cooled down, stale or all-ones
 * stats ignored, memory given back to pressured guests first, and a closed
 * loop that must converge without oscillating; "none" never acts; bad
 * input is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balloon/memd/policy.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
/* the policy moves in whole MiB: pct of ram, rounded down */
#define PCT(ram, pct) (((ram) * (pct) / 100) & ~(MiB - 1))

struct fx {
	struct memd_policy *p;
	struct memd_config cfg;
	struct memd_input in;
	struct memd_vm_in vm[MEMD_MAX_VMS];
	bool live[MEMD_MAX_VMS];        /* the guest refreshes its stats every tick */
	struct memd_output out;
};

static struct fx *fx_new(const char *policy)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	memd_config_default(&f->cfg);
	assert_int_equal(memd_policy_new(policy, &f->cfg, &f->p), 0);
	f->in.vm = f->vm;
	f->in.host = (struct memd_host_in){
		.budget = MEMD_NONE, .usage = MEMD_NONE, .reserve = 0,
		.mem_total = 16 * GiB, .mem_free = 8 * GiB, .buffers = 0, .cached = 0,
		.mem_available = 8 * GiB, .ksm_pages_to_scan = 100, .vmm_rss = 0,
	};
	return f;
}

/* After changing f->cfg: a new minivmm policy with it. */
static void fx_reconfig(struct fx *f)
{
	memd_policy_free(f->p);
	assert_int_equal(memd_policy_new("minivmm", &f->cfg, &f->p), 0);
}

static void fx_free(struct fx *f)
{
	memd_policy_free(f->p);
	free(f);
}

/* A guest of ram bytes with actual = target = resident and avail available, stats fresh at now. */
static void vm_set(struct fx *f, size_t i, uint64_t ram, uint64_t actual, uint64_t avail)
{
	f->vm[i] = (struct memd_vm_in){
		.id = 100 + i, .kind = MEMD_VM_LIBVIRT, .ram = ram,
		.balloon_target = actual, .balloon_actual = actual,
		.resident = actual, .resident_target = MEMD_NONE, .resident_target_ok = false,
		.saved_reported = MEMD_NONE, .saved_zero = MEMD_NONE, .saved_shared = MEMD_NONE,
		.saved_compressed = MEMD_NONE, .refault_rate = 0,
		.stats = { .updated_ms = 1, .free = avail, .available = avail, .caches = 0,
			   .major_faults = 0, .swap_in = 0, .oom_kills = 0, .alloc_stalls = 0 },
	};
	f->live[i] = true;
	if (f->in.nvm < i + 1)
		f->in.nvm = i + 1;
}

static int tick_at(struct fx *f, uint64_t now_ms)
{
	f->in.host.now_ms = now_ms;
	for (size_t i = 0; i < f->in.nvm && i < MEMD_MAX_VMS; i++)
		if (f->live[i])
			f->vm[i].stats.updated_ms = now_ms ? now_ms : 1;
	return memd_policy_tick(f->p, &f->in, &f->out);
}

static void apply(struct fx *f)
{
	for (size_t i = 0; i < f->in.nvm; i++) {
		if (f->out.vm[i].balloon == MEMD_SET)
			f->vm[i].balloon_target = f->vm[i].balloon_actual = f->out.vm[i].balloon_target;
		if (f->out.vm[i].resident == MEMD_SET)
			f->vm[i].resident_target = f->out.vm[i].resident_target;
		if (f->out.vm[i].resident == MEMD_CLEAR)
			f->vm[i].resident_target = MEMD_NONE;
	}
}

static void budget(struct fx *f, uint64_t b, uint64_t usage)
{
	f->in.host.budget = b;
	f->in.host.usage = usage;
}

/* ---- MOM -------------------------------------------------------------- */

/* host free fraction hfp of a 16 GiB host, as MemFree alone */
static void mom_host(struct fx *f, double hfp)
{
	f->in.host.mem_free = (uint64_t)(hfp * (double)(16 * GiB));
}

static void test_mom_shrink_arithmetic(void **state)
{
	struct fx *f = fx_new("mom");

	mom_host(f, 0.15);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 1 * GiB);
	assert_int_equal(tick_at(f, 0), 0);
	assert_true(f->out.decided);
	assert_int_equal(f->out.state, MEMD_PRESSURE);
	/* gfp = 0.20 x 0.15/0.20 = 0.15; used = 4G - 1G; min = used + 0.15 x cur = 3.6 GiB;
	 * cur x 0.95 = 3984588.8 KiB is larger: target int(3984588.8) KiB */
	assert_int_equal(f->out.vm[0].balloon, MEMD_SET);
	assert_int_equal(f->out.vm[0].balloon_target, 3984588ULL * 1024);
	assert_non_null(strstr(f->out.vm[0].why, "mom shrink"));
	assert_non_null(strstr(f->out.why, "< 0.20: shrink every guest"));

	/* used + gfp x cur between 0.95 cur and cur: the guest-free floor wins.
	 * free 720 MiB: used = 4194304 - 737280 = 3457024 KiB; + 0.15 x 4194304 = 4086169.6 */
	fx_free(f);
	f = fx_new("mom");
	mom_host(f, 0.15);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 720 * MiB);
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.vm[0].balloon, MEMD_SET);
	assert_int_equal(f->out.vm[0].balloon_target, 4086169ULL * 1024);

	/* the floor is above cur: no target (MOM only shrinks when the size <= cur) */
	fx_free(f);
	f = fx_new("mom");
	mom_host(f, 0.15);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 100 * MiB);
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.vm[0].balloon, MEMD_KEEP);
	assert_non_null(strstr(f->out.vm[0].why, "min is above cur"));
	fx_free(f);
}

static void test_mom_critical_and_balloon_min(void **state)
{
	struct fx *f = fx_new("mom");

	mom_host(f, 0.04);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 1 * GiB);
	vm_set(f, 1, 4 * GiB, 4 * GiB, 1 * GiB);
	f->vm[1].floor = 3900 * MiB;    /* MOM's balloon_min */
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.state, MEMD_CRITICAL);
	/* gfp = 0.04 - 0.05 < 0: min = 3 GiB - 0.01 x cur; still at most 5% a round */
	assert_non_null(strstr(f->out.vm[0].why, "guest free -0.0100"));
	assert_int_equal(f->out.vm[0].balloon_target, 3984588ULL * 1024);
	/* balloon_min 3900 MiB = 3993600 KiB beats cur x 0.95 */
	assert_int_equal(f->out.vm[1].balloon, MEMD_SET);
	assert_int_equal(f->out.vm[1].balloon_target, 3993600ULL * 1024);
	assert_int_equal(f->out.vm[1].floor, 3900 * MiB);
	fx_free(f);
}

static void test_mom_grow_arithmetic(void **state)
{
	struct fx *f = fx_new("mom");

	mom_host(f, 0.50);
	vm_set(f, 0, 4 * GiB, 2 * GiB, 1536 * MiB);    /* used 512 MiB: cur x 1.05 wins */
	vm_set(f, 1, 4 * GiB, 2 * GiB, 100 * MiB);     /* used + 0.20 x cur wins */
	vm_set(f, 2, 4 * GiB, 4000 * MiB, 3 * GiB);    /* clamped to balloon_max */
	vm_set(f, 3, 4 * GiB, 4 * GiB, 3 * GiB);       /* not ballooned */
	vm_set(f, 4, 4 * GiB, 4 * GiB - 8 * MiB, 3 * GiB);  /* change 8 MiB <= 0.25% of cur */
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.state, MEMD_OK);
	/* 2097152 x 1.05 = 2202009.6 KiB */
	assert_int_equal(f->out.vm[0].balloon_target, 2202009ULL * 1024);
	/* 2097152 - 102400 + 0.2 x 2097152 = 2414182.4 KiB */
	assert_int_equal(f->out.vm[1].balloon_target, 2414182ULL * 1024);
	assert_int_equal(f->out.vm[2].balloon_target, 4 * GiB);
	assert_int_equal(f->out.vm[3].balloon, MEMD_KEEP);
	assert_non_null(strstr(f->out.vm[3].why, "not ballooned"));
	assert_int_equal(f->out.vm[4].balloon, MEMD_KEEP);
	assert_non_null(strstr(f->out.vm[4].why, "0.25%"));
	fx_free(f);
}

static void test_mom_statavg_and_period(void **state)
{
	struct fx *f = fx_new("mom");
	int evaluations = 0;

	vm_set(f, 0, 4 * GiB, 4 * GiB, 1 * GiB);
	/* 10 samples (t = 0..45 s) at 10% free, then 40% from t = 50 s: the average of the last 10
	 * samples reaches 0.20 with the 4th new sample (t = 65 s); evaluations at 0, 10, ... 70 s */
	for (uint64_t t = 0; t <= 70; t++) {
		mom_host(f, t < 50 ? 0.10 : 0.40);
		assert_int_equal(tick_at(f, t * 1000), 0);
		if (t % 10) {
			assert_false(f->out.decided);
			assert_int_equal(f->out.vm[0].balloon, MEMD_KEEP);
			continue;
		}
		evaluations++;
		assert_true(f->out.decided);
		if (t <= 60)
			assert_int_equal(f->out.state, MEMD_PRESSURE);
		else
			assert_int_equal(f->out.state, MEMD_OK);
		if (t == 60)    /* 7 x 0.10 + 3 x 0.40 = 1.9 / 10 */
			assert_non_null(strstr(f->out.why, "host free 0.1900"));
		if (t == 70)
			assert_non_null(strstr(f->out.why, "host free 0.2500"));
		apply(f);
	}
	assert_int_equal(evaluations, 8);
	fx_free(f);
}

static void test_mom_guest_without_stats_sits_out(void **state)
{
	struct fx *f = fx_new("mom");

	mom_host(f, 0.10);
	vm_set(f, 0, 4 * GiB, 4 * GiB, MEMD_NONE);
	f->vm[0].stats.available = MEMD_NONE;
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.vm[0].balloon, MEMD_KEEP);
	assert_non_null(strstr(f->out.vm[0].why, "no memory stats"));
	fx_free(f);
}

static void test_mom_ksm_rule(void **state)
{
	struct fx *f = fx_new("mom");

	/* plenty free, little committed: off */
	mom_host(f, 0.50);
	f->in.host.vmm_rss = 2 * GiB;
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.ksm.action, MEMD_SET);
	assert_int_equal(f->out.ksm.run, 0);
	fx_free(f);

	/* free below 20%: on, pages_to_scan +300, sleep 10 x 16 GiB / 16 GiB */
	f = fx_new("mom");
	mom_host(f, 0.10);
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.ksm.run, 1);
	assert_int_equal(f->out.ksm.pages_to_scan, 400);
	assert_int_equal(f->out.ksm.sleep_ms, 10);
	fx_free(f);

	/* boost clamped to 1250; a 24 GiB host sleeps int(6.67) = 6 ms */
	f = fx_new("mom");
	f->in.host.mem_total = 24 * GiB;
	f->in.host.mem_free = 1 * GiB;
	f->in.host.ksm_pages_to_scan = 1200;
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.ksm.pages_to_scan, 1250);
	assert_int_equal(f->out.ksm.sleep_ms, 6);
	fx_free(f);

	/* free enough but VM RSS + 20% >= MemTotal: on, decay -50 clamped to 64 */
	f = fx_new("mom");
	mom_host(f, 0.50);
	f->in.host.vmm_rss = 13 * GiB;
	f->in.host.ksm_pages_to_scan = 100;
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.ksm.run, 1);
	assert_int_equal(f->out.ksm.pages_to_scan, 64);
	fx_free(f);
}

/* ---- minivmm: host states ------------------------------------------------ */

static void room_pct(struct fx *f, double pct)
{
	budget(f, 10 * GiB, (uint64_t)((double)(10 * GiB) * (1 - pct / 100)));
}

static void test_states_enter_at_once_leave_slowly(void **state)
{
	struct fx *f = fx_new("minivmm");
	static const struct { double room; enum memd_state want; } seq[] = {
		{ 50, MEMD_OK }, { 8, MEMD_TIGHT }, { 2, MEMD_PRESSURE }, { -1, MEMD_CRITICAL },
		/* t = 4 s on: calm; one level down after each 5 s */
		{ 50, MEMD_CRITICAL }, { 50, MEMD_CRITICAL }, { 50, MEMD_CRITICAL }, { 50, MEMD_CRITICAL },
		{ 50, MEMD_CRITICAL }, { 50, MEMD_PRESSURE }, { 50, MEMD_PRESSURE }, { 50, MEMD_PRESSURE },
		{ 50, MEMD_PRESSURE }, { 50, MEMD_PRESSURE }, { 50, MEMD_TIGHT }, { 50, MEMD_TIGHT },
		{ 50, MEMD_TIGHT }, { 50, MEMD_TIGHT }, { 50, MEMD_TIGHT }, { 50, MEMD_OK },
	};

	f->cfg.lookahead_ms = 0;        /* the states by the room alone; the fall is the next test's */
	fx_reconfig(f);
	for (size_t t = 0; t < sizeof(seq) / sizeof(seq[0]); t++) {
		room_pct(f, seq[t].room);
		assert_int_equal(tick_at(f, t * 1000), 0);
		if (f->out.state != seq[t].want)
			fail_msg("t=%zu s: state %s, want %s (%s)", t, memd_state_name(f->out.state),
				 memd_state_name(seq[t].want), f->out.why);
	}
	assert_non_null(strstr(f->out.why, "calmer than tight"));
	fx_free(f);
}

static void test_states_hysteresis_margin(void **state)
{
	struct fx *f = fx_new("minivmm");
	int changes = 0;
	enum memd_state last = MEMD_OK;

	/* room hovering across the 10% threshold: tight once, then held */
	for (uint64_t t = 0; t < 40; t++) {
		room_pct(f, t % 2 ? 10.5 : 9.5);
		assert_int_equal(tick_at(f, t * 1000), 0);
		changes += f->out.state != last;
		last = f->out.state;
	}
	assert_int_equal(changes, 1);
	assert_int_equal(last, MEMD_TIGHT);
	assert_non_null(strstr(f->out.why, "margin"));
	/* 11% (inside the margin) for 10 s: still tight; 12.5% for 5 s: ok */
	for (uint64_t t = 40; t < 50; t++) {
		room_pct(f, 11);
		assert_int_equal(tick_at(f, t * 1000), 0);
		assert_int_equal(f->out.state, MEMD_TIGHT);
	}
	for (uint64_t t = 50; t <= 55; t++) {
		room_pct(f, 12.5);
		assert_int_equal(tick_at(f, t * 1000), 0);
		assert_int_equal(f->out.state, t < 55 ? MEMD_TIGHT : MEMD_OK);
	}
	fx_free(f);
}

static void test_psi_trigger_reacts_in_the_same_tick(void **state)
{
	struct fx *f = fx_new("minivmm");

	room_pct(f, 50);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 3 * GiB);
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.state, MEMD_OK);
	assert_int_equal(f->out.vm[0].balloon, MEMD_KEEP);
	f->in.host.psi_trigger = true;
	assert_int_equal(tick_at(f, 300), 0);   /* woken by the trigger, 0.3 s after the last tick */
	assert_int_equal(f->out.state, MEMD_PRESSURE);
	assert_non_null(strstr(f->out.why, "psi trigger fired"));
	/* room is ample, so it reclaims one pressure band (3% of 10 GiB), paced to 5% of the guest */
	assert_int_equal(f->out.vm[0].balloon, MEMD_SET);
	assert_int_equal(f->out.vm[0].balloon_target, 4 * GiB - PCT(4 * GiB, 5));
	/* PSI some avg10 over 10% is pressure too, PSI full over 5% critical */
	f->in.host.psi_trigger = false;
	f->in.host.psi_full_avg10 = 6.0;
	apply(f);
	assert_int_equal(tick_at(f, 1000), 0);
	assert_int_equal(f->out.state, MEMD_CRITICAL);
	fx_free(f);
}

/* ---- minivmm: actions ---------------------------------------------------- */

static void test_cheapest_first_resident_then_balloon(void **state)
{
	struct fx *f = fx_new("minivmm");
	uint64_t step = PCT(4 * GiB, 5);

	room_pct(f, 2.5);       /* pressure: need 6% - 2.5% of 10 GiB */
	vm_set(f, 0, 4 * GiB, 4 * GiB, 2 * GiB);
	f->vm[0].kind = MEMD_VM_MINIVMM;
	f->vm[0].resident_target_ok = true;
	f->vm[0].resident = 3 * GiB;
	vm_set(f, 1, 4 * GiB, 4 * GiB, 2 * GiB);
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.state, MEMD_PRESSURE);
	/* tier 1: A's resident target, one step; tier 2: the rest from B's balloon */
	assert_int_equal(f->out.vm[0].resident, MEMD_SET);
	assert_int_equal(f->out.vm[0].resident_target, 3 * GiB - step);
	assert_int_equal(f->out.vm[0].balloon, MEMD_KEEP);
	assert_int_equal(f->out.vm[1].balloon, MEMD_SET);
	{
		uint64_t need = (uint64_t)(10 * GiB * 6 / 100) - (10 * GiB - f->in.host.usage);

		assert_int_equal(f->out.vm[1].balloon_target, 4 * GiB - ((need - step) & ~(MiB - 1)));
	}
	assert_non_null(strstr(f->out.vm[0].why, "cold pages"));
	/* next tick, nothing reached yet: all of it is in flight, nothing more is asked */
	apply(f);
	f->vm[1].balloon_actual = 4 * GiB;
	assert_int_equal(tick_at(f, 1000), 0);
	assert_int_equal(f->out.vm[0].resident, MEMD_KEEP);
	assert_int_equal(f->out.vm[1].balloon, MEMD_KEEP);
	fx_free(f);
}

static void test_balloon_most_free_per_weight_first(void **state)
{
	struct fx *f = fx_new("minivmm");
	uint64_t step = PCT(4 * GiB, 5);

	f->cfg.lookahead_ms = 0;        /* the room falls 1.6% in a second: not this test's subject */
	fx_reconfig(f);
	room_pct(f, 4.5);       /* tight at once, not pressure */
	assert_int_equal(tick_at(f, 0), 0);
	room_pct(f, 2.9);       /* need 3.1% of 10 GiB = 317.4 MiB: more than one step of 204.8 MiB */
	vm_set(f, 0, 4 * GiB, 4 * GiB, 1 * GiB);
	vm_set(f, 1, 4 * GiB, 4 * GiB, 3 * GiB);
	vm_set(f, 2, 4 * GiB, 4 * GiB, 2 * GiB);
	assert_int_equal(tick_at(f, 1000), 0);
	assert_int_equal(f->out.vm[1].balloon_target, 4 * GiB - step);
	assert_int_equal(f->out.vm[2].balloon, MEMD_SET);
	assert_true(f->out.vm[2].balloon_target > 4 * GiB - step);
	assert_int_equal(f->out.vm[0].balloon, MEMD_KEEP);
	fx_free(f);

	/* a weight of 500 makes the freest guest keep its memory */
	f = fx_new("minivmm");
	room_pct(f, 2.9);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 1 * GiB);
	vm_set(f, 1, 4 * GiB, 4 * GiB, 3 * GiB);
	vm_set(f, 2, 4 * GiB, 4 * GiB, 2 * GiB);
	f->vm[1].weight = 500;
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.vm[2].balloon_target, 4 * GiB - step);
	assert_int_equal(f->out.vm[0].balloon, MEMD_SET);
	assert_int_equal(f->out.vm[1].balloon, MEMD_KEEP);
	fx_free(f);
}

/* A minivmm VM with resident (host) memory and idle pages (bytes idle >= 2, 5, 10, 30 s). */
static void vm_idle(struct fx *f, size_t i, uint64_t resident, uint64_t i5, uint64_t i10)
{
	f->vm[i].kind = MEMD_VM_MINIVMM;
	f->vm[i].resident_target_ok = true;
	f->vm[i].resident = resident;
	f->vm[i].idle[0] = i5;
	f->vm[i].idle[1] = i5;
	f->vm[i].idle[2] = i10;
	f->vm[i].idle[3] = 0;
}

static void test_headroom_trims_idle_pages_once(void **state)
{
	struct fx *f = fx_new("minivmm");

	/* 12% room of 10 GiB is ok; the headroom is the largest VM (2 GiB) */
	room_pct(f, 12);
	vm_set(f, 0, 2 * GiB, 2 * GiB, 1 * GiB);
	vm_set(f, 1, 2 * GiB, 2 * GiB, 1 * GiB);
	vm_set(f, 2, 2 * GiB, 2 * GiB, 1 * GiB);
	vm_idle(f, 0, 1536 * MiB, 900 * MiB, 500 * MiB);
	vm_idle(f, 1, 1536 * MiB, 900 * MiB, 300 * MiB);
	vm_idle(f, 2, 1536 * MiB, 0, 0);
	f->vm[2].refault_rate = 0;
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.state, MEMD_OK);
	assert_int_equal(f->out.headroom, 2 * GiB);
	/* short by 2 GiB - 1.2 GiB: only pages idle 10 s are taken, most idle first */
	assert_int_equal(f->out.vm[0].resident, MEMD_SET);
	assert_int_equal(f->out.vm[0].resident_target, 1536 * MiB - 500 * MiB);
	assert_int_equal(f->out.vm[1].resident, MEMD_SET);
	assert_int_equal(f->out.vm[1].resident_target, 1536 * MiB - 300 * MiB);
	assert_int_equal(f->out.vm[2].resident, MEMD_KEEP);
	assert_int_equal(f->out.vm[0].balloon, MEMD_KEEP);   /* trims never balloon */
	assert_non_null(strstr(f->out.vm[0].why, "headroom trim"));
	apply(f);
	/* in flight: nothing more is asked while the VMs work toward it */
	assert_int_equal(tick_at(f, 1000), 0);
	assert_int_equal(f->out.vm[0].resident, MEMD_KEEP);
	assert_int_equal(f->out.vm[1].resident, MEMD_KEEP);
	/* reached: the one-shot target is cleared, the pages stay evicted */
	f->vm[0].resident = 1036 * MiB;
	f->vm[0].idle[2] = 0;
	f->in.host.usage -= 500 * MiB;
	assert_int_equal(tick_at(f, 2000), 0);
	assert_int_equal(f->out.vm[0].resident, MEMD_CLEAR);
	assert_non_null(strstr(f->out.vm[0].why, "headroom trim reached"));
	assert_int_equal(f->out.vm[1].resident, MEMD_KEEP);
	fx_free(f);

	/* --headroom 0 is the default; an explicit one wins; room above it trims nothing */
	f = fx_new("minivmm");
	f->cfg.headroom = 512 * MiB;
	fx_reconfig(f);
	room_pct(f, 12);
	vm_set(f, 0, 2 * GiB, 2 * GiB, 1 * GiB);
	vm_idle(f, 0, 1536 * MiB, 900 * MiB, 500 * MiB);
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.headroom, 512 * MiB);
	assert_int_equal(f->out.vm[0].resident, MEMD_KEEP);
	fx_free(f);
}

static void test_room_falling_fast_trims_ahead(void **state)
{
	struct fx *f = fx_new("minivmm");

	f->cfg.headroom = 1 * GiB;
	fx_reconfig(f);
	room_pct(f, 40);
	vm_set(f, 0, 2 * GiB, 2 * GiB, 1 * GiB);
	vm_set(f, 1, 2 * GiB, 2 * GiB, 1 * GiB);
	vm_idle(f, 0, 1536 * MiB, 1 * GiB, 1 * GiB);
	vm_idle(f, 1, 512 * MiB, 0, 0);
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.vm[0].resident, MEMD_KEEP);    /* 4 GiB of room: more than the headroom */
	/* a fill took 2.5 GiB in a second: in 2 s more the VMs would be over the budget, so it is
	 * critical now, and the idle pages go at once */
	room_pct(f, 15);
	assert_int_equal(tick_at(f, 1000), 0);
	assert_int_equal(f->out.state, MEMD_CRITICAL);
	assert_int_equal(f->out.vm[0].resident, MEMD_SET);
	assert_int_equal(f->out.vm[0].resident_target, 512 * MiB);
	assert_non_null(strstr(f->out.why, "room falling"));
	fx_free(f);
}

static void test_pressure_takes_idle_pages_unpaced(void **state)
{
	struct fx *f = fx_new("minivmm");
	uint64_t step = PCT(4 * GiB, 5);

	room_pct(f, 50);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 1 * GiB);
	vm_set(f, 1, 4 * GiB, 4 * GiB, 1 * GiB);
	vm_idle(f, 0, 3 * GiB, 1 * GiB, 1 * GiB);
	vm_idle(f, 1, 3 * GiB, 0, 0);
	assert_int_equal(tick_at(f, 0), 0);
	room_pct(f, 50 - 49.5);         /* over the pressure line: need 5.5% of 10 GiB and the fall */
	assert_int_equal(tick_at(f, 1000), 0);
	assert_true(f->out.state >= MEMD_PRESSURE);
	/* VM 0's idle gigabyte goes in one tick; VM 1 has none idle: a paced step */
	assert_int_equal(f->out.vm[0].resident, MEMD_SET);
	assert_int_equal(f->out.vm[0].resident_target, 2 * GiB);
	assert_int_equal(f->out.vm[1].resident, MEMD_SET);
	assert_int_equal(f->out.vm[1].resident_target, 3 * GiB - step);
	fx_free(f);
}

/* VM 0 held at a 2 GiB resident target with nothing idle; VM 1 with 1 GiB idle of 3 GiB. */
static void held_and_idle(struct fx *f)
{
	vm_set(f, 0, 4 * GiB, 4 * GiB, 2 * GiB);
	vm_set(f, 1, 4 * GiB, 4 * GiB, 2 * GiB);
	vm_idle(f, 0, 2 * GiB, 0, 0);
	vm_idle(f, 1, 3 * GiB, 1 * GiB, 1 * GiB);
	f->vm[0].resident_target = 2 * GiB;
}

static void test_pressured_guest_rebalanced_under_same_budget(void **state)
{
	struct fx *f = fx_new("minivmm");

	/* pressure: VM 0 is held at a resident target it refaults against */
	room_pct(f, 1);
	held_and_idle(f);
	f->vm[0].refault_rate = 5000;
	assert_int_equal(tick_at(f, 1000), 0);
	assert_true(f->out.state >= MEMD_PRESSURE);
	assert_true(f->out.vm[0].pressured);
	/* a step more, not cleared: the host is at its budget */
	assert_int_equal(f->out.vm[0].resident, MEMD_SET);
	assert_int_equal(f->out.vm[0].resident_target, 2 * GiB + PCT(4 * GiB, 10));
	assert_non_null(strstr(f->out.vm[0].why, "others make room"));
	/* the room comes from the other guest's idle pages, the budget unchanged */
	assert_int_equal(f->out.vm[1].resident, MEMD_SET);
	assert_true(f->out.vm[1].resident_target <= 3 * GiB - 500 * MiB - PCT(4 * GiB, 10));
	assert_true(f->out.vm[1].resident_target >= 2 * GiB);
	assert_int_equal(f->in.host.budget, 10 * GiB);
	fx_free(f);
}

/*
 * A guest refaulting its grown working set in makes the room fall fast:
 * the lookahead calls the host critical, yet with room left now the guest
 * is given its step and the others make room. Only over the budget is it
 * held, and squeezed as the last resort.
 */
static void test_refaulting_guest_grows_until_over_the_budget(void **state)
{
	struct fx *f = fx_new("minivmm");

	room_pct(f, 40);
	held_and_idle(f);
	assert_int_equal(tick_at(f, 0), 0);
	room_pct(f, 25);                /* 1.5 GiB in 0.5 s: over the budget 2 s ahead */
	f->vm[0].refault_rate = 20000;
	assert_int_equal(tick_at(f, 500), 0);
	assert_int_equal(f->out.state, MEMD_CRITICAL);
	assert_true(f->out.vm[0].pressured);
	assert_int_equal(f->out.vm[0].resident, MEMD_SET);
	assert_int_equal(f->out.vm[0].resident_target, 2 * GiB + PCT(4 * GiB, 10));
	assert_int_equal(f->out.vm[1].resident, MEMD_SET);
	assert_true(f->out.vm[1].resident_target < 3 * GiB);
	assert_null(strstr(f->out.why, "last resort"));
	apply(f);
	/* over the budget now: nobody grows, and the refaulting guest gives a step too */
	f->vm[0].resident = f->vm[0].resident_target;
	room_pct(f, -2);
	f->vm[0].refault_rate = 30000;
	f->vm[1].resident = f->vm[1].resident_target;
	vm_idle(f, 1, f->vm[1].resident, 0, 0);
	f->vm[1].refault_rate = 30000;
	assert_int_equal(tick_at(f, 1000), 0);
	assert_int_equal(f->out.state, MEMD_CRITICAL);
	assert_int_equal(f->out.vm[0].resident, MEMD_SET);
	assert_true(f->out.vm[0].resident_target < 2 * GiB + PCT(4 * GiB, 10));
	assert_non_null(strstr(f->out.why, "last resort"));
	fx_free(f);
}

static void test_floors_respected(void **state)
{
	struct fx *f = fx_new("minivmm");
	struct memd_vm_in v = { .ram = 4 * GiB };

	assert_int_equal(memd_vm_floor(&f->cfg, &v), 1 * GiB);
	v.ram = 512 * MiB;
	assert_int_equal(memd_vm_floor(&f->cfg, &v), 256 * MiB);
	v.ram = 128 * MiB;
	assert_int_equal(memd_vm_floor(&f->cfg, &v), 128 * MiB);
	v.floor = 3 * GiB;
	v.ram = 4 * GiB;
	assert_int_equal(memd_vm_floor(&f->cfg, &v), 3 * GiB);

	/* critical for a minute, guests with everything free: never below floor or keep-free */
	vm_set(f, 0, 4 * GiB, 4 * GiB, 4 * GiB);
	vm_set(f, 1, 4 * GiB, 4 * GiB, 4 * GiB);
	f->vm[1].floor = 3 * GiB;
	vm_set(f, 2, 4 * GiB, 4 * GiB, 4 * GiB);
	f->vm[2].resident_target_ok = true;
	for (uint64_t t = 0; t < 60; t++) {
		room_pct(f, -20);
		assert_int_equal(tick_at(f, t * 1000), 0);
		assert_int_equal(f->out.state, MEMD_CRITICAL);
		for (size_t i = 0; i < 3; i++) {
			if (f->out.vm[i].balloon == MEMD_SET)
				assert_true(f->out.vm[i].balloon_target >= f->out.vm[i].floor);
			if (f->out.vm[i].resident == MEMD_SET)
				assert_true(f->out.vm[i].resident_target >= f->out.vm[i].floor);
		}
		apply(f);
		for (size_t i = 0; i < 3; i++) {     /* the guest's free memory shrinks with its balloon */
			f->vm[i].stats.available = f->vm[i].stats.free = f->vm[i].balloon_actual;
			if (f->vm[i].resident_target != MEMD_NONE)
				f->vm[i].resident = f->vm[i].resident_target;
		}
	}
	assert_int_equal(f->vm[0].balloon_actual, 1 * GiB);
	assert_int_equal(f->vm[1].balloon_actual, 3 * GiB);
	assert_int_equal(f->vm[2].resident, 1 * GiB);
	assert_non_null(strstr(f->out.why, "short by"));
	fx_free(f);

	/* a guest keeps 10% of its memory (>= 64 MiB) available */
	f = fx_new("minivmm");
	room_pct(f, -20);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 500 * MiB);
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.vm[0].balloon, MEMD_SET);
	assert_int_equal(f->out.vm[0].balloon_target, 4 * GiB - ((500 * MiB - 4 * GiB * 10 / 100) & ~(MiB - 1)));
	fx_free(f);
}

static void test_stalled_balloon_stepped_back_and_cooled(void **state)
{
	struct fx *f = fx_new("minivmm");

	room_pct(f, 50);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 3 * GiB);
	f->vm[0].balloon_target = 3 * GiB;      /* asked for earlier; the guest does not move */
	for (uint64_t t = 0; t < 5; t++) {
		assert_int_equal(tick_at(f, t * 1000), 0);
		assert_int_equal(f->out.vm[0].balloon, MEMD_KEEP);
	}
	assert_int_equal(tick_at(f, 5000), 0);
	assert_int_equal(f->out.vm[0].balloon, MEMD_SET);
	assert_int_equal(f->out.vm[0].balloon_target, 4 * GiB);
	assert_non_null(strstr(f->out.vm[0].why, "stepped back"));
	apply(f);
	/* cooling down: pressure does not squeeze it for 30 s */
	room_pct(f, 1);
	for (uint64_t t = 6; t < 35; t++) {
		assert_int_equal(tick_at(f, t * 1000), 0);
		assert_int_equal(f->out.vm[0].balloon, MEMD_KEEP);
		assert_non_null(strstr(f->out.vm[0].why, "cooling down"));
	}
	assert_int_equal(tick_at(f, 35000), 0);
	assert_int_equal(f->out.vm[0].balloon, MEMD_SET);
	assert_true(f->out.vm[0].balloon_target < 4 * GiB);
	fx_free(f);

	/* a slow guest that progresses is followed until the 30 s bound (tight: no give-back) */
	f = fx_new("minivmm");
	room_pct(f, 7.5);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 3 * GiB);
	f->vm[0].balloon_target = 3 * GiB;
	for (uint64_t t = 0; t < 30; t++) {
		f->vm[0].balloon_actual = 4 * GiB - t * 2 * MiB;
		assert_int_equal(tick_at(f, t * 1000), 0);
		assert_int_equal(f->out.vm[0].balloon, MEMD_KEEP);
	}
	f->vm[0].balloon_actual = 4 * GiB - 60 * MiB;
	assert_int_equal(tick_at(f, 30000), 0);
	assert_int_equal(f->out.vm[0].balloon, MEMD_SET);
	assert_int_equal(f->out.vm[0].balloon_target, 4 * GiB - 60 * MiB);
	fx_free(f);
}

static void test_stalled_resident_target_stepped_back(void **state)
{
	struct fx *f = fx_new("minivmm");

	room_pct(f, 50);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 3 * GiB);
	f->vm[0].resident_target_ok = true;
	f->vm[0].resident = 3 * GiB;
	f->vm[0].resident_target = 2 * GiB;     /* no cold pages left to take */
	room_pct(f, 7.5);                       /* tight: ok would clear the target */
	for (uint64_t t = 0; t < 5; t++) {
		assert_int_equal(tick_at(f, t * 1000), 0);
		assert_int_equal(f->out.vm[0].resident, MEMD_KEEP);
	}
	assert_int_equal(tick_at(f, 5000), 0);
	assert_int_equal(f->out.vm[0].resident, MEMD_SET);
	assert_int_equal(f->out.vm[0].resident_target, 3 * GiB);
	assert_non_null(strstr(f->out.vm[0].why, "resident target 2.00G stepped back"));
	fx_free(f);
}

static void test_stale_or_all_ones_stats_ignored(void **state)
{
	struct fx *f = fx_new("minivmm");

	room_pct(f, 1);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 3 * GiB);
	vm_set(f, 1, 4 * GiB, 4 * GiB, 3 * GiB);
	vm_set(f, 2, 4 * GiB, 4 * GiB, 3 * GiB);
	f->live[0] = f->live[2] = false;
	f->vm[0].stats.updated_ms = 10000;      /* 6 s old at t = 16 s */
	f->vm[1].stats.free = f->vm[1].stats.available = MEMD_NONE;    /* all ones */
	f->vm[2].stats.updated_ms = 0;          /* never */
	assert_int_equal(tick_at(f, 16000), 0);
	assert_int_equal(f->out.state, MEMD_PRESSURE);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(f->out.vm[i].balloon, MEMD_KEEP);
	assert_non_null(strstr(f->out.vm[0].why, "stale or all-ones"));
	assert_non_null(strstr(f->out.vm[1].why, "stale or all-ones"));
	assert_non_null(strstr(f->out.vm[2].why, "missing"));
	assert_false(memd_stats_fresh(&f->cfg, &f->vm[0], 16000));
	assert_true(memd_stats_fresh(&f->cfg, &f->vm[0], 15000));

	/* stalls counted from stale stats are no pressure signal */
	fx_free(f);
	f = fx_new("minivmm");
	room_pct(f, 50);
	vm_set(f, 0, 4 * GiB, 3 * GiB, 2 * GiB);
	assert_int_equal(tick_at(f, 1000), 0);
	f->live[0] = false;                     /* not refreshed after t = 1 s */
	f->vm[0].stats.alloc_stalls = 50;
	assert_int_equal(tick_at(f, 8000), 0);
	assert_false(f->out.vm[0].pressured);
	fx_free(f);
}

static void test_pressured_guest_gets_memory_first(void **state)
{
	struct fx *f = fx_new("minivmm");
	uint64_t room;

	room_pct(f, 7.5);       /* tight: the room down to the 6% goal, the rest from the other guest */
	vm_set(f, 0, 4 * GiB, 3 * GiB, 1 * GiB);
	vm_set(f, 1, 4 * GiB, 3 * GiB, 1 * GiB);
	f->vm[0].stats.alloc_stalls = 10;
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.state, MEMD_TIGHT);
	f->vm[0].stats.alloc_stalls = 15;
	assert_int_equal(tick_at(f, 1000), 0);
	assert_true(f->out.vm[0].pressured);
	assert_false(f->out.vm[1].pressured);
	room = 10 * GiB - f->in.host.usage;
	assert_int_equal(f->out.vm[0].balloon, MEMD_SET);
	/* more than the room alone gives, as much as the other guest's balloon takes, never over a full step */
	assert_true(f->out.vm[0].balloon_target > 3 * GiB + ((room - 10 * GiB * 6 / 100) & ~(MiB - 1)));
	assert_true(f->out.vm[0].balloon_target <= 3 * GiB + PCT(4 * GiB, 10));
	assert_non_null(strstr(f->out.vm[0].why, "alloc stalls +5"));
	assert_non_null(strstr(f->out.vm[0].why, "guest under pressure"));
	assert_int_equal(f->out.vm[1].balloon, MEMD_SET);
	assert_true(f->out.vm[1].balloon_target < 3 * GiB);
	assert_true(f->out.vm[0].balloon_target - 3 * GiB <=
		    (room - 10 * GiB * 6 / 100) + (3 * GiB - f->out.vm[1].balloon_target));
	assert_non_null(strstr(f->out.why, "pressured guests want"));
	fx_free(f);

	/* ok: the pressured guest a full step (10% of RAM), the other one paced step (5%) */
	f = fx_new("minivmm");
	room_pct(f, 50);
	vm_set(f, 0, 4 * GiB, 3 * GiB, 1 * GiB);
	vm_set(f, 1, 4 * GiB, 3 * GiB, 1 * GiB);
	f->vm[0].resident_target_ok = true;
	f->vm[0].resident_target = 2 * GiB;
	f->vm[0].resident = 2 * GiB;
	assert_int_equal(tick_at(f, 0), 0);
	f->vm[0].refault_rate = 500;
	f->vm[0].stats.major_faults = 1000;     /* 1000/s */
	assert_int_equal(tick_at(f, 1000), 0);
	assert_true(f->out.vm[0].pressured);
	assert_non_null(strstr(f->out.vm[0].why, "major faults 1000/s"));
	assert_non_null(strstr(f->out.vm[0].why, "refaults 500/s rising"));
	assert_int_equal(f->out.vm[0].resident, MEMD_SET);        /* a full step more, not cleared */
	assert_int_equal(f->out.vm[0].resident_target, 2 * GiB + PCT(4 * GiB, 10));
	assert_int_equal(f->out.vm[0].balloon_target, 3 * GiB + PCT(4 * GiB, 10));
	assert_int_equal(f->out.vm[1].balloon_target, 3 * GiB + PCT(4 * GiB, 5));
	/* a guest given memory for its pressure is not squeezed right after */
	apply(f);
	room_pct(f, 1);
	f->vm[0].refault_rate = 0;
	assert_int_equal(tick_at(f, 12000), 0);
	assert_false(f->out.vm[0].pressured);
	assert_int_equal(f->out.vm[0].balloon, MEMD_KEEP);
	assert_int_equal(f->out.vm[1].balloon, MEMD_SET);
	fx_free(f);
}

/*
 * A closed loop: three guests whose touched memory only falls when the
 * balloon takes it (a deflated page is not resident until used), budget
 * well below their RAM, the usage reading jittering by 0.5%. The policy
 * must bring usage under the budget without overshooting past its goal
 * (hysteresis holds the state, not the squeeze), never go below floors,
 * and settle: few state changes, no target turning around, nothing
 * changing at the end.
 */
static void test_closed_loop_settles_without_oscillation(void **state)
{
	struct fx *f = fx_new("minivmm");
	uint64_t touched[3] = { 1800 * MiB, 1600 * MiB, 1400 * MiB }, used[3] = { 700 * MiB, 500 * MiB, 300 * MiB };
	int turns[3] = { 0 }, dir[3] = { 0 }, state_changes = 0, late_changes = 0;
	enum memd_state last = MEMD_OK;
	uint64_t max_usage_late = 0;

	for (size_t i = 0; i < 3; i++)
		vm_set(f, i, 2 * GiB, 2 * GiB, 2 * GiB - used[i]);
	for (uint64_t t = 0; t < 400; t++) {
		uint64_t usage = 0;

		for (size_t i = 0; i < 3; i++) {
			touched[i] = touched[i] < f->vm[i].balloon_actual ? touched[i] : f->vm[i].balloon_actual;
			f->vm[i].resident = touched[i];
			usage += touched[i];
			f->vm[i].stats.available = f->vm[i].stats.free = f->vm[i].balloon_actual - used[i];
		}
		/* +-0.5% noise on the usage reading */
		usage += (t % 3 == 0 ? 1 : 0) * (uint64_t)(0.005 * 4 * GiB);
		budget(f, 4 * GiB, usage);
		if (t >= 300 && usage > max_usage_late)
			max_usage_late = usage;
		assert_int_equal(tick_at(f, t * 1000), 0);
		state_changes += f->out.state != last;
		last = f->out.state;
		for (size_t i = 0; i < 3; i++) {
			if (f->out.vm[i].balloon != MEMD_SET)
				continue;
			int d = f->out.vm[i].balloon_target > f->vm[i].balloon_actual ? 1 : -1;

			assert_true(f->out.vm[i].balloon_target >= f->out.vm[i].floor);
			turns[i] += dir[i] && d != dir[i];
			dir[i] = d;
			late_changes += t >= 300;
		}
		apply(f);
	}
	assert_true(max_usage_late < 4 * GiB);
	assert_true(state_changes <= 4);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(turns[i], 0);
	assert_int_equal(late_changes, 0);
	/* the guests never touch their memory again: the host rests in tight, at the 6% goal */
	assert_int_equal(last, MEMD_TIGHT);
	assert_true(f->out.room >= (int64_t)(4 * GiB * 6 / 100) - (int64_t)(4 * MiB));
	fx_free(f);
}

/* ---- none, input checks ---------------------------------------------------- */

static void test_none_never_acts(void **state)
{
	struct fx *f = fx_new("none");

	room_pct(f, -10);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 3 * GiB);
	f->in.host.psi_trigger = true;
	assert_int_equal(tick_at(f, 0), 0);
	assert_int_equal(f->out.state, MEMD_CRITICAL);
	assert_int_equal(f->out.vm[0].balloon, MEMD_KEEP);
	assert_int_equal(f->out.vm[0].resident, MEMD_KEEP);
	assert_int_equal(f->out.ksm.action, MEMD_KEEP);
	assert_non_null(strstr(f->out.vm[0].why, "observe only"));
	assert_string_equal(memd_policy_name(f->p), "none");
	fx_free(f);
}

static void test_bad_input_refused(void **state)
{
	struct memd_policy *p = (struct memd_policy *)1;
	struct fx *f = fx_new("minivmm");

	assert_int_equal(memd_policy_new("mom2", NULL, &p), -EINVAL);
	assert_null(p);
	assert_int_equal(memd_policy_new(NULL, NULL, &p), -EINVAL);
	vm_set(f, 0, 4 * GiB, 4 * GiB, 3 * GiB);
	vm_set(f, 1, 4 * GiB, 4 * GiB, 3 * GiB);
	f->vm[1].id = f->vm[0].id;
	assert_int_equal(tick_at(f, 1000), -EINVAL);
	assert_non_null(strstr(f->out.why, "given twice"));
	f->vm[1].id = 7;
	assert_int_equal(tick_at(f, 1000), 0);
	assert_int_equal(tick_at(f, 500), -EINVAL);     /* time went back */
	assert_non_null(strstr(f->out.why, "time went back"));
	f->in.nvm = MEMD_MAX_VMS + 1;
	assert_int_equal(tick_at(f, 2000), -EINVAL);
	f->in.nvm = 2;
	budget(f, 4 * GiB, MEMD_NONE);
	assert_int_equal(tick_at(f, 2000), -EINVAL);
	budget(f, MEMD_NONE, MEMD_NONE);
	f->in.host.mem_available = MEMD_NONE;
	assert_int_equal(tick_at(f, 2000), -EINVAL);
	fx_free(f);
}

static void test_vms_come_and_go(void **state)
{
	struct fx *f = fx_new("minivmm");

	/* a full table, then every VM replaced: the slots of departed VMs are reused */
	room_pct(f, 50);
	for (size_t i = 0; i < MEMD_MAX_VMS; i++)
		vm_set(f, i, 1 * GiB, 1 * GiB, 512 * MiB);
	assert_int_equal(tick_at(f, 0), 0);
	for (size_t i = 0; i < MEMD_MAX_VMS; i++)
		f->vm[i].id += 1000;
	assert_int_equal(tick_at(f, 1000), 0);
	assert_int_equal(f->out.nvm, MEMD_MAX_VMS);
	for (size_t i = 0; i < MEMD_MAX_VMS; i++)
		assert_int_equal(f->out.vm[i].id, f->vm[i].id);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mom_shrink_arithmetic),
		cmocka_unit_test(test_mom_critical_and_balloon_min),
		cmocka_unit_test(test_mom_grow_arithmetic),
		cmocka_unit_test(test_mom_statavg_and_period),
		cmocka_unit_test(test_mom_guest_without_stats_sits_out),
		cmocka_unit_test(test_mom_ksm_rule),
		cmocka_unit_test(test_states_enter_at_once_leave_slowly),
		cmocka_unit_test(test_states_hysteresis_margin),
		cmocka_unit_test(test_psi_trigger_reacts_in_the_same_tick),
		cmocka_unit_test(test_cheapest_first_resident_then_balloon),
		cmocka_unit_test(test_balloon_most_free_per_weight_first),
		cmocka_unit_test(test_headroom_trims_idle_pages_once),
		cmocka_unit_test(test_room_falling_fast_trims_ahead),
		cmocka_unit_test(test_pressure_takes_idle_pages_unpaced),
		cmocka_unit_test(test_pressured_guest_rebalanced_under_same_budget),
		cmocka_unit_test(test_refaulting_guest_grows_until_over_the_budget),
		cmocka_unit_test(test_floors_respected),
		cmocka_unit_test(test_stalled_balloon_stepped_back_and_cooled),
		cmocka_unit_test(test_stalled_resident_target_stepped_back),
		cmocka_unit_test(test_stale_or_all_ones_stats_ignored),
		cmocka_unit_test(test_pressured_guest_gets_memory_first),
		cmocka_unit_test(test_closed_loop_settles_without_oscillation),
		cmocka_unit_test(test_none_never_acts),
		cmocka_unit_test(test_bad_input_refused),
		cmocka_unit_test(test_vms_come_and_go),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
