/*
 * json: one-line serialization for line-oriented JSON protocols.
 */
#include <stdlib.h>
#include <string.h>

#include "vmm/lib/json.h"

char *json_dump_line(json_t *msg)
{
	char *s = json_dumps(msg, JSON_ENSURE_ASCII);
	json_decref(msg);
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *line = realloc(s, n + 3);
	if (!line) {
		free(s);
		return NULL;
	}
	memcpy(line + n, "\r\n", 3);
	return line;
}
