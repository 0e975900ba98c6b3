/*
 * uffd: the userfaultfd fault service. Chunks holding evicted pages are
 * registered for MISSING faults (and WP, which the scanner uses to freeze a
 * page while it copies it out); one thread reads fault events, which come
 * from vCPUs (through KVM) and from VMM threads alike, and restores pages:
 * zero pages with UFFDIO_ZEROPAGE, stored pages by decompressing, verifying
 * the checksum and UFFDIO_COPY. A hugetlb huge page is rebuilt whole from
 * its pieces, since hugetlbfs only maps whole huge pages.
 *
 * Ballooned or reported pages inside a registered chunk are zero-filled on
 * touch and counted (outside registered chunks the kernel zero-fills them
 * and the scanner counts them through mincore).
 *
 * Fault-around: decompressing a 4 KiB page costs about as much as the
 * userfaultfd round trip itself, so a thread reading evicted memory in
 * ascending order would pay both per page. When a compressed fault lands on
 * the page right after the previous fault's last page, the run of stored
 * pages that follows it in the same chunk (a window doubling up to
 * UFFD_AROUND_MAX pages, as swap readahead) is decompressed, verified and
 * installed with the faulting page in one UFFDIO_COPY. It counts as one
 * refault of several pages; only the faulting page is reported to the
 * policy as referenced. Random access never triggers it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mm/manager_priv.h"
#include "vmm/lib/sandbox.h"

/* Throttling over a resident target: slack before it starts, MiB per ms, longest wait. */
#define UFFD_THROTTLE_SLACK  (16ull << 20)
#define UFFD_THROTTLE_STEP   (4ull << 20)
#define UFFD_THROTTLE_MAX_MS 100

/* Fault-around window at most, in pages (swap readahead's default too). */
#define UFFD_AROUND_MAX 8u

/* A used restore buffer is released after this long without faults. */
#define UFFD_BUF_IDLE_MS 1000

/* The fault thread's view of the access pattern (fault-around). */
struct uffd_around {
	uint64_t expect;        /* page after the last restored run; UINT64_MAX: none */
	uint32_t window;        /* pages the next sequential fault restores */
};

/* Size of the restore buffer: a huge page for hugetlb, the fault-around window otherwise. */
static size_t uffd_buf_len(const struct mm_manager *m)
{
	return m->hugetlb ? m->ps.chunk_pages << MM_PAGE_SHIFT : UFFD_AROUND_MAX * MM_PAGE_SIZE;
}

static uint64_t uffd_wanted_features(enum mm_backing b)
{
	switch (b) {
	case MM_BACKING_MEMFD:
		return UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	case MM_BACKING_HUGETLB:
		return UFFD_FEATURE_MISSING_HUGETLBFS | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	default:
		return 0;
	}
}

int mm_uffd_open(struct mm_manager *m, char *err, size_t errlen)
{
	struct uffdio_api api = { .api = UFFD_API };
	uint64_t want = uffd_wanted_features(m->gm->backing);
	int fd;

	/* The API handshake happens once per descriptor: probe, then ask. */
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "memory manager: userfaultfd: %s (reclaim needs it: run as root or "
			 "set vm.unprivileged_userfaultfd=1, or start without --mm)", strerror(e));
		return -e;
	}
	if (ioctl(fd, UFFDIO_API, &api) < 0 || (api.features & want) != want) {
		snprintf(err, errlen, "memory manager: this kernel's userfaultfd cannot serve %s guest RAM "
			 "(features 0x%llx, need 0x%llx): use --mem-backing anon, or start without --mm",
			 mm_backing_name(m->gm->backing), (unsigned long long)api.features,
			 (unsigned long long)want);
		close(fd);
		return -EOPNOTSUPP;
	}
	close(fd);
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "memory manager: userfaultfd: %s", strerror(errno));
		return -errno;
	}
	api = (struct uffdio_api){ .api = UFFD_API, .features = want };
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int e = errno;
		snprintf(err, errlen, "memory manager: UFFDIO_API: %s", strerror(e));
		close(fd);
		return -e;
	}
	m->uffd = fd;
	m->uffd_features = api.features;
	return 0;
}

