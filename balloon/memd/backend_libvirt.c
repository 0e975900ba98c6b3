/*
 * memd's libvirt backend (memd_backend_libvirt): the running domains of
 * each --libvirt connection, managed beside the minivmm VMs under the same
 * policy and budget. It owns the connections (open, keepalive, close
 * callback, reconnect with back-off) and, per domain, the libvirt calls:
 * virDomainMemoryStats (every tag libvirt maps), virDomainGetInfo (maximum
 * and current memory), virDomainSetMemoryStatsPeriod (when the balloon has
 * no stats period), virDomainSetMemoryFlags(AFFECT_LIVE) for the balloon
 * target, virDomainGetMetadata (floor and weight in minivmm's namespace),
 * and the QEMU process's RSS (its pid file for qemu:///system, else the
 * rss tag).
 *
 * Domain events replace polling where libvirt has them: LIFECYCLE picks
 * started domains up and drops stopped ones, BALLOON_CHANGE records when a
 * target is reached, METADATA_CHANGE re-reads a floor or weight. The
 * callbacks run on the main thread from libvirt's event dispatch
 * (lv_event.c puts it on the daemon's loop); they only queue work or update
 * figures, and the queue is handled at once unless a tick is running (then
 * by memd_lv_tick). The close callback can run inside any libvirt call, so
 * it only marks the connection lost; memd_lv_tick tears it down and
 * reconnects. Nothing here exits the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "balloon/memd/memd.h"
#include "vmm/lib/loop.h"

#define LV_QUEUE 64

enum lv_ev { LV_STARTED, LV_STOPPED, LV_METADATA };

struct memd_lv {
	struct memd *d;
	char *uri;
	virConnectPtr conn;         /* NULL while down */
	int cb[3];                  /* event callback ids, -1 none */
	bool close_cb;
	bool lost;                  /* the close callback came: tear down in the next tick */
	char why[256];              /* why it was lost */
	bool ever_open;
	char error[700];            /* the last open failure, said once */
	unsigned failures;
	uint64_t retry_ms;
	bool rescan;                /* list the domains again (queue overflow, or no events) */
	bool no_events;             /* events could not be registered: list every tick */
	struct { unsigned char uuid[VIR_UUID_BUFLEN]; enum lv_ev ev; } q[LV_QUEUE];
	int nq;
};

struct lv_dom {
	struct memd_lv *lv;
	unsigned char uuid[VIR_UUID_BUFLEN];
	char uuid_str[VIR_UUID_STRING_BUFLEN];
	virDomainPtr dom;           /* NULL while not connected */
	int id;
	int period;                 /* the balloon's stats period in force, 0 none */
	pid_t pid;                  /* the QEMU process, 0 unknown */
	bool meta_read;
	uint64_t meta_floor;        /* from <minivmm:memd>, 0 none */
	uint32_t meta_weight;
	bool told_balloon, told_period, told_meta, told_set_period;
	uint64_t target;            /* bytes last set, MEMD_NONE none */
	uint64_t set_ms;            /* when it was set */
	bool reached;               /* BALLOON_CHANGE said actual = target */
	json_t *stats;              /* the last memoryStats by libvirt's tag names (KiB, counts, seconds) */
};

/* ---- errors ---- */

/* libvirt's message for the last failed call, and an errno for the daemon. */
static int lv_err(const char *what, char *err, size_t errlen)
{
	virErrorPtr e = virGetLastError();
	int code = e ? e->code : VIR_ERR_INTERNAL_ERROR;

	snprintf(err, errlen, "%s: %s", what, e && e->message ? e->message : "unknown libvirt error");
	if (code == VIR_ERR_NO_DOMAIN || code == VIR_ERR_OPERATION_INVALID)
		return -ESRCH;      /* the domain is gone or no longer running */
	if (code == VIR_ERR_NO_CONNECT || code == VIR_ERR_INVALID_CONN || code == VIR_ERR_RPC ||
	    code == VIR_ERR_SYSTEM_ERROR)
		return -ECONNRESET;
	return -EIO;
}

