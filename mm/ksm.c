/*
 * ksm: KSM mode, the kernel's dedup as a baseline. ksm=on marks private
 * anonymous guest RAM MADV_MERGEABLE and reports the process's and the
 * system's KSM figures. It never touches /sys/kernel/mm/ksm/run: whether
 * ksmd runs is the host administrator's choice (the figures show it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mm/manager_priv.h"

int mm_ksm_enable(struct mm_manager *m, char *err, size_t errlen)
{
	if (m->gm->backing != MM_BACKING_ANON && m->gm->backing != MM_BACKING_THP) {
		snprintf(err, errlen, "--mm ksm=on needs private anonymous guest RAM (--mem-backing anon or thp): "
			 "KSM does not merge %s pages", mm_backing_name(m->gm->backing));
		return -EINVAL;
	}
	if (madvise(m->gm->base, m->gm->ram_size, MADV_MERGEABLE) < 0) {
		int e = errno;
		snprintf(err, errlen, "--mm ksm=on: madvise(MADV_MERGEABLE): %s (is CONFIG_KSM built into "
			 "the host kernel?)", strerror(e));
		return -e;
	}
	log_info("mm", "ksm: guest RAM is mergeable; KSM merges only while /sys/kernel/mm/ksm/run is 1");
	return 0;
}

static int ksm_read_u64(const char *path, uint64_t *v)
{
	FILE *f = fopen(path, "r");
	unsigned long long x;
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "%llu", &x) == 1;
	fclose(f);
	if (!ok)
		return -EINVAL;
	*v = x;
	return 0;
}

void mm_ksm_query(struct mm_manager *m, json_t *obj)
{
	static const char *const sys[] = {
		"run", "pages_shared", "pages_sharing", "pages_unshared", "pages_volatile",
		"full_scans", "pages_to_scan", "sleep_millisecs", "ksm_zero_pages", "general_profit",
	};
	char line[256], path[128];
	FILE *f;
	uint64_t v;

	(void)m;
	/* Per process: ksm_rmap_items, ksm_zero_pages, ksm_merging_pages, ksm_process_profit. */
	f = fopen("/proc/self/ksm_stat", "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char key[64];
			unsigned long long x;
			if (sscanf(line, "%63s %llu", key, &x) == 2) {
				for (char *p = key; *p; p++)
					if (*p == '_')
						*p = '-';
				json_object_set_new(obj, key, json_integer((json_int_t)x));
			}
		}
		fclose(f);
	} else if (!ksm_read_u64("/proc/self/ksm_merging_pages", &v)) {
		json_object_set_new(obj, "ksm-merging-pages", json_integer((json_int_t)v));
	}
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		snprintf(path, sizeof(path), "/sys/kernel/mm/ksm/%s", sys[i]);
		if (ksm_read_u64(path, &v))
			continue;
		char key[64];
		snprintf(key, sizeof(key), "sys-%s", sys[i]);
		for (char *p = key; *p; p++)
			if (*p == '_')
				*p = '-';
		json_object_set_new(obj, key, json_integer((json_int_t)v));
	}
}
