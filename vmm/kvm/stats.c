/*
 * stats: KVM binary statistics (KVM_GET_STATS_FD) of a VM or vCPU.
 * The descriptors are read once at open; values are re-read with pread on
 * every query, so a kvm_stats handle always reports current figures.
 *
 * Histograms (linear and logarithmic) are reported as the sum of their
 * buckets, i.e. the number of events recorded; other arrays report their
 * first element.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/kvm/stats.h"

struct kvm_stat_entry {
	char *name;
	uint32_t flags;
	uint32_t offset;      /* bytes from the start of the data block */
	uint16_t size;        /* number of u64 elements */
};

struct kvm_stats {
	int fd;
	uint32_t data_offset;
	uint32_t data_size;   /* bytes spanned by all entries' data */
	int nr;
	struct kvm_stat_entry *e;
	char *names;          /* storage for every entry's name */
};

static bool kvm_stat_is_hist(uint32_t flags)
{
	uint32_t type = flags & KVM_STATS_TYPE_MASK;

	return type == KVM_STATS_TYPE_LINEAR_HIST || type == KVM_STATS_TYPE_LOG_HIST;
}

static int kvm_pread_all(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

void kvm_stats_close(struct kvm_stats *st)
{
	if (!st)
		return;
	if (st->fd >= 0)
		close(st->fd);
	free(st->e);
	free(st->names);
	free(st);
}

struct kvm_stats *kvm_stats_open(int vm_or_vcpu_fd)
{
	struct kvm_stats_header hdr;
	struct kvm_stats *st;
	uint8_t *descs = NULL;
	size_t dsz;
	int ret, fd;

	fd = ioctl(vm_or_vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (fd < 0)
		return NULL;
	st = calloc(1, sizeof(*st));
	if (!st) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	st->fd = fd;

	ret = kvm_pread_all(fd, &hdr, sizeof(hdr), 0);
	if (ret)
		goto fail;
	/* Sanity limits: the kernel exports about a hundred short names. */
	if (hdr.name_size == 0 || hdr.name_size > 4096 || hdr.num_desc > 65536) {
		ret = -EPROTO;
		goto fail;
	}
	/* Each descriptor is followed by its name_size-byte name. */
	dsz = sizeof(struct kvm_stats_desc) + hdr.name_size;
	descs = malloc(dsz * hdr.num_desc + 1);
	st->e = calloc(hdr.num_desc + 1, sizeof(*st->e));
	st->names = malloc((size_t)hdr.num_desc * hdr.name_size + 1);
	if (!descs || !st->e || !st->names) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = kvm_pread_all(fd, descs, dsz * hdr.num_desc, hdr.desc_offset);
	if (ret)
		goto fail;

	st->data_offset = hdr.data_offset;
	for (uint32_t i = 0; i < hdr.num_desc; i++) {
		const struct kvm_stats_desc *d = (const void *)(descs + i * dsz);
		struct kvm_stat_entry *e = &st->e[st->nr];
		uint64_t end = (uint64_t)d->offset + (uint64_t)d->size * sizeof(uint64_t);

		if (d->size == 0 || end > (1u << 24))
			continue;  /* nothing to read, or nonsense: ignore the entry */
		e->name = st->names + (size_t)st->nr * hdr.name_size;
		memcpy(e->name, d->name, hdr.name_size);
		e->name[hdr.name_size - 1] = '\0';
		e->flags = d->flags;
		e->offset = d->offset;
		e->size = d->size;
		if (end > st->data_size)
			st->data_size = (uint32_t)end;
		st->nr++;
	}
	free(descs);
	return st;

fail:
	free(descs);
	kvm_stats_close(st);
	errno = -ret;
	return NULL;
}

/* Value of one entry from its raw elements: the first, or the sum for histograms. */
static uint64_t kvm_stat_value(const struct kvm_stat_entry *e, const uint8_t *raw)
{
	uint16_t n = kvm_stat_is_hist(e->flags) ? e->size : 1;
	uint64_t sum = 0, v;

	for (uint16_t i = 0; i < n; i++) {
		memcpy(&v, raw + (size_t)i * sizeof(v), sizeof(v));
		sum += v;
	}
	return sum;
}

int kvm_stats_get(struct kvm_stats *st, const char *name, uint64_t *val)
{
	for (int i = 0; i < st->nr; i++) {
		const struct kvm_stat_entry *e = &st->e[i];

		if (strcmp(e->name, name) != 0)
			continue;
		if (!kvm_stat_is_hist(e->flags))
			return kvm_pread_all(st->fd, val, sizeof(*val),
					     (off_t)st->data_offset + e->offset);

		size_t len = (size_t)e->size * sizeof(uint64_t);
		uint8_t *raw = malloc(len);
		if (!raw)
			return -ENOMEM;
		int ret = kvm_pread_all(st->fd, raw, len, (off_t)st->data_offset + e->offset);
		if (!ret)
			*val = kvm_stat_value(e, raw);
		free(raw);
		return ret;
	}
	return -ENOENT;
}

int kvm_stats_foreach(struct kvm_stats *st,
		      void (*cb)(const char *name, uint64_t val, void *opaque), void *opaque)
{
	uint8_t *data;
	int ret;

	if (st->nr == 0)
		return 0;
	/* One read of the whole data block: cheap, and one snapshot for all entries. */
	data = malloc(st->data_size);
	if (!data)
		return -ENOMEM;
	ret = kvm_pread_all(st->fd, data, st->data_size, st->data_offset);
	if (!ret) {
		for (int i = 0; i < st->nr; i++)
			cb(st->e[i].name, kvm_stat_value(&st->e[i], data + st->e[i].offset), opaque);
	}
	free(data);
	return ret;
}
