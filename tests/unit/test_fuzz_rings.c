/*
 * Deterministic randomized robustness test of everything a guest can write
 * into virtio rings and registers. Part 1 feeds the split-virtqueue walker
 * (vmm/virtqueue.c) random bytes and structured-hostile ring contents over
 * real guest RAM (also RAM above the 3 GiB hole) and compares every pop
 * with an independent reference walk. Part 2 drives the balloon device
 * (balloon/balloon.c) through its virtio-mmio registers as a driver would,
 * with hostile buffers on every queue and random register writes, against
 * a model of the balloon and of guest memory contents.
 *
 * Fixed seeds and bounded iterations: a failure reproduces with the same
 * binary; the printed seed/iteration names the case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mm/manager.h"
#include "mm/mm.h"
#include "vmm/virtio/virtio.h"
#include "vmm/kvm/kvm.h"
#include "vmm/lib/log.h"
#include "balloon/balloon.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define PAGE 4096ULL
#define HIGH MINIVMM_HIGHMEM_BASE

/* ---- deterministic randomness (splitmix64) ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static bool pct(unsigned p)
{
	return below(100) < p;
}

static void fill_random(void *p, size_t len)
{
	uint8_t *b = p;
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)rnd();
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the RAM layout, computed independently of mm ---- */

static uint64_t ram_lo(const struct guest_mem *gm)
{
	return gm->ram_size < MINIVMM_LOWMEM_MAX ? gm->ram_size : MINIVMM_LOWMEM_MAX;
}

static uint64_t ram_hi(const struct guest_mem *gm)
{
	return gm->ram_size - ram_lo(gm);
}

/* [gpa, gpa+len) wholly inside one RAM region (below the hole, or above 4 GiB). */
static bool in_ram(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint64_t lo = ram_lo(gm), hi = ram_hi(gm);

	if (gpa < lo)
		return len <= lo - gpa;
	if (hi && gpa >= HIGH && gpa - HIGH < hi)
		return len <= hi - (gpa - HIGH);
	return false;
}

static void *hva(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	void *p = mm_gpa_to_hva(gm, gpa, len);
	assert_non_null(p);
	return p;
}

static int make_ram(struct guest_mem *gm, uint64_t ram)
{
	/* not preallocated: RAM above the hole costs nothing until touched */
	struct mm_config cfg = { .ram_size = ram, .backing = MM_BACKING_ANON };
	char err[256];

	if (mm_create(gm, &cfg, err, sizeof(err))) {
		print_error("mm_create: %s\n", err);
		return -1;
	}
	return 0;
}

/* ======================================================================
 * Part 1: the walker
 * ====================================================================== */

#define W_WIN (64 * KiB)       /* ring windows: the only ring memory the walker touches */

struct wfx {
	struct guest_mem gm;
	struct virtq vq;
	int fails;
	uint16_t last;             /* the model's last_avail */
	uint32_t split;            /* descriptors >= split are made writable (mostly) */
	unsigned good;             /* percentage of well-formed descriptors this iteration */
	uint64_t win[4];
	int nwin;
	uint64_t used_win;         /* window holding the used ring */
	struct vq_chain got, want;
	/* figures for the report line */
	unsigned long iters, pops, chains, bufs, violations, setups_refused, pushes;
};

static void w_fail_cb(void *opaque, struct virtq *vq)
{
	((struct wfx *)opaque)->fails++;
}

static int w_setup(void **state, uint64_t ram)
{
	struct wfx *f = calloc(1, sizeof(*f));

	if (!f || make_ram(&f->gm, ram)) {
		free(f);
		return -1;
	}
	uint64_t lo = ram_lo(&f->gm), hi = ram_hi(&f->gm);
	f->win[f->nwin++] = 0x10000;
	f->win[f->nwin++] = lo - W_WIN;                 /* rings ending at the last byte below the hole / RAM */
	if (hi >= 2 * W_WIN) {
		f->win[f->nwin++] = HIGH;                  /* the first bytes above the hole */
		f->win[f->nwin++] = HIGH + hi - W_WIN;     /* the last bytes of RAM */
	}
	*state = f;
	return 0;
}

static int w_setup_small(void **state) { return w_setup(state, 16 * MiB); }
static int w_setup_hole(void **state) { return w_setup(state, MINIVMM_LOWMEM_MAX + 16 * MiB); }

static int w_teardown(void **state)
{
	struct wfx *f = *state;
	mm_destroy(&f->gm);
	free(f);
	return 0;
}

static void w_queue(struct wfx *f, uint32_t num, uint64_t desc, uint64_t avail, uint64_t used)
{
	memset(&f->vq, 0, sizeof(f->vq));
	f->vq.name = "fuzz";
	f->vq.gm = &f->gm;
	f->vq.num_max = VQ_MAX_SIZE;
	f->vq.fail = w_fail_cb;
	f->vq.fail_opaque = f;
	vq_reset(&f->vq);
	f->vq.num = (uint16_t)num;
	f->vq.desc_gpa = desc;
	f->vq.avail_gpa = avail;
	f->vq.used_gpa = used;
}

/* A ring of size bytes (alignment align) somewhere in a window, often at its very end. */
static uint64_t w_place(struct wfx *f, uint64_t size, uint64_t align, uint64_t *window)
{
	uint64_t w = f->win[below((uint64_t)f->nwin)];
	uint64_t slots = (W_WIN - size) / align;
	if (window)
		*window = w;
	return w + (pct(25) ? slots : below(slots + 1)) * align;
}

static bool w_setup_ok(struct wfx *f, uint32_t num, uint64_t d, uint64_t a, uint64_t u)
{
	return num && num <= VQ_MAX_SIZE && !(num & (num - 1)) && !(d & 15) && !(a & 1) && !(u & 3) &&
	       in_ram(&f->gm, d, 16ull * num) && in_ram(&f->gm, a, 6ull + 2ull * num) &&
	       in_ram(&f->gm, u, 6ull + 8ull * num);
}

/* A hostile guest-physical address for a buffer of len bytes. */
static uint64_t w_addr(struct wfx *f, uint32_t len)
{
	uint64_t lo = ram_lo(&f->gm), hi = ram_hi(&f->gm);

	switch (below(hi ? 15 : 11)) {
	case 0: case 1: case 2: case 3: {
		/* a good one: anywhere in a region it fits in */
		bool high = hi && pct(50);
		uint64_t base = high ? HIGH : 0, size = high ? hi : lo;
		return len <= size ? base + below(size - len + 1) : base;
	}
	case 4:  return lo - len;                         /* ends exactly at the end of low RAM */
	case 5:  return lo - len + 1 + below(16);         /* one byte or a few too far */
	case 6:  return lo + below(0x2000);
	case 7:  return 0;
	case 8:  return UINT64_MAX - below(0x10000);      /* wraps */
	case 9:  return rnd();
	case 10: return MINIVMM_MMIO_BASE + below(0x10000);
	case 11: return HIGH - len + below(2);            /* in or into the hole */
	case 12: return HIGH + hi - len;                  /* ends exactly at the end of RAM */
	case 13: return HIGH + hi - len + 1 + below(8);
	default: return MINIVMM_LOWMEM_MAX - 8 + below(16);
	}
}

static uint32_t w_len(struct wfx *f)
{
	switch (below(12)) {
	case 0:  return 0;
	case 1:  return 1;
	case 2:  return UINT32_MAX;
	case 3:  return (uint32_t)ram_lo(&f->gm);         /* a whole region: two overflow 4 GiB */
	case 4:  return 4096;
	case 5:  return (uint32_t)rnd();
	default: return 1 + (uint32_t)below(0x10000);
	}
}

static void w_hostile_desc(struct wfx *f, uint16_t i)
{
	uint16_t num = f->vq.num;
	struct vring_desc *d = (struct vring_desc *)hva(&f->gm, f->vq.desc_gpa, 16ull * num) + i;
	uint32_t len = w_len(f);
	uint16_t flags = 0, next;

	if (pct(f->good)) {
		/* well formed, so chains get long and the hostile ones hide deep inside */
		len = 1 + (uint32_t)below(pct(10) ? 0x100000 : 0x1000);
		flags = (pct(70) ? VRING_DESC_F_NEXT : 0) | (i >= f->split ? VRING_DESC_F_WRITE : 0);
		next = pct(80) ? (uint16_t)((i + 1) % num) : (uint16_t)below(num);
		uint64_t hi = ram_hi(&f->gm);
		bool high = hi && pct(50);
		uint64_t base = high ? HIGH : 0, size = high ? hi : ram_lo(&f->gm);
		d->addr = htole64(base + below(size - len + 1));
		d->len = htole32(len);
		d->flags = htole16(flags);
		d->next = htole16(next);
		return;
	}
	if (pct(60))
		flags |= VRING_DESC_F_NEXT;
	if (pct(90) ? i >= f->split : pct(50))
		flags |= VRING_DESC_F_WRITE;
	if (pct(3))
		flags |= VRING_DESC_F_INDIRECT;
	if (pct(3))
		flags |= (uint16_t)(rnd() & 0xfff8);       /* undefined bits */
	switch (below(10)) {
	case 0: case 1: case 2: case 3: case 4: next = (uint16_t)((i + 1) % num); break;
	case 5: case 6: next = (uint16_t)below(num); break;
	case 7:  next = i; break;
	case 8:  next = pct(50) ? (uint16_t)(num + below(4)) : 0xffff; break;
	default: next = (uint16_t)below(i + 1u); break;  /* backwards: loops */
	}
	d->addr = htole64(w_addr(f, len));
	d->len = htole32(len);
	d->flags = htole16(flags);
	d->next = htole16(next);
}

