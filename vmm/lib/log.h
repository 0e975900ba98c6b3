/*
 * log: one line per message on stderr, "minivmm: SUBSYSTEM: text", from any
 * thread (a mutex keeps lines whole). The level is set once by the program
 * before threads start.
 */
#ifndef MINIVMM_LIB_LOG_H
#define MINIVMM_LIB_LOG_H

extern int vmm_log_level;   /* 0 errors (default), 1 info (-v), 2 debug (-vv) */
void vmm_log(int level, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define log_err(sub, ...)   vmm_log(0, sub, __VA_ARGS__)
#define log_info(sub, ...)  vmm_log(1, sub, __VA_ARGS__)
#define log_debug(sub, ...) vmm_log(2, sub, __VA_ARGS__)

#endif
