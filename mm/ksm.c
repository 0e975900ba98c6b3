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
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mm/manager_priv.h"
#include "vmm/lib/sandbox.h"

static void ksm_open_files(struct mm_manager *m);

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
	ksm_open_files(m);
	log_info("mm", "ksm: guest RAM is mergeable; KSM merges only while /sys/kernel/mm/ksm/run is 1");
	return 0;
}

static const char *const ksm_sys[MM_KSM_SYS_FILES] = {
	"run", "pages_shared", "pages_sharing", "pages_unshared", "pages_volatile",
	"full_scans", "pages_to_scan", "sleep_millisecs", "ksm_zero_pages", "general_profit",
};

/* The figures' files are opened now: queries come later, on a confined
 * main thread that may not open /proc or /sys. */
static void ksm_open_files(struct mm_manager *m)
{
	char path[128];

	m->ksm_self_fd = open("/proc/self/ksm_stat", O_RDONLY | O_CLOEXEC);
	m->ksm_self_is_stat = m->ksm_self_fd >= 0;
	if (m->ksm_self_fd < 0)
		m->ksm_self_fd = open("/proc/self/ksm_merging_pages", O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < MM_KSM_SYS_FILES; i++) {
		snprintf(path, sizeof(path), "/sys/kernel/mm/ksm/%s", ksm_sys[i]);
		m->ksm_sys_fd[i] = open(path, O_RDONLY | O_CLOEXEC);
	}
}

void mm_ksm_close(struct mm_manager *m)
{
	if (m->ksm_self_fd > 0)
		close(m->ksm_self_fd);
	m->ksm_self_fd = -1;
	for (int i = 0; i < MM_KSM_SYS_FILES; i++) {
		if (m->ksm_sys_fd[i] > 0)
			close(m->ksm_sys_fd[i]);
		m->ksm_sys_fd[i] = -1;
	}
}

static int ksm_read_u64(int fd, uint64_t *v)
{
	FILE *f;
	unsigned long long x;
	int ok;

	if (fd <= 0)
		return -ENOENT;
	f = sandbox_fopen_early(fd, NULL);
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
	char line[256];
	FILE *f;
	uint64_t v;

	/* Per process: ksm_rmap_items, ksm_zero_pages, ksm_merging_pages, ksm_process_profit. */
	f = m->ksm_self_is_stat ? sandbox_fopen_early(m->ksm_self_fd, NULL) : NULL;
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
	} else if (!m->ksm_self_is_stat && !ksm_read_u64(m->ksm_self_fd, &v)) {
		json_object_set_new(obj, "ksm-merging-pages", json_integer((json_int_t)v));
	}
	for (int i = 0; i < MM_KSM_SYS_FILES; i++) {
		if (ksm_read_u64(m->ksm_sys_fd[i], &v))
			continue;
		char key[64];
		snprintf(key, sizeof(key), "sys-%s", ksm_sys[i]);
		for (char *p = key; *p; p++)
			if (*p == '_')
				*p = '-';
		json_object_set_new(obj, key, json_integer((json_int_t)v));
	}
}
