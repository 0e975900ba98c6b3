/*
 * query: the figures behind query-memory-manager, read from the manager's
 * counters, the page-state table, the store and KVM's statistics. Main
 * thread; every counter it reads is atomic or taken under the store's lock.
 */
#include <jansson.h>
#include <stdio.h>

#include "mm/manager_priv.h"

void mm_set_u64(json_t *obj, const char *k, uint64_t v)
{
	json_object_set_new(obj, k, json_integer((json_int_t)v));
}

void mm_set_real(json_t *obj, const char *k, double v)
{
	json_object_set_new(obj, k, json_real(v));
}

void mmgr_query(struct mm_manager *m, json_t *obj)
{
	struct mm_store_stats st = { 0 };
	uint64_t v;

	if (!m)
		return;
	uint64_t ballooned = atomic_load(&m->ps.count[MM_PAGE_BALLOONED]);
	uint64_t reported = atomic_load(&m->ps.count[MM_PAGE_REPORTED]);

	mm_set_u64(obj, "guest-ram", m->gm->ram_size);
	mm_set_u64(obj, "host-resident", mm_resident_bytes(m->gm));
	mm_set_u64(obj, "ballooned-pages", ballooned);
	mm_set_u64(obj, "ballooned-bytes", ballooned << MM_PAGE_SHIFT);
	mm_set_u64(obj, "reported-pages", reported);
	mm_set_u64(obj, "reported-bytes", reported << MM_PAGE_SHIFT);
	mm_set_u64(obj, "discarded-bytes", atomic_load(&m->discarded_bytes));
	mm_set_u64(obj, "balloon-touched-pages", atomic_load(&m->balloon_touched));
	if (m->ops.stat) {
		if (!m->ops.stat(m->ops_opaque, "pages_4k", &v))
			mm_set_u64(obj, "kvm-pages-4k", v);
		if (!m->ops.stat(m->ops_opaque, "pages_2m", &v))
			mm_set_u64(obj, "kvm-pages-2m", v);
		if (!m->ops.stat(m->ops_opaque, "pages_1g", &v))
			mm_set_u64(obj, "kvm-pages-1g", v);
	}
	if (atomic_load(&m->have_pages_2m_start))
		mm_set_u64(obj, "kvm-pages-2m-before-reclaim", m->pages_2m_start);

	json_object_set_new(obj, "reclaim", json_boolean(m->o.reclaim));
	json_object_set_new(obj, "policy", json_string(m->o.policy->name));
	mm_set_u64(obj, "untouched-pages", atomic_load(&m->ps.count[MM_PAGE_UNTOUCHED]));
	mm_set_u64(obj, "resident-pages", atomic_load(&m->ps.count[MM_PAGE_RESIDENT]));
	mm_set_u64(obj, "zero-pages", atomic_load(&m->ps.count[MM_PAGE_ZERO]));
	uint64_t comp = atomic_load(&m->ps.count[MM_PAGE_COMPRESSED]);
	uint64_t shared = atomic_load(&m->ps.count[MM_PAGE_SHARED]);
	if (m->store)
		mm_store_get_stats(m->store, &st);
	mm_set_u64(obj, "compressed-pages", comp);
	mm_set_u64(obj, "compressed-bytes", st.stored_bytes);
	mm_set_real(obj, "compression-ratio", st.stored_bytes ?
		    (double)(st.entries << MM_PAGE_SHIFT) / (double)st.stored_bytes : 0.0);
	mm_set_u64(obj, "shared-pages", shared);
	/* Every reference past an entry's first is a page held at no cost. */
	mm_set_u64(obj, "shared-bytes-saved", (st.refs - st.entries) << MM_PAGE_SHIFT);
	mm_set_u64(obj, "store-entries", st.entries);
	mm_set_u64(obj, "store-index-bytes", m->store ? st.index_bytes : 0);
	mm_set_u64(obj, "incompressible-skips", atomic_load(&m->skipped_incompressible));
	mm_set_u64(obj, "store-max-bytes", m->o.store_max);
	json_object_set_new(obj, "compressing", json_boolean(m->store && mm_store_compressing(m->store)));
	mm_set_u64(obj, "store-full-refusals", st.full);
	mm_set_u64(obj, "evicted-zero", atomic_load(&m->evicted_zero));
	mm_set_u64(obj, "evicted-compressed", atomic_load(&m->evicted_compressed));
	mm_set_u64(obj, "evicted-shared", atomic_load(&m->evicted_shared));
	mm_set_u64(obj, "evicted-huge-pages", atomic_load(&m->evicted_huge));
	mm_set_u64(obj, "reclaim-discarded-bytes", atomic_load(&m->reclaim_discarded_bytes));
	mm_set_u64(obj, "refaults", atomic_load(&m->refaults));
	mm_set_u64(obj, "refaulted-pages", atomic_load(&m->refaulted_pages));
	mm_set_u64(obj, "zero-fills", atomic_load(&m->zero_fills));
	mm_set_u64(obj, "checksum-failures", atomic_load(&m->checksum_failures));
	mm_set_u64(obj, "unresolvable-faults", atomic_load(&m->unresolvable_faults));
	mm_set_u64(obj, "discard-errors", atomic_load(&m->discard_errors));
	mm_set_u64(obj, "huge-live-pieces", atomic_load(&m->huge_live_pieces));
	mm_set_u64(obj, "huge-kept-unverified", atomic_load(&m->huge_kept_unverified));
	mm_set_u64(obj, "restore-buffer-releases", atomic_load(&m->restore_buf_releases));
	mm_set_u64(obj, "uffd-cap-hits", atomic_load(&m->reg_cap_hits));
	mm_set_u64(obj, "uffd-max-chunks", m->o.uffd_chunks);
	mm_set_u64(obj, "uffd-registrations", atomic_load(&m->registrations));
	mm_set_u64(obj, "uffd-unregistrations", atomic_load(&m->unregistrations));
	mm_set_u64(obj, "uffd-wp-faults", atomic_load(&m->wp_faults));
	mm_set_u64(obj, "throttle-ms", atomic_load(&m->throttle_ms));
	mm_set_u64(obj, "fault-in-count", atomic_load(&m->fault_hist.n));
	mm_set_real(obj, "fault-in-p50-us", (double)mm_hist_pct(&m->fault_hist, 50) / 1000.0);
	mm_set_real(obj, "fault-in-p99-us", (double)mm_hist_pct(&m->fault_hist, 99) / 1000.0);
	mm_set_real(obj, "scanner-cpu-seconds", (double)atomic_load(&m->scanner_cpu_ns) / 1e9);
	mm_set_real(obj, "fault-cpu-seconds", (double)atomic_load(&m->fault_cpu_ns) / 1e9);
	mm_set_real(obj, "cold-age", (double)atomic_load(&m->cold_age_ms) / 1000.0);
	mm_set_real(obj, "refault-rate", atomic_load(&m->ctrl.last_rate));
	mm_set_u64(obj, "scan-passes", atomic_load(&m->passes));
	mm_set_u64(obj, "resident-target", atomic_load(&m->resident_target));
	mm_set_u64(obj, "resident-target-passes", atomic_load(&m->target_passes));
	json_t *idle = json_object();
	for (int k = 0; k < MM_IDLE_BUCKETS; k++) {
		char key[16];
		snprintf(key, sizeof(key), "%us", MM_IDLE_SECONDS[k]);
		mm_set_u64(idle, key, atomic_load(&m->idle_pages[k]) << MM_PAGE_SHIFT);
	}
	json_object_set_new(obj, "idle-bytes", idle);
	mm_set_u64(obj, "uffd-registered-chunks", atomic_load(&m->nr_registered));
	uint64_t meta = ps_metadata_bytes(&m->ps) + m->pol.meta_bytes;
	mm_set_u64(obj, "metadata-bytes", meta);
	mm_set_real(obj, "metadata-percent", 100.0 * (double)meta / (double)m->gm->ram_size);
	if (m->o.ksm) {
		json_t *k = json_object();
		mm_ksm_query(m, k);
		json_object_set_new(obj, "ksm", k);
	}
}