/* libvirt prints every error on stderr by default; we say them ourselves, once. */
static void quiet(void *opaque, virErrorPtr e)
{
}

/* ---- domains ---- */

static struct lv_dom *dom_of(const struct memd_vm *vm)
{
	return vm->be == &memd_backend_libvirt ? vm->priv : NULL;
}

static int find_vm(struct memd_lv *lv, const unsigned char *uuid)
{
	for (int i = 0; i < lv->d->nvm; i++) {
		struct lv_dom *ld = dom_of(lv->d->vm[i]);

		if (ld && ld->lv == lv && !memcmp(ld->uuid, uuid, VIR_UUID_BUFLEN))
			return i;
	}
	return -1;
}

/* Does process pid's command line hold the argument "guest=NAME" or "guest=NAME,..."? */
static bool is_qemu_of(pid_t pid, const char *name)
{
	char path[64], buf[1 << 16], want[MEMD_NAME_MAX + 8];
	size_t wl, len = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	wl = (size_t)snprintf(want, sizeof(want), "guest=%s", name);
	/* the arguments are NUL-separated; QEMU's -name value is "guest=NAME,debug-threads=on" */
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
		if (!strncmp(buf + i, want, wl) && (!buf[i + wl] || buf[i + wl] == ','))
			return true;
	return false;
}

/* The QEMU pid from libvirt's pid file, if that process is this domain's QEMU. */
static pid_t qemu_pid(const char *uri, const char *name)
{
	char path[512], *text = NULL;
	pid_t pid;

	if (strncmp(uri, "qemu:///system", 14))
		return 0;  /* elsewhere the rss tag is all there is */
	snprintf(path, sizeof(path), "/run/libvirt/qemu/%s.pid", name);
	if (memd_read_text(path, 64, &text) < 0)
		return 0;
	pid = (pid_t)atoi(text);
	free(text);
	/* a stale pid file must not point us at another process */
	return pid > 0 && is_qemu_of(pid, name) ? pid : 0;
}

static void read_metadata(struct memd *d, struct memd_vm *vm, struct lv_dom *ld)
{
	char *xml = virDomainGetMetadata(ld->dom, VIR_DOMAIN_METADATA_ELEMENT, MEMD_LV_NS, VIR_DOMAIN_AFFECT_LIVE);
	char err[300];

	ld->meta_read = true;
	ld->meta_floor = ld->meta_weight = 0;
	if (!xml)
		return;  /* VIR_ERR_NO_DOMAIN_METADATA: none, the usual case */
	if (memd_lv_parse_metadata(xml, &ld->meta_floor, &ld->meta_weight, err, sizeof(err)) < 0) {
		if (!ld->told_meta)
			memd_log_msg(d, "domain %s: %s; its floor and weight come from the options", vm->name, err);
		ld->told_meta = true;
	} else if (ld->meta_floor || ld->meta_weight) {
		char b[32];

		memd_log_msg(d, "domain %s: minivmm metadata gives floor %s, weight %u", vm->name,
			     ld->meta_floor ? memd_size(ld->meta_floor, b) : "default", ld->meta_weight);
	}
	free(xml);
}

static void lv_disconnect(struct memd_vm *vm)
{
	struct lv_dom *ld = dom_of(vm);

	if (ld && ld->dom) {
		virDomainFree(ld->dom);
		ld->dom = NULL;
	}
	vm->sampled = false;
}

