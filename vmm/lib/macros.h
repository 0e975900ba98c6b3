/*
 * macros: the few compile-time helpers every layer uses.
 */
#ifndef MINIVMM_LIB_MACROS_H
#define MINIVMM_LIB_MACROS_H

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
