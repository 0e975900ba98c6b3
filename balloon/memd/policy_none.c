/*
 * The "none" policy: observe only. It classifies the host exactly as the
 * minivmm policy does (so a timeline shows what pressure there was) and
 * says, per VM, what it sees, but it never changes a target.
 */
#include <stdio.h>

#include "balloon/memd/policy_priv.h"

struct none_state {
	struct memd_hyst hy;
};

static void none_init(void *st, const struct memd_config *cfg)
{
	struct none_state *s = st;

	s->hy.state = MEMD_OK;
}

static void none_tick(void *st, const struct memd_config *cfg, const struct memd_input *in,
		      struct memd_output *out)
{
	struct none_state *s = st;
	struct memd_room r;

	memd_room_of(&in->host, &r);
	memd_classify(&s->hy, cfg, &in->host, &r, out->why, sizeof(out->why));
	out->state = s->hy.state;
	out->room = r.room;
	out->decided = true;
	for (size_t i = 0; i < in->nvm; i++) {
		const struct memd_vm_in *vm = &in->vm[i];
		char name[32], s1[MEMD_SZ], s2[MEMD_SZ], s3[MEMD_SZ];

		snprintf(out->vm[i].why, MEMD_WHY_MAX, "none: observe only; %s actual %s of RAM %s, resident %s",
			 memd_vm_label(vm, name, sizeof(name)), memd_sz(s1, (int64_t)vm->balloon_actual),
			 memd_sz(s2, (int64_t)vm->ram),
			 vm->resident == MEMD_NONE ? "unknown" : memd_sz(s3, (int64_t)vm->resident));
	}
	snprintf(out->ksm.why, MEMD_WHY_MAX, "none: KSM left alone");
}

const struct memd_policy_ops memd_policy_none_ops = {
	.name = "none",
	.state_size = sizeof(struct none_state),
	.init = none_init,
	.tick = none_tick,
};