static uint16_t w_head(struct wfx *f)
{
	uint16_t num = f->vq.num;
	switch (below(f->good > 50 ? 100 : 20)) {
	case 0:  return num;
	case 1:  return 0xffff;
	case 2:  return (uint16_t)rnd();
	default: return (uint16_t)below(num);
	}
}

/* Offers k more heads (k may overrun the ring on purpose). */
static void w_offer_more(struct wfx *f)
{
	uint16_t num = f->vq.num;
	uint16_t *av = hva(&f->gm, f->vq.avail_gpa, 6ull + 2ull * num);
	uint16_t idx = le16toh(av[1]), k;

	switch (below(f->good > 50 ? 40 : 10)) {
	case 0:  k = 0; break;
	case 1:  k = (uint16_t)(num + 1 + (pct(50) ? 0 : below(100))); break;   /* one too many */
	case 3:  k = num; break;                                                 /* a full ring */
	case 2:  k = (uint16_t)rnd(); break;
	default: k = (uint16_t)(1 + below(num)); break;
	}
	/* new entries start at the walker's position, as a driver's would */
	idx = f->last;
	for (uint16_t j = 0; j < k && j < num; j++)
		av[2 + (uint16_t)(idx + j) % num] = htole16(w_head(f));
	av[1] = htole16((uint16_t)(idx + k));
	for (unsigned j = below(4); j; j--)
		w_hostile_desc(f, (uint16_t)below(num));
}

static void w_fill_hostile(struct wfx *f)
{
	uint16_t num = f->vq.num;

	for (uint16_t i = 0; i < num; i++)
		w_hostile_desc(f, i);
	uint16_t *av = hva(&f->gm, f->vq.avail_gpa, 6ull + 2ull * num);
	av[0] = htole16(pct(50) ? 0 : (uint16_t)rnd());
	w_offer_more(f);
}

/* Random bytes everywhere, with a random amount of repair so the walker gets past the first checks. */
static void w_fill_random(struct wfx *f)
{
	uint16_t num = f->vq.num;
	struct vring_desc *d = hva(&f->gm, f->vq.desc_gpa, 16ull * num);
	uint16_t *av = hva(&f->gm, f->vq.avail_gpa, 6ull + 2ull * num);
	uint8_t *used = hva(&f->gm, f->vq.used_gpa, 6ull + 8ull * num);
	unsigned repair = (unsigned)below(5);

	fill_random(d, 16ull * num);
	fill_random(av, 6ull + 2ull * num);
	fill_random(used, 6ull + 8ull * num);
	if (repair >= 1)
		av[1] = htole16((uint16_t)(f->last + 1 + (pct(10) ? num : below(num))));
	for (uint16_t i = 0; repair >= 2 && i < num; i++)
		av[2 + i] = htole16((uint16_t)(le16toh(av[2 + i]) % num));
	for (uint16_t i = 0; repair >= 3 && i < num; i++) {
		d[i].next = htole16((uint16_t)(le16toh(d[i].next) % num));
		d[i].flags = htole16(le16toh(d[i].flags) & ~VRING_DESC_F_INDIRECT);
		if (pct(50))
			d[i].flags = htole16(le16toh(d[i].flags) & ~VRING_DESC_F_NEXT);
	}
	for (uint16_t i = 0; repair >= 4 && i < num; i++) {
		uint32_t len = le32toh(d[i].len) % 0x20000;
		d[i].len = htole32(len);
		d[i].addr = htole64(le64toh(d[i].addr) % (ram_lo(&f->gm) + 0x1000));
	}
}

/* The reference walk: what vq_pop must return for the ring as it is now. */
static int w_model(struct wfx *f, enum vq_dir dir, struct vq_chain *c)
{
	struct guest_mem *gm = &f->gm;
	uint16_t num = f->vq.num;
	const uint8_t *av = hva(gm, f->vq.avail_gpa, 6ull + 2ull * num);
	const uint8_t *dt = hva(gm, f->vq.desc_gpa, 16ull * num);
	uint16_t idx16, head;
	uint64_t total = 0;
	bool seen_w = false;

	memcpy(&idx16, av + 2, 2);
	uint16_t pending = (uint16_t)(le16toh(idx16) - f->last);
	if (!pending)
		return 0;
	if (pending > num)
		return -EIO;
	memcpy(&head, av + 4 + 2 * (f->last % num), 2);
	head = le16toh(head);
	if (head >= num)
		return -EIO;
	c->head = head;
	c->nr = 0;
	c->read_len = c->write_len = 0;
	for (uint16_t i = head;;) {
		struct vring_desc d;
		if (c->nr >= num)
			return -EIO;
		memcpy(&d, dt + 16 * i, 16);
		uint64_t addr = le64toh(d.addr);
		uint32_t len = le32toh(d.len);
		uint16_t flags = le16toh(d.flags), next = le16toh(d.next);
		bool w = flags & VRING_DESC_F_WRITE;
		if ((flags & VRING_DESC_F_INDIRECT) || !len || !in_ram(gm, addr, len))
			return -EIO;
		if ((dir == VQ_DIR_READ && w) || (dir == VQ_DIR_WRITE && !w) ||
		    (dir == VQ_DIR_ANY && !w && seen_w))
			return -EIO;
		total += len;
		if (total > UINT32_MAX)
			return -EIO;
		seen_w |= w;
		c->buf[c->nr++] = (struct vq_buf){ .gpa = addr, .len = len, .writable = w };
		if (w)
			c->write_len += len;
		else
			c->read_len += len;
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		if (next >= num)
			return -EIO;
		i = next;
	}
	return 1;
}

/* Everything a device relies on in a popped chain, checked from first principles. */
static void w_check_chain(struct wfx *f, enum vq_dir dir)
{
	const struct vq_chain *g = &f->got, *w = &f->want;
	uint64_t rl = 0, wl = 0;
	bool seen_w = false;

	assert_true(g->nr >= 1 && g->nr <= f->vq.num);
	assert_int_equal(g->head, w->head);
	assert_int_equal(g->nr, w->nr);
	for (unsigned i = 0; i < g->nr; i++) {
		const struct vq_buf *b = &g->buf[i];
		assert_true(b->len > 0);
		if (!in_ram(&f->gm, b->gpa, b->len))
			fail_msg("buffer %u [0x%llx, +0x%x) outside guest RAM", i,
				 (unsigned long long)b->gpa, b->len);
		assert_ptr_equal(b->hva, mm_gpa_to_hva(&f->gm, b->gpa, b->len));
		assert_int_equal(b->gpa, w->buf[i].gpa);
		assert_int_equal(b->len, w->buf[i].len);
		assert_int_equal(b->writable, w->buf[i].writable);
		if (dir == VQ_DIR_READ)
			assert_false(b->writable);
		if (dir == VQ_DIR_WRITE)
			assert_true(b->writable);
		if (dir == VQ_DIR_ANY && seen_w)
			assert_true(b->writable);
		seen_w |= b->writable;
		if (b->writable)
			wl += b->len;
		else
			rl += b->len;
	}
	assert_int_equal(g->read_len, rl);
	assert_int_equal(g->write_len, wl);
	assert_true(rl + wl <= UINT32_MAX);
	f->chains++;
	f->bufs += g->nr;
}

/* Bytes around the used ring that a push may touch, and those it may not. */
struct w_snap {
	uint64_t gpa, len;
	uint8_t bytes[W_WIN];
};
static struct w_snap snap;

static void w_snapshot(struct wfx *f)
{
	snap.gpa = f->used_win;
	snap.len = W_WIN;
	memcpy(snap.bytes, hva(&f->gm, snap.gpa, snap.len), snap.len);
}

/* Only [allow, allow+n) (relative to GPA) and the used index may have changed. */
static void w_snap_compare(struct wfx *f, uint64_t allow, uint64_t n)
{
	const uint8_t *now = hva(&f->gm, snap.gpa, snap.len);
	uint64_t idx_gpa = f->vq.used_gpa + 2;

	for (uint64_t i = 0; i < snap.len; i++) {
		uint64_t g = snap.gpa + i;
		if ((g >= allow && g < allow + n) || (g >= idx_gpa && g < idx_gpa + 2))
			continue;
		if (now[i] != snap.bytes[i])
			fail_msg("vq_push changed guest byte 0x%llx outside its used element",
				 (unsigned long long)g);
	}
}