static int lv_connect(struct memd *d, struct memd_vm *vm, char *err, size_t errlen)
{
	struct lv_dom *ld = dom_of(vm);
	char *xml;
	int period, r;
	bool balloon;

	if (!ld->lv->conn) {
		snprintf(err, errlen, "libvirt connection %s is down (reconnecting)", ld->lv->uri);
		return -ENOTCONN;
	}
	ld->dom = virDomainLookupByUUID(ld->lv->conn, ld->uuid);
	if (!ld->dom)
		return lv_err("looking the domain up", err, errlen);
	if (virDomainIsActive(ld->dom) != 1) {
		snprintf(err, errlen, "the domain is not running");
		lv_disconnect(vm);
		return -ESRCH;
	}
	ld->id = virDomainGetID(ld->dom);
	xml = virDomainGetXMLDesc(ld->dom, 0);
	if (!xml) {
		r = lv_err("reading its XML", err, errlen);
		lv_disconnect(vm);
		return r;
	}
	r = memd_lv_parse_balloon(xml, &balloon, &period);
	free(xml);
	if (r) {
		snprintf(err, errlen, "libvirt gave XML that does not parse");
		lv_disconnect(vm);
		return -EBADMSG;
	}
	vm->has_balloon = balloon;
	ld->period = period;
	if (!balloon && !ld->told_balloon) {
		memd_log_msg(d, "domain %s has no virtio memballoon: it is observed only (its memory counts against "
			     "the budget; it is never ballooned)", vm->name);
		ld->told_balloon = true;
	}
	if (balloon && period <= 0) {
		/* without a period the guest sends no statistics, and the policy balloons only guests it sees */
		if (virDomainSetMemoryStatsPeriod(ld->dom, MEMD_LV_STATS_PERIOD_S, VIR_DOMAIN_AFFECT_LIVE) == 0) {
			ld->period = MEMD_LV_STATS_PERIOD_S;
			if (!ld->told_set_period)
				memd_log_msg(d, "domain %s: its memballoon had no stats period (no guest statistics): "
					     "set it to %d s, live only", vm->name, MEMD_LV_STATS_PERIOD_S);
			ld->told_set_period = true;
		} else {
			char e2[400];

			lv_err("virDomainSetMemoryStatsPeriod", e2, sizeof(e2));
			if (!ld->told_period)
				memd_log_msg(d, "domain %s: its memballoon has no stats period and setting one failed "
					     "(%s): its guest statistics stay missing, so it is not ballooned",
					     vm->name, e2);
			ld->told_period = true;
		}
	}
	read_metadata(d, vm, ld);
	ld->pid = qemu_pid(ld->lv->uri, vm->name);
	vm->pid = ld->pid;
	vm->in.balloon_target = ld->target;
	vm->in.resident_target = MEMD_NONE;
	vm->in.resident_target_ok = false;
	return 0;
}

static bool lv_connected(const struct memd_vm *vm)
{
	const struct lv_dom *ld = dom_of(vm);

	return ld && ld->dom;
}

static const char *const tag_names[VIR_DOMAIN_MEMORY_STAT_NR] = {
	[VIR_DOMAIN_MEMORY_STAT_SWAP_IN] = "swap_in",
	[VIR_DOMAIN_MEMORY_STAT_SWAP_OUT] = "swap_out",
	[VIR_DOMAIN_MEMORY_STAT_MAJOR_FAULT] = "major_fault",
	[VIR_DOMAIN_MEMORY_STAT_MINOR_FAULT] = "minor_fault",
	[VIR_DOMAIN_MEMORY_STAT_UNUSED] = "unused",
	[VIR_DOMAIN_MEMORY_STAT_AVAILABLE] = "available",
	[VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON] = "actual",
	[VIR_DOMAIN_MEMORY_STAT_RSS] = "rss",
	[VIR_DOMAIN_MEMORY_STAT_USABLE] = "usable",
	[VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE] = "last_update",
	[VIR_DOMAIN_MEMORY_STAT_DISK_CACHES] = "disk_caches",
	[VIR_DOMAIN_MEMORY_STAT_HUGETLB_PGALLOC] = "hugetlb_pgalloc",
	[VIR_DOMAIN_MEMORY_STAT_HUGETLB_PGFAIL] = "hugetlb_pgfail",
};

static uint64_t kib(uint64_t v)
{
	return v == MEMD_NONE ? MEMD_NONE : v << 10;
}

