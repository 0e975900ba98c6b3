/*
 * policy: the policy registry and the adaptive cold-age controller (see
 * policy.h). The policies themselves live in policy_clock.c and policy_2q.c.
 */
#include <errno.h>
#include <string.h>

#include "mm/policy.h"

static const struct mm_policy_ops *const mm_policies[] = { &mm_policy_clock, &mm_policy_2q };

const struct mm_policy_ops *mm_policy_find(const char *name)
{
	for (size_t i = 0; i < sizeof(mm_policies) / sizeof(mm_policies[0]); i++)
		if (!strcmp(mm_policies[i]->name, name))
			return mm_policies[i];
	return NULL;
}

int mm_policy_init(struct mm_policy *p, const struct mm_policy_ops *ops, struct mm_pagestate *ps)
{
	memset(p, 0, sizeof(*p));
	p->ops = ops;
	p->ps = ps;
	return ops->init ? ops->init(p) : 0;
}

void mm_policy_fini(struct mm_policy *p)
{
	if (p->ops && p->ops->fini)
		p->ops->fini(p);
	p->ops = NULL;
}

void mm_ctrl_init(struct mm_ctrl *c, double min_age, double target)
{
	c->min_age = min_age < 0 ? 0 : min_age;
	c->max_age = c->min_age > 3600 ? c->min_age : 3600;
	c->cur_age = c->min_age;
	c->target = target;
	c->last_rate = 0;
}

double mm_ctrl_update(struct mm_ctrl *c, uint64_t refaults, double window)
{
	if (window <= 0)
		return c->cur_age;
	c->last_rate = (double)refaults / window;
	if (c->target <= 0)
		return c->cur_age;
	if (c->last_rate > c->target) {
		/* Too many promotions: pages we call cold are not. Back off fast. */
		double n = c->cur_age * 2;
		if (n < c->cur_age + 1)
			n = c->cur_age + 1;
		c->cur_age = n > c->max_age ? c->max_age : n;
	} else if (c->last_rate < c->target / 2) {
		/* Well under target: reclaim more by walking the threshold down slowly. */
		double n = c->cur_age * 0.8;
		c->cur_age = n < c->min_age ? c->min_age : n;
	}
	return c->cur_age;
}