static void w_push(struct wfx *f, uint16_t head)
{
	uint16_t num = f->vq.num, before = f->vq.used_idx;
	uint32_t written = (uint32_t)rnd();
	uint64_t elem = f->vq.used_gpa + 4 + 8ull * (before & (num - 1));

	w_snapshot(f);
	vq_push(&f->vq, head, written);
	w_snap_compare(f, elem, 8);
	struct vring_used_elem e;
	uint16_t idx;
	memcpy(&e, hva(&f->gm, elem, 8), 8);
	memcpy(&idx, hva(&f->gm, f->vq.used_gpa + 2, 2), 2);
	assert_int_equal(le32toh(e.id), head);
	assert_int_equal(le32toh(e.len), written);
	assert_int_equal(le16toh(idx), (uint16_t)(before + 1));
	f->pushes++;
}

/* After a violation: nothing is walked or pushed until the queue is set up again. */
static void w_check_stays_broken(struct wfx *f)
{
	uint16_t num = f->vq.num;
	int fails = f->fails;
	struct vring_desc *d = hva(&f->gm, f->vq.desc_gpa, 16ull * num);
	uint16_t *av = hva(&f->gm, f->vq.avail_gpa, 6ull + 2ull * num);

	assert_true(f->vq.broken);
	/* a perfectly good chain now: still refused, no second failure */
	d[0] = (struct vring_desc){ .addr = htole64(0x10000), .len = htole32(8) };
	av[2 + f->vq.last_avail % num] = 0;
	av[1] = htole16((uint16_t)(f->vq.last_avail + 1));
	for (int dir = VQ_DIR_ANY; dir <= VQ_DIR_WRITE; dir++)
		assert_int_equal(vq_pop(&f->vq, &f->got, (enum vq_dir)dir), -EIO);
	w_snapshot(f);
	vq_push(&f->vq, 0, 1);
	w_snap_compare(f, 0, 0);
	assert_int_equal(f->fails, fails);

	/* reset: the same queue at a clean layout works again */
	uint64_t w = f->win[0];
	w_queue(f, num, w, w + 0x1000, w + 0x2000);
	assert_int_equal(vq_setup(&f->vq), 0);
	d = hva(&f->gm, w, 16ull * num);
	av = hva(&f->gm, w + 0x1000, 6ull + 2ull * num);
	d[0] = (struct vring_desc){ .addr = htole64(0x10000), .len = htole32(8) };
	av[2] = 0;
	av[1] = htole16(1);
	assert_int_equal(vq_pop(&f->vq, &f->got, VQ_DIR_READ), 1);
	assert_int_equal(f->got.nr, 1);
	assert_int_equal(f->fails, fails);
}

/* One queue: set up (sometimes badly), filled, walked until empty or broken. */
static void w_iteration(struct wfx *f, bool hostile)
{
	uint32_t num = 1u << below(9);    /* 1 .. 256 */
	uint64_t dw, d = w_place(f, 16ull * num, 16, &dw);
	uint64_t a = w_place(f, 6ull + 2ull * num, 2, NULL);
	uint64_t u = w_place(f, 6ull + 8ull * num, 4, &f->used_win);
	int fails = f->fails;

	f->iters++;
	if (pct(10)) {
		/* a layout the guest got wrong: refused at setup, never walked */
		uint32_t bad_num = num;
		uint64_t bd = d, ba = a, bu = u;
		switch (below(8)) {
		case 0: bad_num = (uint32_t)below(2) * 512 + (pct(50) ? 3 : 0); break;
		case 1: bd += 8; break;
		case 2: ba += 1; break;
		case 3: bu += 2; break;
		case 4: bd = ram_lo(&f->gm) - 16ull * num + 16; break;
		case 5: ba = MINIVMM_MMIO_BASE; break;
		case 6: bu = 0xfffffffffffffff0ull; break;
		default: bd = ram_lo(&f->gm) + 16 * below(0x100); break;
		}
		w_queue(f, bad_num, bd, ba, bu);
		bool ok = w_setup_ok(f, bad_num & 0xffff, bd, ba, bu);
		int r = vq_setup(&f->vq);
		if (ok) {
			assert_int_equal(r, 0);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_false(f->vq.ready);
			assert_int_equal(f->fails, fails + 1);
			assert_int_equal(vq_pop(&f->vq, &f->got, VQ_DIR_ANY), -EIO);
			assert_int_equal(f->fails, fails + 1);
			f->setups_refused++;
			fails = f->fails;
		}
	}
	w_queue(f, num, d, a, u);
	assert_true(w_setup_ok(f, num, d, a, u));
	assert_int_equal(vq_setup(&f->vq), 0);
	assert_true(f->vq.ready);

	/* a queue that has been running a while: indices anywhere, near the wrap too */
	switch (below(3)) {
	case 0:  f->last = 0; break;
	case 1:  f->last = (uint16_t)(0xffff - below(2 * num)); break;
	default: f->last = (uint16_t)rnd(); break;
	}
	f->vq.last_avail = f->last;
	f->vq.used_idx = (uint16_t)rnd();
	switch (below(3)) {
	case 0:  f->split = num; break;   /* all readable */
	case 1:  f->split = 0; break;     /* all writable */
	default: f->split = (uint32_t)below(num + 1); break;
	}
	enum vq_dir pref = f->split == num ? VQ_DIR_READ : f->split == 0 ? VQ_DIR_WRITE : VQ_DIR_ANY;

	static const unsigned goods[] = { 0, 50, 90, 97 };
	f->good = goods[below(4)];
	if (hostile)
		w_fill_hostile(f);
	else
		w_fill_random(f);

	for (unsigned k = 0; k < 3 * num + 4; k++) {
		enum vq_dir dir = pct(70) ? pref : (enum vq_dir)below(3);
		int before = f->fails;
		int want = w_model(f, dir, &f->want);
		int got = vq_pop(&f->vq, &f->got, dir);
		f->pops++;
		if (got != want)
			fail_msg("iteration %lu pop %u: vq_pop returned %d, the reference walk %d",
				 f->iters, k, got, want);
		if (got == 1) {
			w_check_chain(f, dir);
			f->last++;
			assert_int_equal(f->vq.last_avail, f->last);
			assert_int_equal(f->fails, before);
			if (pct(50))
				w_push(f, f->got.head);
			if (hostile && pct(30))
				w_offer_more(f);
		} else if (got == 0) {
			assert_int_equal(f->fails, before);
			assert_false(f->vq.broken);
			if (!pct(50))
				break;
			if (hostile)
				w_offer_more(f);
			else
				w_fill_random(f);
		} else {
			assert_int_equal(f->fails, before + 1);
			f->violations++;
			w_check_stays_broken(f);
			break;
		}
	}
}

static void w_run(void **state, uint64_t seed, unsigned iters, bool hostile, const char *what)
{
	struct wfx *f = *state;
	int level = vmm_log_level;
	double t0 = now_s();

	rng_state = seed;
	vmm_log_level = -1;   /* thousands of violations: one log line each otherwise */
	for (unsigned i = 0; i < iters; i++)
		w_iteration(f, hostile);
	vmm_log_level = level;
	print_message("%s: seed 0x%llx, %lu queues, %lu pops, %lu chains (%lu buffers), "
		      "%lu pushes, %lu violations, %lu bad setups refused, %.2fs\n",
		      what, (unsigned long long)seed, f->iters, f->pops, f->chains, f->bufs,
		      f->pushes, f->violations, f->setups_refused, now_s() - t0);
	/* the fuzzer must reach deep: real chains and real violations both */
	assert_true(f->chains > iters / 4);
	assert_true(f->violations > iters / 4);
}

static void test_walker_random_bytes(void **state)
{
	w_run(state, 0x5eed0001, 12000, false, "walker random bytes, 16 MiB");
}

static void test_walker_hostile(void **state)
{
	w_run(state, 0x5eed0002, 12000, true, "walker hostile, 16 MiB");
}

static void test_walker_random_bytes_hole(void **state)
{
	w_run(state, 0x5eed0003, 8000, false, "walker random bytes, 3 GiB + 16 MiB");
}

static void test_walker_hostile_hole(void **state)
{
	w_run(state, 0x5eed0004, 8000, true, "walker hostile, 3 GiB + 16 MiB");
}

/* ======================================================================
 * Part 2: the balloon device through its registers
 * ====================================================================== */

#define D_RING(q)     (0x10000ULL + (q) * 0x3000ULL)   /* desc, avail +0x1000, used +0x2000 */
#define D_GARBAGE     0x1c000ULL                      /* two pages of 0xa5: rings of garbage */
#define D_INFLATE_BUF 0x40000ULL                      /* 256 KiB of PFN lists */
#define D_DEFLATE_BUF 0x80000ULL                      /* 128 KiB */
#define D_STATS_BUF   0xa0000ULL                      /* 64 KiB */
#define D_SCRATCH     0xb0000ULL                      /* hostile chains' buffers */
#define D_CHECKED     0x100000ULL                     /* windows start above the ring area */
#define D_NQ 4
#define NO_Q 99u