int mm_uffd_register(struct mm_manager *m, uint64_t chunk)
{
	struct mm_chunk *ch = &m->ps.chunks[chunk];
	struct uffdio_register reg = {
		.range = { .start = (uint64_t)(uintptr_t)mm_idx_hva(m, chunk * m->ps.chunk_pages),
			   .len = mm_chunk_npages(m, chunk) << MM_PAGE_SHIFT },
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};

	if (ch->registered)
		return 0;
	if (atomic_load(&m->nr_registered) >= m->o.uffd_chunks) {
		atomic_fetch_add(&m->reg_cap_hits, 1);
		return -ENOSPC;
	}
	if (ioctl(m->uffd, UFFDIO_REGISTER, &reg) < 0) {
		int e = errno;
		log_err("mm", "UFFDIO_REGISTER of chunk %llu failed: %s", (unsigned long long)chunk, strerror(e));
		return -e;
	}
	if (!(reg.ioctls & (1ull << _UFFDIO_COPY)) || !(reg.ioctls & (1ull << _UFFDIO_WRITEPROTECT))) {
		struct uffdio_range r = reg.range;
		ioctl(m->uffd, UFFDIO_UNREGISTER, &r);
		log_err("mm", "userfaultfd cannot copy into or write-protect %s guest RAM",
			mm_backing_name(m->gm->backing));
		return -EOPNOTSUPP;
	}
	ch->registered = true;
	atomic_fetch_add(&m->nr_registered, 1);
	atomic_fetch_add(&m->registrations, 1);
	return 0;
}

int mm_uffd_unregister(struct mm_manager *m, uint64_t chunk)
{
	struct mm_chunk *ch = &m->ps.chunks[chunk];
	struct uffdio_range r = {
		.start = (uint64_t)(uintptr_t)mm_idx_hva(m, chunk * m->ps.chunk_pages),
		.len = mm_chunk_npages(m, chunk) << MM_PAGE_SHIFT,
	};

	if (!ch->registered)
		return 0;
	if (ioctl(m->uffd, UFFDIO_UNREGISTER, &r) < 0)
		return -errno;
	ch->registered = false;
	atomic_fetch_sub(&m->nr_registered, 1);
	atomic_fetch_add(&m->unregistrations, 1);
	return 0;
}

