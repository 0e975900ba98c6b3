/*
 * huge: the one rule for discarding a whole huge page of hugetlb backing.
 *
 * hugetlbfs frees memory only a whole huge page at a time, so the 4 KiB
 * pieces a guest gives up (balloon inflate, free page reporting) stay
 * mapped until every piece of their huge page is given up or evicted; the
 * manager zeroes each piece when it is given, as a discard would. A guest
 * may reuse a reported piece without telling the host (that is what free
 * page reporting allows), and a misbehaving guest may write a ballooned
 * one, so by the time the last piece arrives the earlier ones can hold live
 * data. Both paths that discard a whole huge page (the balloon's give-up
 * and the scanner's whole-page eviction) therefore decide liveness here,
 * under the chunk lock, with the huge page write-protected through
 * userfaultfd so no write can land between the check and the discard:
 * a given piece that is not all zero was reused, and is live guest memory.
 * A zero piece loses nothing when discarded, whatever the guest did with it.
 */
#include <errno.h>
#include <string.h>

#include "mm/manager_priv.h"

int mm_huge_freeze(struct mm_manager *m, uint64_t chunk)
{
	int ret;

	if (m->uffd < 0)
		return -ENOTSUP;
	ret = mm_uffd_register(m, chunk);
	if (ret)
		return ret;
	return mm_uffd_wp(m, chunk * m->ps.chunk_pages, mm_chunk_npages(m, chunk), true);
}

void mm_huge_thaw(struct mm_manager *m, uint64_t chunk)
{
	int ret = mm_uffd_wp(m, chunk * m->ps.chunk_pages, mm_chunk_npages(m, chunk), false);

	/* A writer stays blocked until the protection goes: say so loudly. */
	if (ret)
		log_err("mm", "cannot release the write protection of chunk %llu: %s",
			(unsigned long long)chunk, strerror(-ret));
}

uint64_t mm_huge_settle_given(struct mm_manager *m, uint64_t chunk)
{
	uint64_t first = chunk * m->ps.chunk_pages, n = mm_chunk_npages(m, chunk), live = 0;
	uint8_t copy[MM_PAGE_SIZE];

	for (uint64_t i = first; i < first + n; i++) {
		enum mm_page_state st = ps_state(&m->ps, i);

		if (!ps_is_given(st) || mm_page_is_zero(mm_wp_page_view(mm_idx_hva(m, i), copy)))
			continue;
		live++;
		if (st == MM_PAGE_REPORTED) {
			/* Reused after the report: ordinary guest memory again. */
			ps_set_state(&m->ps, i, MM_PAGE_RESIDENT, 0);
		} else if (!(ps_update(&m->ps, i, PS_TOUCHED, PS_TOUCHED) & PS_TOUCHED)) {
			/* Written while in the balloon: the guest keeps what it wrote,
			 * and the huge page stays until it deflates or zeroes it. */
			atomic_fetch_add(&m->balloon_touched, 1);
		}
	}
	atomic_fetch_add(&m->huge_live_pieces, live);
	return live;
}

void mm_huge_discard_given(struct mm_manager *m, uint64_t chunk, bool vouched)
{
	uint64_t first = chunk * m->ps.chunk_pages, bytes = m->ps.chunk_pages << MM_PAGE_SHIFT;
	bool frozen = false;
	int ret;

	if (!vouched) {
		if (mm_huge_freeze(m, chunk)) {
			/* Without write protection liveness cannot be decided: keep it. */
			atomic_fetch_add(&m->huge_kept_unverified, 1);
			return;
		}
		frozen = true;
		if (mm_huge_settle_given(m, chunk)) {
			mm_huge_thaw(m, chunk);
			return;
		}
	}
	ret = mm_discard(m->gm, mm_idx_gpa(m, first), bytes);
	if (ret) {
		atomic_fetch_add(&m->discard_errors, 1);
		log_err("mm", "discard of the huge page at GPA 0x%llx failed: %s",
			(unsigned long long)mm_idx_gpa(m, first), strerror(-ret));
	} else {
		atomic_fetch_add(&m->discarded_bytes, bytes);
	}
	if (frozen)
		mm_huge_thaw(m, chunk);
	/* Nothing evicted here: a touch may fault the kernel's way (a zeroed
	 * huge page, which is what every given piece reads as), and each
	 * registration may split a mapping, of which a process has few. */
	if (!m->ps.chunks[chunk].n_evicted)
		mm_uffd_unregister(m, chunk);
}
