/*
 * ksm: applies the MOM policy's KSM decisions to the host's ksmd when
 * minivmm-memd runs with --ksm on, as MOM's KSM controller does: writes
 * /sys/kernel/mm/ksm/run, pages_to_scan and sleep_millisecs. ksmd is the
 * host's, not ours: the values found at start are put back when the daemon
 * stops (also after SIGTERM), and a value we cannot write is said once.
 * KSM merges only memory marked MADV_MERGEABLE (QEMU's default; minivmm
 * with --mm ksm=on).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "balloon/memd/memd.h"

static const char *const ksm_file[MEMD_KSM_NFILES] = { "run", "pages_to_scan", "sleep_millisecs" };

static int ksm_read(const struct memd_ksm *k, int f, uint64_t *v)
{
	char buf[64];
	ssize_t n = pread(k->fd[f], buf, sizeof(buf) - 1, 0);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return memd_parse_cgroup_value(buf, v);
}

static int ksm_write(const struct memd_ksm *k, int f, uint64_t v, char *err, size_t errlen)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);

	if (pwrite(k->fd[f], buf, (size_t)n, 0) != n) {
		int e = errno;
		snprintf(err, errlen, "write %s to %s/%s: %s", buf, k->dir, ksm_file[f], strerror(e));
		return -e;
	}
	return 0;
}

/*
 * The files stay open from here on: a daemon confined to the system calls
 * it needs reads and writes them with pread/pwrite, never opening /sys.
 */
int memd_ksm_open(struct memd_ksm *k, const char *dir, char *err, size_t errlen)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->dir, sizeof(k->dir), "%s", dir);
	for (int f = 0; f < MEMD_KSM_NFILES; f++)
		k->fd[f] = -1;
	for (int f = 0; f < MEMD_KSM_NFILES; f++) {
		char path[320];
		int r;

		snprintf(path, sizeof(path), "%s/%s", dir, ksm_file[f]);
		k->fd[f] = open(path, O_RDWR | O_CLOEXEC);
		r = k->fd[f] < 0 ? -errno : ksm_read(k, f, &k->saved[f]);
		if (r < 0) {
			snprintf(err, errlen, "--ksm on: cannot open %s for reading and writing: %s (is the host "
				 "kernel built with CONFIG_KSM, and is this root?)", path, strerror(-r));
			memd_ksm_close(k);
			return r;
		}
		k->cur[f] = k->saved[f];
	}
	k->open = true;
	return 0;
}

void memd_ksm_close(struct memd_ksm *k)
{
	for (int f = 0; f < MEMD_KSM_NFILES; f++) {
		if (k->fd[f] >= 0)
			close(k->fd[f]);
		k->fd[f] = -1;
	}
	k->open = false;
}

uint64_t memd_ksm_pages_to_scan(const struct memd_ksm *k)
{
	uint64_t v;

	return k->open && ksm_read(k, 1, &v) == 0 ? v : MEMD_NONE;
}

int memd_ksm_apply(struct memd_ksm *k, const struct memd_ksm_decision *dec, bool *changed, char *err,
		   size_t errlen)
{
	uint64_t want[MEMD_KSM_NFILES] = { (uint64_t)dec->run, dec->pages_to_scan, dec->sleep_ms };
	int nf = dec->run ? MEMD_KSM_NFILES : 1;   /* MOM sets the rates only when ksmd runs */

	*changed = false;
	/* rates first, so ksmd never starts at the old ones */
	for (int f = nf - 1; f >= 0; f--) {
		int r;

		if (want[f] == k->cur[f])
			continue;
		r = ksm_write(k, f, want[f], err, errlen);
		if (r < 0)
			return r;
		k->cur[f] = want[f];
		*changed = true;
	}
	return 0;
}

void memd_ksm_restore(struct memd_ksm *k)
{
	char err[400];

	if (!k->open)
		return;
	for (int f = MEMD_KSM_NFILES - 1; f >= 0; f--)
		if (k->cur[f] != k->saved[f] && ksm_write(k, f, k->saved[f], err, sizeof(err)) < 0)
			fprintf(stderr, "minivmm-memd: KSM settings not restored: %s\n", err);
	memd_ksm_close(k);
}