static int lv_sample(struct memd *d, struct memd_vm *vm, uint64_t now_ms, char *err, size_t errlen)
{
	struct lv_dom *ld = dom_of(vm);
	struct memd_vm_in *in = &vm->in;
	struct memd_guest_stats *s = &in->stats;
	virDomainMemoryStatStruct st[VIR_DOMAIN_MEMORY_STAT_NR];
	uint64_t tag[VIR_DOMAIN_MEMORY_STAT_NR];
	virDomainInfo info;
	int n;

	vm->sampled = false;
	if (virDomainGetInfo(ld->dom, &info) < 0)
		return lv_err("virDomainGetInfo", err, errlen);
	if (info.state == VIR_DOMAIN_SHUTOFF || info.state == VIR_DOMAIN_CRASHED) {
		snprintf(err, errlen, "the domain is %s", info.state == VIR_DOMAIN_SHUTOFF ? "shut off" : "crashed");
		return -ESRCH;
	}
	n = virDomainMemoryStats(ld->dom, st, VIR_DOMAIN_MEMORY_STAT_NR, 0);
	if (n < 0)
		return lv_err("virDomainMemoryStats", err, errlen);
	for (int i = 0; i < VIR_DOMAIN_MEMORY_STAT_NR; i++)
		tag[i] = MEMD_NONE;
	json_decref(ld->stats);
	ld->stats = json_object();
	for (int i = 0; i < n; i++)
		if (st[i].tag >= 0 && st[i].tag < VIR_DOMAIN_MEMORY_STAT_NR) {
			tag[st[i].tag] = st[i].val;
			json_object_set_new(ld->stats, tag_names[st[i].tag], json_integer((json_int_t)st[i].val));
		}
	in->id = vm->id;
	in->name = vm->name;
	in->kind = MEMD_VM_LIBVIRT;
	in->ram = (uint64_t)info.maxMem << 10;
	in->balloon_actual = tag[VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON] != MEMD_NONE
			   ? kib(tag[VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON]) : (uint64_t)info.memory << 10;
	in->balloon_target = ld->target;
	in->resident_target = MEMD_NONE;
	in->resident_target_ok = false;
	in->saved_reported = in->saved_zero = in->saved_shared = in->saved_compressed = MEMD_NONE;
	in->refault_rate = MEMD_NONE;
	for (int k = 0; k < MEMD_IDLE_N; k++)
		in->idle[k] = MEMD_NONE;
	/* the domain's own name in --vm-floor/--vm-weight wins, then its metadata, then "*" */
	in->floor = memd_opts_floor_own(&d->o, vm->name);
	if (!in->floor)
		in->floor = ld->meta_floor ? ld->meta_floor : memd_opts_floor(&d->o, vm->name);
	in->weight = memd_opts_weight_own(&d->o, vm->name);
	if (!in->weight)
		in->weight = ld->meta_weight ? ld->meta_weight : memd_opts_weight(&d->o, vm->name);
	/* last_update is the guest's wall-clock seconds: onto our monotonic clock, as vm.c does */
	memset(s, 0xff, sizeof(*s));
	if (tag[VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE] != MEMD_NONE && tag[VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE] > 0) {
		int64_t age = (int64_t)time(NULL) - (int64_t)tag[VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE];

		s->updated_ms = age <= 0 ? now_ms : (uint64_t)age * 1000 >= now_ms ? 1 : now_ms - (uint64_t)age * 1000;
	}
	s->free = kib(tag[VIR_DOMAIN_MEMORY_STAT_UNUSED]);
	/* "usable" is the guest's MemAvailable; libvirt's "available" is its MemTotal */
	s->available = kib(tag[VIR_DOMAIN_MEMORY_STAT_USABLE]);
	s->caches = kib(tag[VIR_DOMAIN_MEMORY_STAT_DISK_CACHES]);
	s->major_faults = tag[VIR_DOMAIN_MEMORY_STAT_MAJOR_FAULT];
	s->swap_in = kib(tag[VIR_DOMAIN_MEMORY_STAT_SWAP_IN]);
	/* oom_kills and alloc_stalls: libvirt maps neither; they stay missing */
	vm->rss = MEMD_NONE;
	if (ld->pid > 0 && memd_read_rss(ld->pid, &vm->rss) < 0) {
		ld->pid = vm->pid = 0;  /* gone or reused: the rss tag from now on */
		vm->rss = MEMD_NONE;
	}
	if (vm->rss == MEMD_NONE)
		vm->rss = kib(tag[VIR_DOMAIN_MEMORY_STAT_RSS]);
	in->resident = vm->rss;
	vm->compressed = MEMD_NONE;
	vm->sampled = true;
	return 0;
}