enum dwin_kind {
	DW_PFN,                   /* inflate / deflate targets only */
	DW_CELLS,                 /* also reports, each between two sentinels and only partly
				   * covering them: whole-page rounding must leave them alone */
	DW_REPORT,                /* also reports of any size */
};

struct dwin {
	uint64_t gpa, size;
	enum dwin_kind kind;
};

struct dfx {
	struct vm *vm;
	struct virtio_mmio *t;
	struct balloon *b;
	struct guest_mem *gm;
	uint64_t lo_pages, ram_pages;
	struct dwin win[5];
	int nwin;

	/* the model */
	uint8_t *ballooned;       /* per dense page index */
	uint8_t *named;           /* some valid op named the page: contents may have changed */
	uint8_t *zero;            /* a processed op gave the page up: it must read zero */
	uint64_t nr_ballooned;
	uint32_t recent[512];     /* recently inflated PFNs, for deflates that hit */
	unsigned nrecent;
	int64_t stats[BALLOON_NR_STATS];
	bool stats_held;
	uint16_t stats_head;

	/* the driver */
	uint64_t features;
	unsigned nq, q_stats, q_report;
	uint16_t num[D_NQ], avail_idx[D_NQ], next_desc[D_NQ];
	uint32_t queue_sel;

	unsigned long ops, violations, recoveries, reg_accesses, inflated, deflated, reports,
		stats_bufs, refused_features, content_pages, zero_pages;
};

static uint32_t drd(struct dfx *d, uint64_t off)
{
	uint32_t v;
	virtio_mmio_access(d->t, off, (uint8_t *)&v, 4, false);
	return le32toh(v);
}

static void dwr(struct dfx *d, uint64_t off, uint32_t v)
{
	v = htole32(v);
	virtio_mmio_access(d->t, off, (uint8_t *)&v, 4, true);
}

/* Dense page index over RAM (low region first), or -1 outside RAM. */
static int64_t d_page(struct dfx *d, uint64_t gpa)
{
	if (!in_ram(d->gm, gpa, 1))
		return -1;
	return gpa < MINIVMM_LOWMEM_MAX ? (int64_t)(gpa / PAGE)
					 : (int64_t)(d->lo_pages + (gpa - HIGH) / PAGE);
}

/* Every fifth page of a window is a sentinel: no valid op ever names it. */
static bool d_sentinel(uint64_t gpa)
{
	return gpa / PAGE % 5 == 2;
}

static const struct dwin *d_window(struct dfx *d, uint64_t gpa)
{
	for (int i = 0; i < d->nwin; i++)
		if (gpa >= d->win[i].gpa && gpa - d->win[i].gpa < d->win[i].size)
			return &d->win[i];
	return NULL;
}

/* The pattern of a checked page: every word an impossible PFN and address,
 * so garbage rings pointed at it can never give anything up. */
static uint32_t d_pattern(uint64_t pfn, unsigned word)
{
	return 0xa5000000u | (uint32_t)((pfn * 1024 + word) & 0xffffff);
}

static void d_fill_pattern(struct dfx *d)
{
	for (int i = 0; i < d->nwin; i++)
		for (uint64_t g = d->win[i].gpa; g < d->win[i].gpa + d->win[i].size; g += PAGE) {
			uint32_t *p = hva(d->gm, g, PAGE);
			for (unsigned w = 0; w < PAGE / 4; w++)
				p[w] = d_pattern(g / PAGE, w);
		}
	memset(hva(d->gm, D_GARBAGE, 2 * PAGE), 0xa5, 2 * PAGE);
}

/* Pages never named keep their pattern; pages given up read zero. */
static void d_check_contents(struct dfx *d)
{
	for (int i = 0; i < d->nwin; i++)
		for (uint64_t g = d->win[i].gpa; g < d->win[i].gpa + d->win[i].size; g += PAGE) {
			int64_t pg = d_page(d, g);
			const uint32_t *p = hva(d->gm, g, PAGE);
			if (d->zero[pg]) {
				for (unsigned w = 0; w < PAGE / 4; w++)
					if (p[w])
						fail_msg("page 0x%llx was given up but reads 0x%x at word %u",
							 (unsigned long long)g, p[w], w);
				d->zero_pages++;
			} else if (!d->named[pg]) {
				for (unsigned w = 0; w < PAGE / 4; w++)
					if (p[w] != d_pattern(g / PAGE, w))
						fail_msg("page 0x%llx was never given up but lost its contents "
							 "(word %u is 0x%x)", (unsigned long long)g, w, p[w]);
				d->content_pages++;
			}
		}
}

static void d_check_count(struct dfx *d)
{
	assert_true(balloon_nr_ballooned(d->b) <= d->ram_pages);
}

/* The manager's page states agree with its count (and with the model when exact). */
static void d_check_bitmap(struct dfx *d, bool exact)
{
	uint64_t n = 0;
	for (uint64_t g = 0; g < ram_lo(d->gm); g += PAGE) {
		bool in = balloon_page_ballooned(d->b, g);
		n += in;
		if (exact && in != !!d->ballooned[d_page(d, g)])
			fail_msg("page 0x%llx: device says %sballooned", (unsigned long long)g, in ? "" : "not ");
	}
	for (uint64_t g = HIGH; g < HIGH + ram_hi(d->gm); g += PAGE) {
		bool in = balloon_page_ballooned(d->b, g);
		n += in;
		if (exact && in != !!d->ballooned[d_page(d, g)])
			fail_msg("page 0x%llx: device says %sballooned", (unsigned long long)g, in ? "" : "not ");
	}
	assert_int_equal(n, balloon_nr_ballooned(d->b));
	d_check_count(d);
}

static int d_setup(void **state, uint64_t ram)
{
	struct dfx *d = calloc(1, sizeof(*d));
	char err[256];

	if (!d)
		return -1;
	d->vm = calloc(1, sizeof(*d->vm));
	if (!d->vm)
		return -1;
	d->vm->vm_fd = -1;   /* no KVM: interrupts fail quietly, the rest is real */
	if (make_ram(&d->vm->mem, ram))
		return -1;
	/* the manager's page-state table is where ballooned pages are recorded */
	if (mmgr_create(&d->vm->mem, NULL, NULL, NULL, &d->vm->mgr, err, sizeof(err))) {
		print_error("mmgr_create: %s\n", err);
		return -1;
	}
	if (balloon_create(d->vm, "stats-period=0", err, sizeof(err))) {
		print_error("balloon_create: %s\n", err);
		return -1;
	}
	d->gm = &d->vm->mem;
	d->b = d->vm->balloon;
	d->t = d->b->vio;
	d->lo_pages = ram_lo(d->gm) / PAGE;
	d->ram_pages = ram / PAGE;
	d->ballooned = calloc(d->ram_pages, 1);
	d->named = calloc(d->ram_pages, 1);
	d->zero = calloc(d->ram_pages, 1);
	if (!d->ballooned || !d->named || !d->zero)
		return -1;
	if (ram_hi(d->gm)) {
		uint64_t lo = ram_lo(d->gm), hi = ram_hi(d->gm);
		d->win[d->nwin++] = (struct dwin){ D_CHECKED, 4 * MiB, DW_PFN };
		d->win[d->nwin++] = (struct dwin){ lo - 6 * MiB, 4 * MiB, DW_CELLS };
		d->win[d->nwin++] = (struct dwin){ lo - 2 * MiB, 2 * MiB, DW_REPORT };  /* up to the hole */
		d->win[d->nwin++] = (struct dwin){ HIGH, hi / 2, DW_CELLS };
		d->win[d->nwin++] = (struct dwin){ HIGH + hi / 2, hi / 2, DW_REPORT };  /* up to RAM end */
	} else {
		d->win[d->nwin++] = (struct dwin){ D_CHECKED, ram / 2 - D_CHECKED, DW_PFN };
		d->win[d->nwin++] = (struct dwin){ ram / 2, ram / 4, DW_CELLS };
		d->win[d->nwin++] = (struct dwin){ ram * 3 / 4, ram / 4, DW_REPORT };   /* up to RAM end */
	}
	for (int i = 0; i < BALLOON_NR_STATS; i++)
		d->stats[i] = d->b->stats[i];
	*state = d;
	return 0;
}

static int d_setup_small(void **state) { return d_setup(state, 64 * MiB); }
static int d_setup_hole(void **state) { return d_setup(state, MINIVMM_LOWMEM_MAX + 16 * MiB); }

static int d_teardown(void **state)
{
	struct dfx *d = *state;
	balloon_destroy(d->vm);
	mmgr_destroy(d->vm->mgr);
	io_bus_free(&d->vm->mmio);
	mm_destroy(&d->vm->mem);
	free(d->ballooned);
	free(d->named);
	free(d->zero);
	free(d->vm);
	free(d);
	return 0;
}

