/*
 * Fuzz target: minivmm-memd's control socket commands
 * (balloon/memd/control.c): the input is what one client sends, split into
 * lines as the socket code splits them, each handled by
 * memd_control_handle() for a daemon with no VMs (as tests/unit/test_memd.c
 * builds it), capabilities negotiation carried from line to line. A fresh
 * daemon per input, so set-budget and set-policy do not leak between inputs.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "balloon/memd/memd.h"
#include "balloon/memd/policy.h"
#include "tests/fuzz/common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct memd *d = calloc(1, sizeof(*d));
	bool negotiated = false;
	size_t off = 0;

	if (!d)
		abort();
	memd_opts_init(&d->o);
	memd_config_default(&d->cfg);
	if (memd_policy_new("minivmm", &d->cfg, &d->policy))
		abort();
	d->psi_fd = -1;
	d->timer_fd = -1;
	d->sig_fd = -1;
	d->host.budget = d->host.usage = MEMD_NONE;
	while (off < size) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (data + off)) : size - off;
		if (len > MEMD_CTL_MAX_LINE)
			len = MEMD_CTL_MAX_LINE;
		/* (line, len) is the whole contract: exactly len bytes, no NUL after
		 * them, so reading past the line is ASan's to see */
		char *line = malloc(len ? len : 1);
		if (!line)
			abort();
		memcpy(line, data + off, len);
		json_t *reply = memd_control_handle(d, line, len, &negotiated);
		free(line);
		if (reply) {
			char *text = json_dumps(reply, JSON_COMPACT);
			if (!text)
				abort();     /* a reply that cannot be sent */
			free(text);
			json_decref(reply);
		}
		off += len + 1;
	}
	memd_policy_free(d->policy);
	memd_opts_free(&d->o);
	free(d);
	return 0;
}
