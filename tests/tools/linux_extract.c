/*
 * linux_extract BZIMAGE OUT: writes a bzImage's payload, decompressed by
 * minivmm's own loader code, to OUT. Debian ships no vmlinux, so this is
 * how the PVH boot test gets one.
 */
#include <stdio.h>
#include <stdlib.h>

#include "vmm/boot/boot.h"

int main(int argc, char **argv)
{
	struct linux_setup s;
	uint8_t *buf, *out;
	size_t len, outlen;
	char err[512];
	FILE *f;

	if (argc != 3) {
		fprintf(stderr, "usage: linux_extract BZIMAGE OUT\n");
		return 2;
	}
	if (read_file_as(argv[1], "kernel", &buf, &len, err, sizeof(err)) ||
	    bzimage_parse(buf, len, &s, err, sizeof(err)) ||
	    linux_decompress(s.payload, s.payload_len, &out, &outlen, err, sizeof(err))) {
		fprintf(stderr, "linux_extract: %s\n", err);
		return 1;
	}
	f = fopen(argv[2], "wb");
	if (!f || fwrite(out, 1, outlen, f) != outlen || fclose(f) != 0) {
		perror(argv[2]);
		return 1;
	}
	printf("%s payload, %zu bytes\n", linux_comp_name(linux_comp_detect(s.payload, s.payload_len)), outlen);
	free(out);
	free(buf);
	return 0;
}