static bool d_needs_reset(struct dfx *d)
{
	return drd(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

static uint16_t d_used_idx(struct dfx *d, unsigned q)
{
	uint16_t v;
	memcpy(&v, hva(d->gm, D_RING(q) + 0x2000 + 2, 2), 2);
	return le16toh(v);
}

static uint32_t d_used_id(struct dfx *d, unsigned q, uint16_t i)
{
	uint32_t v;
	memcpy(&v, hva(d->gm, D_RING(q) + 0x2000 + 4 + 8ull * (i % d->num[q]), 4), 4);
	return le32toh(v);
}

/* Brings the device up as a driver does, with random features and queue sizes. */
static void d_probe(struct dfx *d)
{
	uint64_t offered, want;

	for (;;) {
		dwr(d, VIRTIO_MMIO_STATUS, 0);
		assert_int_equal(drd(d, VIRTIO_MMIO_STATUS), 0);
		dwr(d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
		dwr(d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
		dwr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
		offered = drd(d, VIRTIO_MMIO_DEVICE_FEATURES);
		dwr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
		offered |= (uint64_t)drd(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
		want = (offered & rnd()) | (1ull << VIRTIO_F_VERSION_1);
		bool bad = pct(8);
		if (bad) {
			if (pct(50))
				want &= ~(1ull << VIRTIO_F_VERSION_1);
			else
				want |= 1ull << (pct(50) ? VIRTIO_BALLOON_F_FREE_PAGE_HINT : 33 + below(30));
		}
		dwr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
		dwr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)want);
		dwr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
		dwr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(want >> 32));
		dwr(d, VIRTIO_MMIO_STATUS, 0xb);
		bool ok = drd(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK;
		assert_int_equal(ok, !bad);
		if (ok)
			break;
		d->refused_features++;
	}
	d->features = want;
	assert_int_equal(virtio_mmio_features(d->t), want);
	assert_int_equal(d->b->features, want);
	bool st = want & (1ull << VIRTIO_BALLOON_F_STATS_VQ), rep = want & (1ull << VIRTIO_BALLOON_F_REPORTING);
	d->nq = 2 + st + rep;
	d->q_stats = st ? 2 : NO_Q;
	d->q_report = rep ? 2u + st : NO_Q;

	memset(hva(d->gm, D_RING(0), D_NQ * 0x3000ull), 0, D_NQ * 0x3000ull);
	for (unsigned q = 0; q < d->nq; q++) {
		d->num[q] = (uint16_t)(1u << below(9));
		d->avail_idx[q] = d->next_desc[q] = 0;
		dwr(d, VIRTIO_MMIO_QUEUE_SEL, q);
		assert_int_equal(drd(d, VIRTIO_MMIO_QUEUE_NUM_MAX), VQ_MAX_SIZE);
		dwr(d, VIRTIO_MMIO_QUEUE_NUM, d->num[q]);
		dwr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)D_RING(q));
		dwr(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
		dwr(d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)(D_RING(q) + 0x1000));
		dwr(d, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
		dwr(d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)(D_RING(q) + 0x2000));
		dwr(d, VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
		dwr(d, VIRTIO_MMIO_QUEUE_READY, 1);
		assert_int_equal(drd(d, VIRTIO_MMIO_QUEUE_READY), 1);
	}
	dwr(d, VIRTIO_MMIO_QUEUE_SEL, d->nq);
	assert_int_equal(drd(d, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	dwr(d, VIRTIO_MMIO_STATUS, 0xf);
	assert_true(virtio_mmio_live(d->t));
	assert_false(d_needs_reset(d));
}

struct dbuf {
	uint64_t gpa;
	uint32_t len;
	bool w;
};

/* Writes a chain of k buffers and makes it available (no notify). Returns its head. */
static uint16_t d_post(struct dfx *d, unsigned q, const struct dbuf *bufs, unsigned k)
{
	uint16_t num = d->num[q];
	struct vring_desc *desc = hva(d->gm, D_RING(q), 16ull * num);
	uint16_t *av = hva(d->gm, D_RING(q) + 0x1000, 6ull + 2ull * num);
	uint16_t head = d->next_desc[q] % num;

	for (unsigned j = 0; j < k; j++) {
		uint16_t s = (uint16_t)((head + j) % num);
		desc[s].addr = htole64(bufs[j].gpa);
		desc[s].len = htole32(bufs[j].len);
		desc[s].flags = htole16((bufs[j].w ? VRING_DESC_F_WRITE : 0) |
					(j + 1 < k ? VRING_DESC_F_NEXT : 0));
		desc[s].next = htole16((uint16_t)((s + 1) % num));
	}
	d->next_desc[q] = (uint16_t)((head + k) % num);
	av[2 + d->avail_idx[q] % num] = htole16(head);
	d->avail_idx[q]++;
	__atomic_store_n(&av[1], htole16(d->avail_idx[q]), __ATOMIC_RELEASE);
	return head;
}

/* Posts, notifies, and checks a valid chain was consumed and returned. */
static void d_send_valid(struct dfx *d, unsigned q, const struct dbuf *bufs, unsigned k,
			 bool returned)
{
	uint16_t used = d_used_idx(d, q);
	uint16_t head = d_post(d, q, bufs, k);

	dwr(d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	if (d_needs_reset(d))
		fail_msg("a valid chain on queue %u (%u buffers, first [0x%llx, +0x%x)) failed the device",
			 q, k, (unsigned long long)bufs[0].gpa, bufs[0].len);
	if (returned) {
		assert_int_equal(d_used_idx(d, q), (uint16_t)(used + 1));
		assert_int_equal(d_used_id(d, q, used), head);
	} else {
		assert_int_equal(d_used_idx(d, q), used);
	}
}

/* A PFN a driver might send: mostly window pages (never a sentinel), some anywhere in RAM,
 * some outside RAM (end of RAM, the hole, the top). */
static uint32_t d_pick_pfn(struct dfx *d)
{
	uint64_t lo = ram_lo(d->gm), hi = ram_hi(d->gm);
	uint64_t g;

	switch (below(20)) {
	case 0:  return (uint32_t)(lo / PAGE);
	case 1:  return (uint32_t)(MINIVMM_MMIO_BASE / PAGE + below(16));
	case 2:  return (uint32_t)((hi ? HIGH + hi : HIGH) / PAGE + below(2));
	case 3:  return pct(50) ? UINT32_MAX : (uint32_t)rnd();
	case 4:  return (uint32_t)(HIGH / PAGE - 1 - below(2)) ;   /* in the hole unless low RAM reaches it */
	case 5: case 6:
		if (d->nrecent)
			return d->recent[below(d->nrecent)];
		/* fall through */
	case 7:
		/* anywhere in RAM above the ring area */
		g = D_CHECKED + below(lo - D_CHECKED) / PAGE * PAGE;
		if (hi && pct(50))
			g = HIGH + below(hi) / PAGE * PAGE;
		break;
	default: {
		const struct dwin *w = &d->win[below((uint64_t)d->nwin)];
		g = w->gpa + below(w->size / PAGE) * PAGE;
		break;
	}
	}
	if (d_window(d, g) && d_sentinel(g))
		g += PAGE;   /* the next one is not a sentinel, and still RAM (windows end clean) */
	if (g / PAGE < D_CHECKED / PAGE)
		g = D_CHECKED;
	return (uint32_t)(g / PAGE);
}

static void d_remember(struct dfx *d, uint32_t pfn)
{
	if (d->nrecent < sizeof(d->recent) / sizeof(d->recent[0]))
		d->recent[d->nrecent++] = pfn;
	else
		d->recent[below(d->nrecent)] = pfn;
}

static void d_op_pfns(struct dfx *d, bool inflate)
{
	unsigned q = inflate ? 0 : 1;
	uint64_t area = inflate ? D_INFLATE_BUF : D_DEFLATE_BUF;
	uint64_t area_len = inflate ? 256 * KiB : 128 * KiB;
	unsigned k = 1 + (unsigned)below(3);
	struct dbuf bufs[3];
	uint64_t cur = area;

	if (k > d->num[q])
		k = d->num[q];
	for (unsigned j = 0; j < k; j++) {
		uint64_t n;
		switch (below(10)) {
		case 0:  n = 1; break;
		case 1:  n = 1024 + below(4096); break;    /* more than one sorted batch */
		case 2:  n = 256; break;
		default: n = 1 + below(128); break;
		}
		uint32_t extra = pct(25) ? 1 + (uint32_t)below(3) : 0;   /* odd length: tail ignored */
		cur += below(4);                                         /* unaligned buffers too */
		if (cur + 4 * n + extra > area + area_len / 3 * (j + 1))
			n = (area + area_len / 3 * (j + 1) - cur - extra) / 4;
		uint8_t *p = hva(d->gm, cur, 4 * n + extra);
		for (uint64_t i = 0; i < n; i++) {
			uint32_t pfn = d_pick_pfn(d);
			if (i && pct(10)) {
				uint32_t prev;
				memcpy(&prev, p + 4 * below(i), 4);
				pfn = le32toh(prev);               /* a repeat within the buffer */
			}
			uint32_t le = htole32(pfn);
			memcpy(p + 4 * i, &le, 4);
		}
		fill_random(p + 4 * n, extra);
		if (!n && !extra) {
			extra = 1;
			fill_random(p, 1);
		}
		bufs[j] = (struct dbuf){ cur, (uint32_t)(4 * n + extra), false };
		cur = area + area_len / 3 * (j + 1);
	}
	/* the model first (the device may process as soon as it is notified) */
	uint64_t before = balloon_nr_ballooned(d->b);
	for (unsigned j = 0; j < k; j++) {
		const uint8_t *p = hva(d->gm, bufs[j].gpa, bufs[j].len);
		for (uint32_t i = 0; i < bufs[j].len / 4; i++) {
			uint32_t pfn;
			memcpy(&pfn, p + 4 * i, 4);
			pfn = le32toh(pfn);
			int64_t pg = d_page(d, (uint64_t)pfn * PAGE);
			if (pg < 0)
				continue;
			d->named[pg] = 1;
			if (inflate) {
				d->zero[pg] = 1;
				if (!d->ballooned[pg]) {
					d->ballooned[pg] = 1;
					d->nr_ballooned++;
				}
				d_remember(d, pfn);
			} else if (d->ballooned[pg]) {
				d->ballooned[pg] = 0;
				d->nr_ballooned--;
			}
		}
	}
	d_send_valid(d, q, bufs, k, true);
	assert_int_equal(balloon_nr_ballooned(d->b), d->nr_ballooned);
	if (inflate)
		d->inflated += balloon_nr_ballooned(d->b) - before;
	else
		d->deflated += before - balloon_nr_ballooned(d->b);
}

static void d_op_stats(struct dfx *d)
{
	unsigned q = d->q_stats;
	unsigned k = 1 + (unsigned)below(2);
	struct dbuf bufs[2];
	uint8_t all[2 * 400];
	size_t total = 0;
	uint64_t updates = d->b->stats_updates;

	if (k > d->num[q])
		k = d->num[q];
	for (unsigned j = 0; j < k; j++) {
		uint32_t len = 1 + (uint32_t)below(400);
		if (pct(30))
			len = sizeof(struct virtio_balloon_stat) * (1 + (uint32_t)below(16));
		uint8_t *p = hva(d->gm, D_STATS_BUF + 0x1000 * j, len);
		fill_random(p, len);
		/* mostly known tags, so values really land */
		for (uint32_t e = 0; e + 2 <= len; e += sizeof(struct virtio_balloon_stat))
			if (pct(70))
				p[e + 1] = 0, p[e] = (uint8_t)below(BALLOON_NR_STATS);
		memcpy(all + total, p, len);
		total += len;
		bufs[j] = (struct dbuf){ D_STATS_BUF + 0x1000 * j, len, false };
	}
	if (total > 640)
		total = 640;     /* the device reads at most 64 entries */
	for (size_t e = 0; e + sizeof(struct virtio_balloon_stat) <= total; e += sizeof(struct virtio_balloon_stat)) {
		uint16_t tag;
		uint64_t val;
		memcpy(&tag, all + e, 2);
		memcpy(&val, all + e + 2, 8);
		tag = le16toh(tag);
		val = le64toh(val);
		if (tag < BALLOON_NR_STATS)
			d->stats[tag] = val > INT64_MAX ? INT64_MAX : (int64_t)val;
	}
	bool held = d->stats_held;
	uint16_t old_head = d->stats_head, used = d_used_idx(d, q);
	uint16_t head = d_post(d, q, bufs, k);
	dwr(d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	assert_false(d_needs_reset(d));
	/* the device keeps the newest buffer and returns the one it held */
	assert_int_equal(d_used_idx(d, q), (uint16_t)(used + held));
	if (held)
		assert_int_equal(d_used_id(d, q, used), old_head);
	d->stats_held = true;
	d->stats_head = head;
	assert_int_equal(d->b->stats_updates, updates + 1);
	for (int i = 0; i < BALLOON_NR_STATS; i++)
		assert_int_equal(d->b->stats[i], d->stats[i]);
	d->stats_bufs++;
}

/* Whole pages inside [gpa, gpa+len): what a report gives up. */
static void d_model_report(struct dfx *d, uint64_t gpa, uint64_t len)
{
	uint64_t start = (gpa + PAGE - 1) / PAGE * PAGE, end = (gpa + len) / PAGE * PAGE;
	for (uint64_t p = start; p < end; p += PAGE) {
		int64_t pg = d_page(d, p);
		if (pg >= 0)
			d->named[pg] = d->zero[pg] = 1;
	}
}

static void d_op_report(struct dfx *d)
{
	unsigned q = d->q_report;
	unsigned k = 1 + (unsigned)below(3);
	struct dbuf bufs[3];

	if (k > d->num[q])
		k = d->num[q];
	for (unsigned j = 0; j < k; j++) {
		const struct dwin *w;
		do
			w = &d->win[below((uint64_t)d->nwin)];
		while (w->kind == DW_PFN);
		uint64_t len;
		if (w->kind == DW_CELLS) {
			/* from inside one sentinel page to inside the next: the four pages between */
			uint64_t s0 = (w->gpa + below(w->size - 12 * PAGE)) / PAGE;
			while (!d_sentinel(s0 * PAGE))
				s0++;
			uint64_t start = s0 * PAGE + 1 + below(PAGE - 1);
			uint64_t end = (s0 + 5) * PAGE + below(PAGE);
			if (pct(20))   /* or less than a page somewhere in the cell */
				end = start + 1 + below(PAGE);
			bufs[j] = (struct dbuf){ start, (uint32_t)(end - start), true };
			d_model_report(d, start, end - start);
			continue;
		}
		switch (below(6)) {
		case 0:  len = PAGE; break;
		case 1:  len = 1 + below(PAGE); break;            /* no whole page: nothing */
		case 2:  len = w->size; break;                    /* the whole window */
		default: len = 1 + below(512 * KiB); break;
		}
		if (len > w->size)
			len = w->size;
		uint64_t off = below(w->size - len + 1);
		if (pct(50))
			off &= ~(PAGE - 1);
		bufs[j] = (struct dbuf){ w->gpa + off, (uint32_t)len, true };
		d_model_report(d, bufs[j].gpa, len);
	}
	uint64_t reports = d->b->reports;
	d_send_valid(d, q, bufs, k, true);
	assert_int_equal(d->b->reports, reports + 1);
	assert_int_equal(balloon_nr_ballooned(d->b), d->nr_ballooned);   /* reporting is not ballooning */
	d->reports++;
}

/* Harmless driver mistakes: no state may change. */
static void d_op_benign(struct dfx *d)
{
	uint64_t nb = balloon_nr_ballooned(d->b), feat = virtio_mmio_features(d->t);
	uint16_t used[D_NQ];

	for (unsigned q = 0; q < d->nq; q++)
		used[q] = d_used_idx(d, q);
	switch (below(4)) {
	case 0:   /* notify queues that do not exist */
		dwr(d, VIRTIO_MMIO_QUEUE_NOTIFY, d->nq + (uint32_t)below(VIRTIO_MAX_QUEUES + 4 - d->nq));
		dwr(d, VIRTIO_MMIO_QUEUE_NOTIFY, pct(50) ? UINT32_MAX : (uint32_t)rnd());
		break;
	case 1:   /* features after FEATURES_OK */
		dwr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, (uint32_t)below(3));
		dwr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)rnd());
		break;
	case 2: { /* the driver's `actual` */
		uint32_t v = pct(50) ? (uint32_t)d->nr_ballooned : (uint32_t)rnd();
		uint32_t le = htole32(v);
		virtio_mmio_access(d->t, VIRTIO_MMIO_CONFIG + 4, (uint8_t *)&le, 4, true);
		assert_int_equal(d->b->actual, v);
		break;
	}
	default:  /* QueueNum / ring addresses of a live queue: ignored */
		dwr(d, VIRTIO_MMIO_QUEUE_SEL, (uint32_t)below(d->nq));
		dwr(d, VIRTIO_MMIO_QUEUE_NUM, (uint32_t)rnd());
		dwr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)rnd());
		dwr(d, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)rnd());
		break;
	}
	assert_false(d_needs_reset(d));
	assert_int_equal(virtio_mmio_features(d->t), feat);
	assert_int_equal(d->b->features, feat);
	assert_int_equal(balloon_nr_ballooned(d->b), nb);
	for (unsigned q = 0; q < d->nq; q++)
		assert_int_equal(d_used_idx(d, q), used[q]);
	for (unsigned q = 0; q < d->nq; q++) {
		struct virtq *vq = virtio_mmio_queue(d->t, q);
		assert_true(vq->ready);
		assert_int_equal(vq->num, d->num[q]);
		assert_int_equal(vq->desc_gpa, D_RING(q));
		assert_int_equal(vq->used_gpa, D_RING(q) + 0x2000);
	}
}