static int lv_apply(struct memd *d, struct memd_vm *vm, const struct memd_vm_decision *dec, char *did,
		    size_t didlen, char *err, size_t errlen)
{
	struct lv_dom *ld = dom_of(vm);
	char b[32];

	did[0] = '\0';
	/* a resident target is minivmm's: a QEMU domain has only its balloon */
	if (dec->balloon != MEMD_SET || !vm->has_balloon)
		return 0;
	if (virDomainSetMemoryFlags(ld->dom, (unsigned long)(dec->balloon_target >> 10), VIR_DOMAIN_AFFECT_LIVE) < 0)
		return lv_err("virDomainSetMemoryFlags", err, errlen);
	ld->target = vm->in.balloon_target = dec->balloon_target;
	ld->set_ms = memd_now_ms();
	ld->reached = false;
	snprintf(did, didlen, "balloon %s", memd_size(dec->balloon_target, b));
	return 0;
}

static json_t *fig(uint64_t v)
{
	return v == MEMD_NONE ? json_null() : json_integer((json_int_t)v);
}

static void lv_describe(const struct memd_vm *vm, json_t *o)
{
	const struct lv_dom *ld = dom_of(vm);

	json_object_set_new(o, "uri", json_string(ld->lv->uri));
	json_object_set_new(o, "libvirt", json_pack("{s:s,s:o,s:i,s:b,s:o,s:o,s:o,s:o,s:O}",
		"uuid", ld->uuid_str, "id", ld->dom && ld->id >= 0 ? json_integer(ld->id) : json_null(),
		"stats-period", ld->period, "observe-only", !vm->has_balloon,
		"metadata-floor", ld->meta_floor ? json_integer((json_int_t)ld->meta_floor) : json_null(),
		"metadata-weight", ld->meta_weight ? json_integer(ld->meta_weight) : json_null(),
		"target", fig(ld->target), "target-reached", ld->target == MEMD_NONE ? json_null()
								      : json_boolean(ld->reached),
		"memory-stats", ld->stats ? ld->stats : json_null()));
}

static void lv_release(struct memd_vm *vm)
{
	struct lv_dom *ld = vm->priv;

	if (!ld)
		return;
	if (ld->dom)
		virDomainFree(ld->dom);
	json_decref(ld->stats);
	free(ld);
	vm->priv = NULL;
}

const struct memd_backend memd_backend_libvirt = {
	.kind = MEMD_VM_LIBVIRT,
	.name = "libvirt",
	.connect = lv_connect,
	.disconnect = lv_disconnect,
	.connected = lv_connected,
	.sample = lv_sample,
	.apply = lv_apply,
	.describe = lv_describe,
	.release = lv_release,
};

/* ---- domain discovery and events ---- */

static int add_domain(struct memd_lv *lv, virDomainPtr dom)
{
	struct lv_dom *ld = calloc(1, sizeof(*ld));
	const char *name = virDomainGetName(dom);

	if (!ld || !name || virDomainGetUUID(dom, ld->uuid) < 0 || virDomainGetUUIDString(dom, ld->uuid_str) < 0) {
		free(ld);
		return -ENOMEM;
	}
	ld->lv = lv;
	ld->id = -1;
	ld->target = MEMD_NONE;
	return memd_add_vm_be(lv->d, &memd_backend_libvirt, ld, lv->uri, name, true, NULL);
}

