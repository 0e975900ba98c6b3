/*
 * version: minivmm's release, shown by --version and in QMP's greeting.
 */
#ifndef MINIVMM_LIB_VERSION_H
#define MINIVMM_LIB_VERSION_H

#define MINIVMM_VERSION "0.1.0"

#endif
