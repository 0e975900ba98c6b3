/*
 * fillsum: the checksum the guest's workload=fill must report, computed on
 * the host from the same generator (guest-driver/fillgen.h).
 *
 *   fillsum SIZE MIX SEED [ROUNDS]
 *
 * prints "fill: ok checksum=0x%016lx" for the memory contents after round
 * ROUNDS (default 1), exactly as the guest prints it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "guest-driver/fillgen.h"

int main(int argc, char **argv)
{
	struct fillgen_mix mix;
	uint64_t size, seed, rounds = 1, sum = 0;
	static uint64_t page[FILLGEN_WORDS];

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: fillsum SIZE MIX SEED [ROUNDS]\n"
				"  e.g. fillsum 64M zero:25,dup:25,random:25,text:25 1 3\n");
		return 2;
	}
	if (fillgen_parse_size(argv[1], &size) < 0) {
		fprintf(stderr, "fillsum: bad SIZE '%s' (expected e.g. 64M)\n", argv[1]);
		return 2;
	}
	if (fillgen_parse_mix(argv[2], &mix) < 0) {
		fprintf(stderr, "fillsum: bad MIX '%s' (expected e.g. zero:25,dup:25,random:25,text:25)\n", argv[2]);
		return 2;
	}
	if (fillgen_parse_u64(argv[3], &seed) < 0) {
		fprintf(stderr, "fillsum: bad SEED '%s'\n", argv[3]);
		return 2;
	}
	if (argc == 5 && (fillgen_parse_u64(argv[4], &rounds) < 0 || rounds == 0)) {
		fprintf(stderr, "fillsum: bad ROUNDS '%s' (expected a positive number)\n", argv[4]);
		return 2;
	}
	/* the guest rounds SIZE up to whole pages */
	for (uint64_t i = 0; i < (size + FILLGEN_PAGE - 1) / FILLGEN_PAGE; i++) {
		fillgen_page(seed, &mix, i, fillgen_gen(seed, i, rounds), page);
		sum += fillgen_hash_page(page, i);
	}
	printf("fill: ok checksum=0x%016" PRIx64 "\n", sum);
	return 0;
}
