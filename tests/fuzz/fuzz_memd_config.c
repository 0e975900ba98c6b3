/*
 * Fuzz target: minivmm-memd's config file parser (balloon/memd/config.c):
 * the input is the file's text, in either of its forms ("key = value"
 * lines or a JSON object), read into options as `--config FILE` does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "balloon/memd/memd.h"
#include "tests/fuzz/common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct memd_opts o;
	char err[512];
	/* the file as memd_read_text() hands it over: NUL-terminated text */
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	memd_opts_init(&o);
	int ret = memd_opts_parse(&o, text, "fuzz.conf", err, sizeof(err));
	fz_say("memd_opts_parse", ret, err);
	if (ret == 0) {
		/* what the daemon asks of the result */
		(void)memd_opts_floor(&o, "vm0");
		(void)memd_opts_weight(&o, "vm0");
		(void)memd_opts_floor_sum(&o);
	}
	memd_opts_free(&o);
	free(text);
	return 0;
}