/* Lists the running domains: adds new ones, drops known ones that are not running, retries the rest now. */
static void rescan(struct memd_lv *lv)
{
	virDomainPtr *doms = NULL;
	struct memd *d = lv->d;
	bool seen[MEMD_MAX_VMS] = { false };
	int n = virConnectListAllDomains(lv->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);

	if (n < 0) {
		char err[400];

		lv_err("listing its domains", err, sizeof(err));
		memd_log_msg(d, "libvirt %s: %s; trying again next tick", lv->uri, err);
		return;  /* rescan stays set */
	}
	lv->rescan = false;
	for (int i = 0; i < n; i++) {
		unsigned char uuid[VIR_UUID_BUFLEN];
		int k = virDomainGetUUID(doms[i], uuid) == 0 ? find_vm(lv, uuid) : -1;

		if (k >= 0) {
			seen[k] = true;
			if (!memd_vm_connected(d->vm[k]))
				d->vm[k]->retry_ms = 0;
		} else if (add_domain(lv, doms[i]) == 0) {
			seen[d->nvm - 1] = true;
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	for (int i = d->nvm - 1; i >= 0; i--) {
		struct lv_dom *ld = dom_of(d->vm[i]);

		if (ld && ld->lv == lv && !seen[i])
			memd_remove_vm(d, i, "the domain is not running");
	}
}

/* The queued domain events, in order. */
static void process(struct memd_lv *lv)
{
	struct memd *d = lv->d;

	if (!lv->conn)
		return;
	for (int i = 0; i < lv->nq; i++) {
		int k = find_vm(lv, lv->q[i].uuid);

		if (lv->q[i].ev == LV_STARTED && k < 0) {
			virDomainPtr dom = virDomainLookupByUUID(lv->conn, lv->q[i].uuid);

			if (dom) {
				add_domain(lv, dom);
				virDomainFree(dom);
			}
		} else if (lv->q[i].ev == LV_STOPPED && k >= 0) {
			memd_remove_vm(d, k, "the domain stopped (libvirt lifecycle event)");
		} else if (lv->q[i].ev == LV_METADATA && k >= 0 && dom_of(d->vm[k])->dom) {
			read_metadata(d, d->vm[k], dom_of(d->vm[k]));
		}
	}
	lv->nq = 0;
	if (lv->rescan || lv->no_events)
		rescan(lv);
}

static void enqueue(struct memd_lv *lv, virDomainPtr dom, enum lv_ev e)
{
	if (lv->nq == LV_QUEUE || virDomainGetUUID(dom, lv->q[lv->nq].uuid) < 0) {
		lv->rescan = true;  /* too many at once: a full listing catches up */
	} else {
		lv->q[lv->nq].ev = e;
		lv->nq++;
	}
	/* a tick in progress handles the queue in its next round; otherwise now */
	if (!lv->d->ticking)
		process(lv);
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	if (event == VIR_DOMAIN_EVENT_STARTED)
		enqueue(opaque, dom, LV_STARTED);
	else if (event == VIR_DOMAIN_EVENT_STOPPED)
		enqueue(opaque, dom, LV_STOPPED);
	return 0;
}

static int on_metadata(virConnectPtr conn, virDomainPtr dom, int type, const char *nsuri, void *opaque)
{
	if (type == VIR_DOMAIN_METADATA_ELEMENT && nsuri && !strcmp(nsuri, MEMD_LV_NS))
		enqueue(opaque, dom, LV_METADATA);
	return 0;
}

/* The guest's balloon moved: what the daemon reads as actual until the next sample, and when a target is met. */
static int on_balloon(virConnectPtr conn, virDomainPtr dom, unsigned long long actual_kib, void *opaque)
{
	struct memd_lv *lv = opaque;
	unsigned char uuid[VIR_UUID_BUFLEN];
	struct memd_vm *vm;
	struct lv_dom *ld;
	int k;

	if (virDomainGetUUID(dom, uuid) < 0 || (k = find_vm(lv, uuid)) < 0)
		return 0;
	vm = lv->d->vm[k];
	ld = vm->priv;
	vm->in.balloon_actual = actual_kib << 10;
	if (ld->target != MEMD_NONE && !ld->reached &&
	    (actual_kib << 10) + (1 << 20) > ld->target && (actual_kib << 10) < ld->target + (1 << 20)) {
		ld->reached = true;
		memd_timeline(lv->d, "balloon-reached", json_pack("{s:s,s:s,s:I,s:I,s:I}", "vm", vm->name, "kind",
			      "libvirt", "target", (json_int_t)ld->target, "actual", (json_int_t)(actual_kib << 10),
			      "ms", (json_int_t)(memd_now_ms() - ld->set_ms)));
		memd_event(lv->d, "MEMD_BALLOON_REACHED", json_pack("{s:s,s:I,s:I}", "vm", vm->name, "target",
				   (json_int_t)ld->target, "ms", (json_int_t)(memd_now_ms() - ld->set_ms)));
	}
	return 0;
}

/* ---- connections ---- */

static const char *close_reason(int reason)
{
	switch (reason) {
	case VIR_CONNECT_CLOSE_REASON_ERROR: return "a socket error";
	case VIR_CONNECT_CLOSE_REASON_EOF: return "the daemon closed it (stopped or restarted?)";
	case VIR_CONNECT_CLOSE_REASON_KEEPALIVE: return "the daemon stopped answering keepalives";
	default: return "closed by the client";
	}
}

/* May run inside any libvirt call (the one that found the socket dead): only mark it. */
static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	struct memd_lv *lv = opaque;

	if (!lv->lost)
		memd_log_msg(lv->d, "libvirt connection %s lost: %s; its domains are not managed until it is back "
			     "(the minivmm VMs still are); reconnecting", lv->uri, close_reason(reason));
	lv->lost = true;
	snprintf(lv->why, sizeof(lv->why), "%s", close_reason(reason));
}

static void retry_later(struct memd_lv *lv)
{
	uint64_t wait = MEMD_RETRY_MS << (lv->failures < 5 ? lv->failures : 5);

	lv->failures++;
	lv->retry_ms = memd_now_ms() + (wait < MEMD_RETRY_MAX_MS ? wait : MEMD_RETRY_MAX_MS);
}

static void teardown(struct memd_lv *lv)
{
	struct memd *d = lv->d;

	for (int i = 0; i < d->nvm; i++) {
		struct lv_dom *ld = dom_of(d->vm[i]);

		if (ld && ld->lv == lv)
			lv_disconnect(d->vm[i]);
	}
	if (!lv->conn)
		return;
	/* on a dead connection these fail; libvirt still drops its side */
	for (int i = 0; i < 3; i++)
		if (lv->cb[i] >= 0)
			virConnectDomainEventDeregisterAny(lv->conn, lv->cb[i]);
	if (lv->close_cb)
		virConnectUnregisterCloseCallback(lv->conn, on_close);
	virConnectClose(lv->conn);
	lv->conn = NULL;
	lv->close_cb = false;
	lv->nq = 0;
}

static int open_conn(struct memd_lv *lv, char *err, size_t errlen)
{
	static const int ids[3] = { VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE,
				    VIR_DOMAIN_EVENT_ID_METADATA_CHANGE };
	virConnectDomainEventGenericCallback cbs[3] = { VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle),
							VIR_DOMAIN_EVENT_CALLBACK(on_balloon),
							VIR_DOMAIN_EVENT_CALLBACK(on_metadata) };

	lv->conn = virConnectOpen(lv->uri);
	if (!lv->conn) {
		virErrorPtr e = virGetLastError();

		snprintf(err, errlen, "cannot open libvirt connection %s: %s. Check that libvirtd (or virtqemud) "
			 "is running and its socket exists (/run/libvirt/libvirt-sock for qemu:///system), that the "
			 "URI is spelled right (e.g. qemu:///system), and that this user may open it read-write "
			 "(root, or the libvirt group / polkit)", lv->uri,
			 e && e->message ? e->message : "no reason given");
		return -ENOTCONN;
	}
	lv->lost = false;
	lv->close_cb = virConnectRegisterCloseCallback(lv->conn, on_close, lv, NULL) == 0;
	/* a daemon that hangs is noticed within about 15 s; drivers without keepalive (test:///) say so, fine */
	virConnectSetKeepAlive(lv->conn, MEMD_LV_KEEPALIVE_S, MEMD_LV_KEEPALIVE_N);
	lv->no_events = false;
	for (int i = 0; i < 3; i++) {
		lv->cb[i] = virConnectDomainEventRegisterAny(lv->conn, NULL, ids[i], cbs[i], lv, NULL);
		if (lv->cb[i] < 0 && i == 0) {
			lv->no_events = true;
			lv_err("virConnectDomainEventRegisterAny", err, errlen);
			memd_log_msg(lv->d, "libvirt %s: no lifecycle events (%s): its domains are listed every tick",
				     lv->uri, err);
		}
	}
	lv->rescan = true;
	return 0;
}

