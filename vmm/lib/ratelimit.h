/*
 * ratelimit: a cap on log lines a guest can cause. A guest decides how
 * often it writes a bad ring or an inflate buffer full of bad PFNs, so
 * every log line it can trigger goes through one of these: a burst of
 * RATELIMIT_BURST lines per RATELIMIT_WINDOW_S seconds, then silence, and
 * the next line that passes says how many were dropped. One per device;
 * the caller serializes (the device's lock).
 */
#ifndef MINIVMM_LIB_RATELIMIT_H
#define MINIVMM_LIB_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define RATELIMIT_BURST    10
#define RATELIMIT_WINDOW_S 5

struct ratelimit {
	uint64_t window_start;   /* seconds (monotonic) */
	unsigned used;           /* lines logged in this window */
	uint64_t suppressed;     /* lines dropped since the last one logged */
	uint64_t total_suppressed;
};

/* True when a line may be logged now; *dropped gets the number of lines
 * suppressed since the last one that passed (to say so in this one). */
static inline bool ratelimit_pass(struct ratelimit *rl, uint64_t *dropped)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if ((uint64_t)ts.tv_sec - rl->window_start >= RATELIMIT_WINDOW_S) {
		rl->window_start = (uint64_t)ts.tv_sec;
		rl->used = 0;
	}
	if (rl->used >= RATELIMIT_BURST) {
		rl->suppressed++;
		rl->total_suppressed++;
		return false;
	}
	rl->used++;
	*dropped = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

/* Logs through log_fn (log_err, log_info) when rl lets it pass, appending
 * "(N similar lines suppressed)" when lines were dropped before it. */
#define log_limited(rl, log_fn, sub, fmt, ...)                                          \
	do {                                                                            \
		uint64_t rl_dropped_;                                                   \
		if (ratelimit_pass((rl), &rl_dropped_)) {                               \
			if (rl_dropped_)                                                \
				log_fn(sub, fmt " (%llu similar lines suppressed)",     \
				       ##__VA_ARGS__, (unsigned long long)rl_dropped_); \
			else                                                            \
				log_fn(sub, fmt, ##__VA_ARGS__);                        \
		}                                                                       \
	} while (0)

#endif
