/*
 * json: small helpers over jansson shared by the QMP server and clients.
 */
#ifndef MINIVMM_LIB_JSON_H
#define MINIVMM_LIB_JSON_H

#include <jansson.h>

/* Serializes msg (stolen) as one "\r\n"-terminated line, as QEMU sends QMP
 * messages (ASCII only). A malloc'd string, or NULL when out of memory. */
char *json_dump_line(json_t *msg);

#endif