static void try_open(struct memd_lv *lv)
{
	char err[700];

	if (open_conn(lv, err, sizeof(err)) < 0) {
		if (strcmp(err, lv->error)) {
			memd_log_msg(lv->d, "%s; retrying from %d s to every %d s, the minivmm VMs are managed meanwhile",
				     err, MEMD_RETRY_MS / 1000, MEMD_RETRY_MAX_MS / 1000);
			memd_event(lv->d, "MEMD_LIBVIRT_ERROR", json_pack("{s:s,s:s}", "uri", lv->uri, "error", err));
			snprintf(lv->error, sizeof(lv->error), "%s", err);
		}
		retry_later(lv);
		return;
	}
	memd_log_msg(lv->d, "libvirt connection %s %s", lv->uri, lv->ever_open ? "open again" : "open");
	memd_event(lv->d, "MEMD_LIBVIRT_CONNECTED", json_pack("{s:s}", "uri", lv->uri));
	lv->ever_open = true;
	lv->error[0] = '\0';
	lv->failures = 0;
	rescan(lv);
}

int memd_lv_start(struct memd *d, char *err, size_t errlen)
{
	int r;

	virSetErrorFunc(NULL, quiet);
	if (virInitialize() < 0) {
		snprintf(err, errlen, "libvirt failed to initialize");
		return -EIO;
	}
	r = memd_lv_events_attach(d->loop, err, errlen);
	if (r)
		return r;
	for (int i = 0; i < d->o.nlibvirt; i++) {
		struct memd_lv *lv = calloc(1, sizeof(*lv));

		if (!lv || !(lv->uri = strdup(d->o.libvirt[i]))) {
			free(lv);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		lv->d = d;
		for (int k = 0; k < 3; k++)
			lv->cb[k] = -1;
		d->lv[d->nlv++] = lv;
		try_open(lv);
	}
	return 0;
}

void memd_lv_tick(struct memd *d)
{
	for (int i = 0; i < d->nlv; i++) {
		struct memd_lv *lv = d->lv[i];

		if (lv->lost && lv->conn) {
			teardown(lv);
			retry_later(lv);
		}
		if (!lv->conn && memd_now_ms() >= lv->retry_ms)
			try_open(lv);
		else if (lv->conn)
			process(lv);
	}
}

void memd_lv_stop(struct memd *d)
{
	for (int i = 0; i < d->nlv; i++) {
		teardown(d->lv[i]);
		free(d->lv[i]->uri);
		free(d->lv[i]);
	}
	d->nlv = 0;
	memd_lv_events_detach();
}

struct memd_lv *memd_lv_find(struct memd *d, const char *uri)
{
	for (int i = 0; i < d->nlv; i++)
		if (!strcmp(d->lv[i]->uri, uri))
			return d->lv[i];
	return NULL;
}

bool memd_lv_is_open(const struct memd_lv *lv)
{
	return lv->conn && !lv->lost;
}

void memd_lv_lost(struct memd_lv *lv, const char *why)
{
	on_close(lv->conn, VIR_CONNECT_CLOSE_REASON_CLIENT, lv);
	snprintf(lv->why, sizeof(lv->why), "%s", why);
}