int mm_uffd_wp(struct mm_manager *m, uint64_t idx, uint64_t n, bool wp)
{
	struct uffdio_writeprotect w = {
		.range = { .start = (uint64_t)(uintptr_t)mm_idx_hva(m, idx), .len = n << MM_PAGE_SHIFT },
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	for (int tries = 0; tries < 100; tries++) {
		if (ioctl(m->uffd, UFFDIO_WRITEPROTECT, &w) == 0)
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

static int uffd_wake(struct mm_manager *m, uint8_t *hva, uint64_t len)
{
	struct uffdio_range r = { .start = (uint64_t)(uintptr_t)hva, .len = len };

	return ioctl(m->uffd, UFFDIO_WAKE, &r) < 0 ? -errno : 0;
}

static int uffd_zeropage(struct mm_manager *m, uint8_t *hva, uint64_t len)
{
	struct uffdio_zeropage z = { .range = { .start = (uint64_t)(uintptr_t)hva, .len = len } };

	for (int tries = 0; tries < 100; tries++) {
		if (ioctl(m->uffd, UFFDIO_ZEROPAGE, &z) == 0)
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

/* Copies len bytes in; *done (optional) gets the bytes installed from the
 * start of the range, also when it fails part way. */
static int uffd_copy_n(struct mm_manager *m, uint8_t *hva, const uint8_t *src, uint64_t len, uint64_t *done)
{
	uint64_t off = 0;
	int ret = -EAGAIN;

	for (int tries = 0; tries < 100 && off < len; tries++) {
		struct uffdio_copy c = {
			.dst = (uint64_t)(uintptr_t)(hva + off), .src = (uint64_t)(uintptr_t)(src + off),
			.len = len - off,
		};
		if (ioctl(m->uffd, UFFDIO_COPY, &c) == 0) {
			off = len;
			ret = 0;
			break;
		}
		ret = -errno;
		if (c.copy > 0)
			off += (uint64_t)c.copy;
		if (ret != -EAGAIN)
			break;
	}
	if (done)
		*done = off;
	return off == len ? 0 : ret;
}

static int uffd_copy(struct mm_manager *m, uint8_t *hva, const void *src, uint64_t len)
{
	return uffd_copy_n(m, hva, src, len, NULL);
}

/*
 * A fault the kernel would not let us resolve (no host memory: for hugetlb,
 * an empty huge page pool) would otherwise be retried by the guest forever:
 * stop the VM and say why.
 */
static void uffd_cannot_resolve(struct mm_manager *m, uint64_t idx, int ret)
{
	char why[200];

	snprintf(why, sizeof(why), "%s%s", strerror(-ret),
		 ret == -ENOMEM && m->gm->backing == MM_BACKING_HUGETLB ?
		 " (the host's huge page pool has no free page: raise /proc/sys/vm/nr_hugepages)" : "");
	mm_fatal(m, idx, STOP_UNRESOLVABLE, why);
}

/*
 * Failed mode (mm_fatal): the VM is stopping and its vCPUs were kicked, so
 * the faulting thread is let go with zeros rather than left blocked: a VMM
 * thread (a device reading a ring) must finish and drop its locks so the VM
 * can be torn down. A hugetlb page needs a free huge page even for zeros;
 * when the pool is empty the thread stays blocked and teardown's bounded
 * wait ends the process instead.
 */
static void uffd_release_failed(struct mm_manager *m, uint64_t idx)
{
	uint64_t first = m->hugetlb ? idx / m->ps.chunk_pages * m->ps.chunk_pages : idx;
	uint64_t len = m->hugetlb ? mm_chunk_npages(m, idx / m->ps.chunk_pages) << MM_PAGE_SHIFT : MM_PAGE_SIZE;
	uint8_t *hva = mm_idx_hva(m, first);
	int ret;

	if (m->hugetlb) {
		m->restore_buf_used = true;
		memset(m->restore_buf, 0, len);
		ret = uffd_copy(m, hva, m->restore_buf, len);
		if (ret == -EEXIST && !mm_chunk_present(m, idx / m->ps.chunk_pages))
			return;   /* no page to be had (see uffd_restore_huge): stay blocked */
	} else {
		ret = uffd_zeropage(m, hva, len);
	}
	if (ret == -EEXIST)
		uffd_wake(m, hva, len);
}

static bool uffd_is_stored(enum mm_page_state st)
{
	return st == MM_PAGE_COMPRESSED || st == MM_PAGE_SHARED;
}

/*
 * Restores the stored page idx and, on a sequential fault, the stored pages
 * after it in its chunk, with one UFFDIO_COPY. Chunk lock held. Returns the
 * pages installed from idx on (0: idx itself was not), -1 when the VM was
 * stopped (a page failed its checksum); *ret gets the copy's result.
 */
static int64_t uffd_restore_run(struct mm_manager *m, uint64_t idx, struct uffd_around *ra, int *ret)
{
	uint64_t end = (idx / m->ps.chunk_pages) * m->ps.chunk_pages + mm_chunk_npages(m, idx / m->ps.chunk_pages);
	uint64_t n = 1, want, done = 0;
	uint32_t handles[UFFD_AROUND_MAX];

	ra->window = idx == ra->expect ? (ra->window * 2 > UFFD_AROUND_MAX ? UFFD_AROUND_MAX : ra->window * 2) : 1;
	want = ra->window < end - idx ? ra->window : end - idx;
	handles[0] = ps_handle_of(ps_get(&m->ps, idx));
	for (; n < want; n++) {
		uint64_t e = ps_get(&m->ps, idx + n);
		if (!uffd_is_stored(ps_state_of(e)))
			break;
		handles[n] = ps_handle_of(e);
	}
	/* Every page is verified before any of it reaches the guest. One that
	 * fails ahead of the faulting page ends the run: it stops the VM when
	 * (if ever) it is touched itself, through its own fault. */
	for (uint64_t i = 0; i < n; i++) {
		int r = mm_store_get(m->store, handles[i], m->restore_buf + (i << MM_PAGE_SHIFT));
		if (r && i > 0) {
			n = i;
			break;
		}
		if (r) {
			mm_fatal(m, idx, STOP_CHECKSUM, r == -EBADMSG ? "checksum mismatch in the compressed store"
								       : strerror(-r));
			return -1;
		}
	}
	*ret = uffd_copy_n(m, mm_idx_hva(m, idx), m->restore_buf, n << MM_PAGE_SHIFT, &done);
	done >>= MM_PAGE_SHIFT;
	for (uint64_t i = 0; i < done; i++) {
		mm_store_release(m->store, handles[i]);
		ps_set_state(&m->ps, idx + i, MM_PAGE_RESIDENT, 0);
	}
	if (done) {
		m->pol.ops->refault(&m->pol, idx);
		atomic_fetch_add(&m->refaults, 1);
		atomic_fetch_add(&m->refaulted_pages, done);
		ra->expect = idx + done;
	}
	return (int64_t)done;
}

/* Restores one 4 KiB page of a 4 KiB backing (with fault-around for stored
 * pages). Chunk lock held. false: VM stopped. */
static bool uffd_restore_page(struct mm_manager *m, uint64_t idx, struct uffd_around *ra)
{
	uint64_t e = ps_get(&m->ps, idx);
	enum mm_page_state st = ps_state_of(e);
	uint8_t *hva = mm_idx_hva(m, idx);
	int ret;

	switch (st) {
	case MM_PAGE_ZERO:
		ret = uffd_zeropage(m, hva, MM_PAGE_SIZE);
		if (ret == 0 || ret == -EEXIST) {
			ps_set_state(&m->ps, idx, MM_PAGE_RESIDENT, 0);
			m->pol.ops->refault(&m->pol, idx);
			atomic_fetch_add(&m->refaults, 1);
			atomic_fetch_add(&m->refaulted_pages, 1);
		}
		break;
	case MM_PAGE_COMPRESSED:
	case MM_PAGE_SHARED: {
		int64_t done = uffd_restore_run(m, idx, ra, &ret);
		if (done < 0)
			return false;
		if (done == 0 && ret == -EEXIST) {
			/* Already mapped (the bytes were restored before): settle the state. */
			mm_store_release(m->store, ps_handle_of(e));
			ps_set_state(&m->ps, idx, MM_PAGE_RESIDENT, 0);
			m->pol.ops->refault(&m->pol, idx);
			atomic_fetch_add(&m->refaults, 1);
			atomic_fetch_add(&m->refaulted_pages, 1);
		} else if (done > 0) {
			ret = 0;
		}
		break;
	}
	case MM_PAGE_BALLOONED:
	case MM_PAGE_REPORTED:
		ret = uffd_zeropage(m, hva, MM_PAGE_SIZE);
		if (st == MM_PAGE_REPORTED) {
			/* The guest reused a reported page without telling: ordinary memory again. */
			ps_set_state(&m->ps, idx, MM_PAGE_UNTOUCHED, 0);
		} else if (!(ps_update(&m->ps, idx, PS_TOUCHED, PS_TOUCHED) & PS_TOUCHED)) {
			atomic_fetch_add(&m->balloon_touched, 1);
		}
		break;
	default:
		/* Never-touched memory in a registered chunk. */
		ret = uffd_zeropage(m, hva, MM_PAGE_SIZE);
		if (ret == 0)
			atomic_fetch_add(&m->zero_fills, 1);
		break;
	}
	if (ret == -EEXIST)
		uffd_wake(m, hva, MM_PAGE_SIZE);
	else if (ret && ret != -ENOENT)
		uffd_cannot_resolve(m, idx, ret);
	return true;
}

/* Rebuilds a whole huge page from its pieces. Chunk lock held. */
static bool uffd_restore_huge(struct mm_manager *m, uint64_t chunk)
{
	uint64_t first = chunk * m->ps.chunk_pages, n = mm_chunk_npages(m, chunk), restored = 0;
	uint8_t *buf = m->restore_buf;
	int ret;

	m->restore_buf_used = true;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t e = ps_get(&m->ps, first + i);
		enum mm_page_state st = ps_state_of(e);

		if (st == MM_PAGE_COMPRESSED || st == MM_PAGE_SHARED) {
			ret = mm_store_get(m->store, ps_handle_of(e), buf + (i << MM_PAGE_SHIFT));
			if (ret) {
				mm_fatal(m, first + i, STOP_CHECKSUM, ret == -EBADMSG ?
					 "checksum mismatch in the compressed store" : strerror(-ret));
				return false;
			}
		} else {
			memset(buf + (i << MM_PAGE_SHIFT), 0, MM_PAGE_SIZE);
		}
	}
	ret = uffd_copy(m, mm_idx_hva(m, first), buf, n << MM_PAGE_SHIFT);
	if (ret == 0) {
		for (uint64_t i = 0; i < n; i++) {
			uint64_t e = ps_get(&m->ps, first + i);
			enum mm_page_state st = ps_state_of(e);

			if (ps_is_evicted(st)) {
				if (st != MM_PAGE_ZERO)
					mm_store_release(m->store, ps_handle_of(e));
				ps_set_state(&m->ps, first + i, MM_PAGE_RESIDENT, 0);
				m->pol.ops->refault(&m->pol, first + i);
				restored++;
			} else if (st == MM_PAGE_REPORTED) {
				ps_set_state(&m->ps, first + i, MM_PAGE_UNTOUCHED, 0);
			}
		}
		if (restored) {
			atomic_fetch_add(&m->refaults, 1);
			atomic_fetch_add(&m->refaulted_pages, restored);
		} else {
			atomic_fetch_add(&m->zero_fills, 1);
		}
	} else if (ret == -EEXIST && mm_chunk_present(m, chunk)) {
		uffd_wake(m, mm_idx_hva(m, first), n << MM_PAGE_SHIFT);
	} else if (ret == -EEXIST) {
		/* Measured on Linux 6.18: with the pool empty the copy says EEXIST
		 * though nothing is mapped; waking the thread would only fault it
		 * again, forever. */
		uffd_cannot_resolve(m, first, -ENOMEM);
	} else if (ret != -ENOENT) {
		uffd_cannot_resolve(m, first, ret);
	}
	return true;
}

static void uffd_handle(struct mm_manager *m, const struct uffd_msg *msg, struct uffd_around *ra)
{
	uint64_t addr = msg->arg.pagefault.address, t0 = now_ns();
	uint8_t *base = m->gm->base;
	uint64_t idx, chunk;
	struct mm_chunk *ch;

	if (addr < (uint64_t)(uintptr_t)base || addr - (uint64_t)(uintptr_t)base >= m->gm->ram_size)
		return;
	idx = (addr - (uint64_t)(uintptr_t)base) >> MM_PAGE_SHIFT;
	chunk = idx / m->ps.chunk_pages;
	ch = &m->ps.chunks[chunk];

	pthread_mutex_lock(&ch->lock);
	if (msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
		/* A write hit a page the scanner froze; it has been released by the
		 * time we hold the lock, and the writer retries (and may fault in). */
		atomic_fetch_add(&m->wp_faults, 1);
		uffd_wake(m, mm_idx_hva(m, idx), MM_PAGE_SIZE);
		pthread_mutex_unlock(&ch->lock);
		return;
	}
	bool ok = !atomic_load(&m->failed) &&
		  (m->hugetlb ? uffd_restore_huge(m, chunk) : uffd_restore_page(m, idx, ra));
	if (atomic_load(&m->failed))
		uffd_release_failed(m, idx);
	pthread_mutex_unlock(&ch->lock);
	if (ok)
		mm_hist_add(&m->fault_hist, now_ns() - t0);
}

/* Gives the restore buffer's memory back (fault thread only). */
static void uffd_release_buf(struct mm_manager *m)
{
	if (!m->restore_buf_used)
		return;
	if (madvise(m->restore_buf, uffd_buf_len(m), MADV_DONTNEED) == 0)
		atomic_fetch_add(&m->restore_buf_releases, 1);
	m->restore_buf_used = false;
}

/*
 * Over its resident target, the VM is throttled as cgroup v2's memory.high
 * throttles a task: after each batch of faults the service waits 1 ms per
 * 4 MiB over (at most 100 ms) while the scanner, kicked, evicts toward the
 * target. A guest refaulting faster than reclaim evicts then slows down
 * instead of taking the host past its budget. Resident pages are counted
 * from the page-state table (pages touched but not yet seen by the scanner
 * are missed, so it errs toward not waiting).
 */
static void uffd_throttle(struct mm_manager *m)
{
	uint64_t target = atomic_load(&m->resident_target), res, over;
	struct timespec ts;

	if (!target || atomic_load(&m->failed))
		return;
	res = atomic_load(&m->ps.count[MM_PAGE_RESIDENT]) << MM_PAGE_SHIFT;
	if (res <= target + UFFD_THROTTLE_SLACK)
		return;
	over = res - target - UFFD_THROTTLE_SLACK;
	uint64_t ms = 1 + over / UFFD_THROTTLE_STEP;
	if (ms > UFFD_THROTTLE_MAX_MS)
		ms = UFFD_THROTTLE_MAX_MS;
	mm_scanner_kick(m);
	ts.tv_sec = 0;
	ts.tv_nsec = (long)ms * 1000000L;
	nanosleep(&ts, NULL);
	atomic_fetch_add(&m->throttle_ms, ms);
}

/*
 * The fault service's calls (strace of the mm tests, and the restore path
 * read from the code): wait and read on the userfaultfd and its stop
 * eventfd, resolve faults (COPY, ZEROPAGE, WAKE, write protection), give
 * the restore buffer back (madvise), its own CPU time (clock_gettime,
 * base), wait when throttled. A page that cannot be restored stops the VM through the ops
 * (their list, from the machine).
 */
static const struct sb_rule uffd_thread_rules[] = {
	SB_SYS(poll), SB_SYS(ppoll), SB_SYS(read),
	SB_IOCTL(UFFDIO_COPY), SB_IOCTL(UFFDIO_ZEROPAGE), SB_IOCTL(UFFDIO_WAKE),
	SB_IOCTL(UFFDIO_WRITEPROTECT), SB_IOCTL(UFFDIO_REGISTER), SB_IOCTL(UFFDIO_UNREGISTER),
	SB_SYS(fallocate), SB_SYS(mincore),
	SB_SYS(nanosleep), SB_SYS(clock_nanosleep),     /* the throttle's wait over a resident target */
};
static const struct sb_list uffd_thread_sandbox = SB_LIST("mm-fault", uffd_thread_rules);

static void *uffd_thread(void *arg)
{
	static const struct sb_list *const own[] = { &uffd_thread_sandbox, NULL };
	struct mm_manager *m = arg;
	struct uffd_msg msgs[16];
	struct uffd_around ra = { .expect = UINT64_MAX, .window = 1 };
	struct pollfd pfd[2] = {
		{ .fd = m->uffd, .events = POLLIN },
		{ .fd = m->uffd_stop, .events = POLLIN },
	};

	if (sandbox_enter2("mm-fault", own, m->ops.sandbox) < 0) {
		if (m->ops.stop)
			m->ops.stop(m->ops_opaque, STOP_INTERNAL);
		return NULL;
	}

	for (unsigned iter = 0;; iter++) {
		/* A huge restore buffer (up to 1 GiB) is given back after a quiet
		 * second rather than after each restore, which would fault it in
		 * again for every huge page of a burst. */
		int pr = poll(pfd, 2, m->restore_buf_used ? UFFD_BUF_IDLE_MS : -1);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			log_err("mm", "fault service: poll: %s", strerror(errno));
			break;
		}
		if (pr == 0) {
			uffd_release_buf(m);
			continue;
		}
		if (pfd[1].revents)
			break;
		ssize_t n = read(m->uffd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				/* Idle: a good moment to account CPU time (the call costs ~0.4 us). */
				atomic_store(&m->fault_cpu_ns, mm_thread_cpu_ns());
				continue;
			}
			log_err("mm", "fault service: read: %s", strerror(errno));
			break;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++)
			if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
				uffd_handle(m, &msgs[i], &ra);
		uffd_throttle(m);
		if (iter % 64 == 0)
			atomic_store(&m->fault_cpu_ns, mm_thread_cpu_ns());
	}
	return NULL;
}

int mm_uffd_start(struct mm_manager *m)
{
	size_t len = uffd_buf_len(m);
	int ret;

	if (m->uffd < 0)
		return -EBADF;
	m->restore_buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			      -1, 0);
	if (m->restore_buf == MAP_FAILED) {
		m->restore_buf = NULL;
		return -ENOMEM;
	}
	m->uffd_stop = eventfd(0, EFD_CLOEXEC);
	if (m->uffd_stop < 0)
		return -errno;
	ret = pthread_create(&m->fault_thread, NULL, uffd_thread, m);
	if (ret)
		return -ret;
	pthread_setname_np(m->fault_thread, "mm-fault");
	m->fault_running = true;
	return 0;
}

void mm_uffd_stop(struct mm_manager *m)
{
	if (m->fault_running) {
		uint64_t one = 1;
		if (write(m->uffd_stop, &one, sizeof(one)) < 0)
			log_err("mm", "cannot stop the fault service: %s", strerror(errno));
		pthread_join(m->fault_thread, NULL);
		m->fault_running = false;
	}
	if (m->uffd_stop >= 0)
		close(m->uffd_stop);
	m->uffd_stop = -1;
	/* Closing the descriptor unregisters every range. */
	if (m->uffd >= 0)
		close(m->uffd);
	m->uffd = -1;
	if (m->restore_buf)
		munmap(m->restore_buf, uffd_buf_len(m));
	m->restore_buf = NULL;
}
