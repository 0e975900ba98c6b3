/*
 * clock: the monotonic clock minivmm measures durations with.
 */
#ifndef MINIVMM_LIB_CLOCK_H
#define MINIVMM_LIB_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);

#endif
