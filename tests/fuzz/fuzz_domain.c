/*
 * Fuzz target: the libvirt domain XML reader (vmm/machine_domain.c), as
 * `minivmm --domain FILE` runs it on a file someone else wrote: the input
 * is the file; when it is accepted, it is also applied to a machine
 * configuration as the program does (no command-line overrides, so nothing
 * is printed).
 */
#include <stdint.h>
#include <string.h>

#include "tests/fuzz/common.h"
#include "vmm/kvm/kvm.h"
#include "vmm/machine_domain.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct domain_def d;
	struct vm_config cfg;
	const char *name = NULL;
	char err[512];

	memset(&d, 0, sizeof(d));
	int ret = domain_parse((const char *)data, size, "fuzz.xml", &d, err, sizeof(err));
	fz_say("domain_parse", ret, err);
	if (ret == 0) {
		memset(&cfg, 0, sizeof(cfg));
		ret = domain_apply(&d, 0, &cfg, &name, err, sizeof(err));
		fz_say("domain_apply", ret, err);
	}
	domain_free(&d);
	return 0;
}