/* A sentinel PFN list: a refused chain must not give any of these up. */
static uint64_t d_sentinel_buf(struct dfx *d, uint64_t at, unsigned n)
{
	uint32_t *p = hva(d->gm, at, 4ull * n);
	const struct dwin *w = &d->win[0];
	for (unsigned i = 0; i < n; i++) {
		uint64_t g = w->gpa + below(w->size / PAGE) * PAGE;
		while (!d_sentinel(g))
			g += PAGE;
		if (g >= w->gpa + w->size)
			g = w->gpa + 2 * PAGE * 5 + 2 * PAGE - (w->gpa % (5 * PAGE));
		assert_true(d_sentinel(g) && d_window(d, g));
		p[i] = htole32((uint32_t)(g / PAGE));
	}
	return at;
}

/* A device-writable range over sentinel pages of a non-report window. */
static struct dbuf d_sentinel_range(struct dfx *d)
{
	const struct dwin *w = &d->win[0];
	uint64_t g = w->gpa + below(w->size / PAGE - 8) * PAGE;
	return (struct dbuf){ g, (uint32_t)(PAGE * (1 + below(6))), true };
}

/* An address the guest got wrong for a len-byte buffer. */
static uint64_t d_bad_addr(struct dfx *d, uint32_t len)
{
	uint64_t lo = ram_lo(d->gm), hi = ram_hi(d->gm);
	switch (below(7)) {
	case 0:  return lo - len + 1 + below(64);                 /* straddles the end of low RAM */
	case 1:  return lo + below(64 * MiB);
	case 2:  return MINIVMM_MMIO_BASE + below(0x8000);
	case 3:  return UINT64_MAX - below(len);                  /* wraps */
	case 4:  return hi ? HIGH + hi - len + 1 + below(64) : HIGH + below(0x1000);
	case 5:  return HIGH - 1 - below(64);                     /* into or inside the hole */
	default: return (rnd() | (1ull << 40));
	}
}

/*
 * A guest breaking the rules on one queue. The device must fail with
 * NEEDS_RESET, process nothing of the chain, process nothing more at all,
 * and come back after status 0.
 */
static void d_op_hostile(struct dfx *d)
{
	unsigned q = (unsigned)below(d->nq);
	uint16_t num = d->num[q];
	bool want_w = q == d->q_report;
	struct vring_desc *desc = hva(d->gm, D_RING(q), 16ull * num);
	uint16_t *av = hva(d->gm, D_RING(q) + 0x1000, 6ull + 2ull * num);
	uint64_t nb = balloon_nr_ballooned(d->b), updates = d->b->stats_updates, reports = d->b->reports;
	uint64_t reported = d->b->reported_bytes;
	uint16_t used = d_used_idx(d, q);
	struct dbuf bufs[3];
	unsigned k = 1 + (unsigned)below(3), kind = (unsigned)below(11);

	if (k > num)
		k = num;
	for (unsigned j = 0; j < k; j++)
		bufs[j] = want_w ? d_sentinel_range(d)
				 : (struct dbuf){ d_sentinel_buf(d, D_SCRATCH + 0x1000 * j, 64), 256, false };
	unsigned bad = (unsigned)below(k);
	switch (kind) {
	case 0: /* wrong direction: device-readable where writable is required, or back */
		bufs[bad].w = !want_w;
		break;
	case 1: /* a length of zero */
		bufs[bad].len = 0;
		break;
	case 2: /* outside RAM, straddling an end, in the hole, wrapping */
		bufs[bad].len = 1 + (uint32_t)below(3 * PAGE);
		bufs[bad].gpa = d_bad_addr(d, bufs[bad].len);
		break;
	case 3: /* huge */
		bufs[bad].len = pct(50) ? UINT32_MAX : (uint32_t)(d->gm->ram_size + PAGE);
		bufs[bad].gpa = pct(50) ? 0 : D_CHECKED;
		if (ram_hi(d->gm) && !in_ram(d->gm, bufs[bad].gpa, bufs[bad].len))
			break;
		bufs[bad].len = UINT32_MAX;
		bufs[bad].gpa = d_bad_addr(d, bufs[bad].len);
		break;
	default:
		break;
	}
	uint16_t head = d_post(d, q, bufs, k);
	uint16_t last = (uint16_t)((head + k - 1) % num);
	switch (kind) {
	case 4: /* indirect (never offered) */
		desc[(head + bad) % num].flags |= htole16(VRING_DESC_F_INDIRECT);
		break;
	case 5: /* a loop: the last descriptor points back into the chain */
		desc[last].flags |= htole16(VRING_DESC_F_NEXT);
		desc[last].next = htole16((uint16_t)((head + below(k)) % num));
		break;
	case 6: /* next beyond the ring */
		desc[last].flags |= htole16(VRING_DESC_F_NEXT);
		desc[last].next = htole16((uint16_t)(num + below(0x10000u - num)));
		break;
	case 7: /* head beyond the ring */
		av[2 + (uint16_t)(d->avail_idx[q] - 1) % num] = htole16((uint16_t)(num + below(0x10000u - num)));
		break;
	case 8: /* the avail index jumps by more than the ring holds */
		av[1] = htole16((uint16_t)(d->avail_idx[q] + num + (pct(50) ? 0 : below(1000))));
		break;
	case 9: { /* QueueReady with garbage ring addresses / size */
		dwr(d, VIRTIO_MMIO_QUEUE_SEL, q);
		dwr(d, VIRTIO_MMIO_QUEUE_READY, 0);
		uint32_t n = num;
		uint64_t a[3] = { D_RING(q), D_RING(q) + 0x1000, D_RING(q) + 0x2000 };
		switch (below(4)) {
		case 0:  n = pct(50) ? 0 : (pct(50) ? 3 : 512 + (uint32_t)below(0x10000)); break;
		case 1: {                                                       /* misaligned */
			static const uint64_t align[3] = { 16, 2, 4 };
			unsigned r = (unsigned)below(3);
			a[r] += 1 + below(align[r] - 1);
			break;
		}
		case 2: {                                                       /* outside RAM */
			uint64_t hi = ram_hi(d->gm);
			uint64_t outside[] = { ram_lo(d->gm) + 0x1000 * below(16), MINIVMM_MMIO_BASE,
					       1ull << 40, UINT64_MAX & ~15ull, hi ? HIGH + hi : HIGH };
			a[below(3)] = outside[below(5)];
			break;
		}
		default: a[0] = ram_lo(d->gm) - 16ull * num + 16; break;         /* runs off low RAM */
		}
		dwr(d, VIRTIO_MMIO_QUEUE_NUM, n);
		dwr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)a[0]);
		dwr(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(a[0] >> 32));
		dwr(d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)a[1]);
		dwr(d, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(a[1] >> 32));
		dwr(d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)a[2]);
		dwr(d, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(a[2] >> 32));
		dwr(d, VIRTIO_MMIO_QUEUE_READY, 1);
		if (drd(d, VIRTIO_MMIO_QUEUE_READY))
			fail_msg("queue %u accepted size %u, rings 0x%llx 0x%llx 0x%llx", q, n,
				 (unsigned long long)a[0], (unsigned long long)a[1], (unsigned long long)a[2]);
		break;
	}
	case 10: /* a chain as long as the ring that then loops to its head */
		for (uint16_t i = 0; i < num; i++) {
			desc[i] = (struct vring_desc){ .addr = htole64(bufs[0].gpa), .len = htole32(bufs[0].len),
						    .flags = htole16(VRING_DESC_F_NEXT | (want_w ? VRING_DESC_F_WRITE : 0)),
						    .next = htole16((uint16_t)((i + 1) % num)) };
		}
		av[2 + (uint16_t)(d->avail_idx[q] - 1) % num] = htole16((uint16_t)below(num));
		break;
	default:
		break;
	}
	dwr(d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	if (!d_needs_reset(d))
		fail_msg("hostile chain (kind %u, queue %u, %u buffers, bad %u) was accepted", kind, q, k, bad);
	d->violations++;
	assert_false(virtio_mmio_live(d->t));
	assert_int_equal(d_used_idx(d, q), used);
	assert_int_equal(balloon_nr_ballooned(d->b), nb);
	assert_int_equal(d->b->stats_updates, updates);
	assert_int_equal(d->b->reports, reports);
	assert_int_equal(d->b->reported_bytes, reported);

	/* nothing more is processed: a good inflate of sentinels stays where it is */
	if (virtio_mmio_queue(d->t, 0)->ready) {
		struct dbuf good = { d_sentinel_buf(d, D_SCRATCH + 0x8000, 32), 128, false };
		uint16_t u0 = d_used_idx(d, 0);
		d_post(d, 0, &good, 1);
		dwr(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
		assert_int_equal(d_used_idx(d, 0), u0);
		assert_int_equal(balloon_nr_ballooned(d->b), nb);
	}
	/* and writing DRIVER_OK again does not revive it */
	dwr(d, VIRTIO_MMIO_STATUS, 0xf);
	assert_true(d_needs_reset(d));
	assert_int_equal(balloon_nr_ballooned(d->b), nb);
}

/* Status 0: everything handed back, every queue gone; then a fresh probe. */
static void d_recover(struct dfx *d)
{
	dwr(d, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(drd(d, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(balloon_nr_ballooned(d->b), 0);
	assert_int_equal(d->b->actual, 0);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		struct virtq *vq = virtio_mmio_queue(d->t, i);
		assert_false(vq->ready);
		assert_false(vq->broken);
	}
	memset(d->ballooned, 0, d->ram_pages);
	d->nr_ballooned = 0;
	d->nrecent = 0;
	d->stats_held = false;
	d->recoveries++;
	d_probe(d);
	/* and it really works again */
	d_op_pfns(d, true);
}

/* An address for a ring register that is garbage to the device but never
 * points into another queue's rings or buffers, so the test still knows
 * which pages the guest gave up. */
static uint32_t d_garbage_addr(struct dfx *d, uint64_t reg)
{
	unsigned part = reg == VIRTIO_MMIO_QUEUE_DESC_LOW || reg == VIRTIO_MMIO_QUEUE_DESC_HIGH ? 0 :
			reg == VIRTIO_MMIO_QUEUE_AVAIL_LOW || reg == VIRTIO_MMIO_QUEUE_AVAIL_HIGH ? 1 : 2;
	bool high = reg == VIRTIO_MMIO_QUEUE_DESC_HIGH || reg == VIRTIO_MMIO_QUEUE_AVAIL_HIGH ||
		    reg == VIRTIO_MMIO_QUEUE_USED_HIGH;
	uint64_t own = d->queue_sel < D_NQ ? D_RING(d->queue_sel) + 0x1000ull * part : D_GARBAGE;
	uint64_t a;

	switch (below(8)) {
	case 0: case 1: case 2: a = own; break;
	case 3:  a = D_GARBAGE + 0x100 * below(8); break;
	case 4:  a = own + 1 + below(3); break;
	case 5:  a = d->gm->ram_size + below(MiB); break;
	case 6:  a = ram_lo(d->gm) - below(64); break;
	default: a = MINIVMM_MMIO_BASE + below(0x1000); break;
	}
	if (high)
		return pct(80) ? (uint32_t)(a >> 32) : (uint32_t)(0x100 + below(0xffff00));  /* >= 1 TiB */
	return (uint32_t)a;
}

/* Random register and config accesses, as a confused or malicious driver makes them. */
static void d_op_registers(struct dfx *d, unsigned n)
{
	static const uint64_t regs[] = {
		VIRTIO_MMIO_DEVICE_FEATURES_SEL, VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_MMIO_DRIVER_FEATURES_SEL,
		VIRTIO_MMIO_QUEUE_SEL, VIRTIO_MMIO_QUEUE_NUM, VIRTIO_MMIO_QUEUE_READY,
		VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_STATUS,
		VIRTIO_MMIO_QUEUE_DESC_LOW, VIRTIO_MMIO_QUEUE_DESC_HIGH, VIRTIO_MMIO_QUEUE_AVAIL_LOW,
		VIRTIO_MMIO_QUEUE_AVAIL_HIGH, VIRTIO_MMIO_QUEUE_USED_LOW, VIRTIO_MMIO_QUEUE_USED_HIGH,
		VIRTIO_MMIO_MAGIC_VALUE, VIRTIO_MMIO_CONFIG_GENERATION, VIRTIO_MMIO_SHM_SEL,
	};
	static const uint32_t lens[] = { 1, 2, 4, 8 };

	for (unsigned i = 0; i < n; i++) {
		uint8_t data[8];
		uint64_t off;
		uint32_t len = 4, v = (uint32_t)rnd();
		bool write = pct(75);

		switch (below(10)) {
		case 0: case 1: case 2: case 3: case 4:
			off = regs[below(sizeof(regs) / sizeof(regs[0]))];
			break;
		case 5: case 6:
			off = 4 * below(VIRTIO_MMIO_CONFIG / 4);
			break;
		case 7:
			off = below(VIRTIO_MMIO_CONFIG);
			len = lens[below(4)];
			break;
		default:
			off = VIRTIO_MMIO_CONFIG + below(64);
			len = lens[below(4)];
			break;
		}
		if (len == 4 && !(off & 3) && off < VIRTIO_MMIO_CONFIG && write) {
			switch (off) {
			case VIRTIO_MMIO_QUEUE_SEL:
				v = pct(80) ? (uint32_t)below(VIRTIO_MAX_QUEUES + 2) : v;
				d->queue_sel = v;
				break;
			case VIRTIO_MMIO_QUEUE_NUM:
				v = pct(70) ? 1u << below(10) : v;
				break;
			case VIRTIO_MMIO_QUEUE_READY:
				v = pct(90) ? (uint32_t)below(2) : v;
				break;
			case VIRTIO_MMIO_QUEUE_NOTIFY:
				v = pct(80) ? (uint32_t)below(VIRTIO_MAX_QUEUES + 2) : v;
				break;
			case VIRTIO_MMIO_STATUS:
				v = pct(90) ? (uint32_t)below(0x100) : v;
				break;
			case VIRTIO_MMIO_QUEUE_DESC_LOW: case VIRTIO_MMIO_QUEUE_DESC_HIGH:
			case VIRTIO_MMIO_QUEUE_AVAIL_LOW: case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
			case VIRTIO_MMIO_QUEUE_USED_LOW: case VIRTIO_MMIO_QUEUE_USED_HIGH:
				v = d_garbage_addr(d, off);
				break;
			default:
				break;
			}
			v = htole32(v);
			memcpy(data, &v, 4);
		} else if (off < VIRTIO_MMIO_CONFIG && write &&
			   off + len > VIRTIO_MMIO_QUEUE_DESC_LOW && off < VIRTIO_MMIO_QUEUE_USED_HIGH + 4) {
			/* unaligned or odd-sized over the ring registers: ignored by the transport,
			 * but keep the value harmless in case it were not */
			memset(data, 0, sizeof(data));
		} else {
			fill_random(data, sizeof(data));
		}
		virtio_mmio_access(d->t, off, data, len, write);
		d->reg_accesses++;
		d_check_count(d);
	}
}

static void d_run(void **state, uint64_t seed, unsigned episodes, const char *what)
{
	struct dfx *d = *state;
	int level = vmm_log_level;
	double t0 = now_s();

	rng_state = seed;
	vmm_log_level = -1;
	d_fill_pattern(d);
	d_probe(d);
	for (unsigned e = 0; e < episodes; e++) {
		unsigned ops = 5 + (unsigned)below(40);
		bool broke = false;
		for (unsigned i = 0; i < ops && !broke; i++) {
			unsigned r = (unsigned)below(100);
			d->ops++;
			if (r < 30) {
				d_op_pfns(d, true);
			} else if (r < 50) {
				d_op_pfns(d, false);
			} else if (r < 63) {
				if (d->q_stats != NO_Q)
					d_op_stats(d);
			} else if (r < 78) {
				if (d->q_report != NO_Q)
					d_op_report(d);
			} else if (r < 92) {
				d_op_benign(d);
			} else {
				d_op_hostile(d);
				broke = true;
			}
			d_check_count(d);
		}
		if (!broke) {
			d_check_bitmap(d, true);
			if (pct(50)) {
				/* random register traffic, then the driver starts over */
				d_op_registers(d, 10 + (unsigned)below(60));
				d_check_bitmap(d, false);
				for (int i = 0; i < BALLOON_NR_STATS; i++)
					d->stats[i] = d->b->stats[i];
			} else if (pct(70)) {
				continue;   /* the same driver goes on */
			}
		}
		d_recover(d);
		d_check_bitmap(d, true);
	}
	d_check_contents(d);
	vmm_log_level = level;
	print_message("%s: seed 0x%llx, %u episodes, %lu ops (%lu pages inflated, %lu deflated, "
		      "%lu reports, %lu stats buffers), %lu violations, %lu recoveries, "
		      "%lu random register accesses, %lu refused feature sets; "
		      "%lu pages verified intact, %lu verified zero, %.2fs\n",
		      what, (unsigned long long)seed, episodes, d->ops, d->inflated, d->deflated,
		      d->reports, d->stats_bufs, d->violations, d->recoveries, d->reg_accesses,
		      d->refused_features, d->content_pages, d->zero_pages, now_s() - t0);
	assert_true(d->violations > episodes / 4);
	assert_true(d->inflated > 0 && d->deflated > 0 && d->reports > 0 && d->stats_bufs > 0);
	assert_true(d->content_pages > 100);
}

static void test_device_balloon(void **state)
{
	d_run(state, 0xba11000001ull, 800, "balloon device, 64 MiB");
}

static void test_device_balloon_hole(void **state)
{
	d_run(state, 0xba11000002ull, 400, "balloon device, 3 GiB + 16 MiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_walker_random_bytes, w_setup_small, w_teardown),
		cmocka_unit_test_setup_teardown(test_walker_hostile, w_setup_small, w_teardown),
		cmocka_unit_test_setup_teardown(test_walker_random_bytes_hole, w_setup_hole, w_teardown),
		cmocka_unit_test_setup_teardown(test_walker_hostile_hole, w_setup_hole, w_teardown),
		cmocka_unit_test_setup_teardown(test_device_balloon, d_setup_small, d_teardown),
		cmocka_unit_test_setup_teardown(test_device_balloon_hole, d_setup_hole, d_teardown),
	};
	return cmocka_run_group_tests_name("fuzz_rings", tests, NULL, NULL);
}
