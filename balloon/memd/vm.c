/*
 * memd's minivmm backend (memd_backend_minivmm): one minivmm (or QEMU)
 * behind its QMP socket. Connecting (with guest-stats polling switched on
 * when it is off, and a probe for the resident-target command), sampling
 * the figures the policy reads, applying its decisions with QMP "balloon"
 * and "mm-set-resident-target", and finding VMs in the run directory
 * (NAME.qmp, created by minivmm --name NAME). Main thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "balloon/memd/memd.h"
#include "vmm/qmp/client.h"

#define BALLOON_QOM "/machine/peripheral/balloon0"
#define STATS_POLL_S 1

/* An integer field, MEMD_NONE when absent or negative (QMP's "missing" is -1). */
static uint64_t u64_of(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return json_integer_value(v) < 0 ? MEMD_NONE : (uint64_t)json_integer_value(v);
	if (json_is_real(v))
		return json_real_value(v) < 0 ? MEMD_NONE : (uint64_t)json_real_value(v);
	return MEMD_NONE;
}

static int exec(struct memd_vm *vm, const char *cmd, json_t *args, json_t **ret, char *err, size_t errlen)
{
	return qmp_client_execute(vm->qc, cmd, args, MEMD_QMP_TIMEOUT_MS, ret, err, errlen);
}

static bool class_is(struct memd_vm *vm, const char *cls)
{
	return !strcmp(qmp_client_error_class(vm->qc), cls);
}

/* The resident tier: probe once per connection with a harmless "clear". */
static int probe_resident(struct memd *d, struct memd_vm *vm, char *err, size_t errlen)
{
	json_t *ret;
	int r = exec(vm, "mm-set-resident-target", json_pack("{s:I}", "bytes", (json_int_t)0), &ret, err, errlen);

	if (r == 0) {
		json_decref(ret);
		vm->in.resident_target_ok = true;
		return 0;
	}
	if (r != -EPROTO)
		return r;
	vm->in.resident_target_ok = false;
	if (!vm->told_no_resident) {
		memd_log_msg(d, "VM %s: no resident target (%s: %s): the resident tier is unavailable for it, "
			     "only its balloon is used", vm->name,
			     class_is(vm, "CommandNotFound") ? "mm-set-resident-target not found" : "refused", err);
		vm->told_no_resident = true;
	}
	return 0;
}

/* Guest stats are what the balloon policy reads: switch polling on when it is off. */
static int ensure_polling(struct memd *d, struct memd_vm *vm, char *err, size_t errlen)
{
	json_t *ret = NULL;
	int r = exec(vm, "qom-get", json_pack("{s:s,s:s}", "path", BALLOON_QOM, "property",
					      "guest-stats-polling-interval"), &ret, err, errlen);

	if (r == -EPROTO) {
		vm->has_balloon = false;
		memd_log_msg(d, "VM %s has no balloon device (%s): it is observed, never ballooned", vm->name, err);
		return 0;
	}
	if (r)
		return r;
	vm->has_balloon = true;
	if (json_is_integer(ret) && json_integer_value(ret) == 0) {
		json_decref(ret);
		ret = NULL;
		r = exec(vm, "qom-set", json_pack("{s:s,s:s,s:i}", "path", BALLOON_QOM, "property",
						  "guest-stats-polling-interval", "value", STATS_POLL_S), &ret, err, errlen);
		if (r && r != -EPROTO)
			return r;
		if (r)
			memd_log_msg(d, "VM %s: guest-stats-polling-interval is 0 and could not be set: %s; "
				     "its guest stats stay missing", vm->name, err);
		else
			memd_log_msg(d, "VM %s: guest-stats-polling-interval was 0 (no guest stats): set it to %d s",
				     vm->name, STATS_POLL_S);
	}
	json_decref(ret);
	return 0;
}

static void vm_disconnect(struct memd_vm *vm);

static int vm_connect(struct memd *d, struct memd_vm *vm, char *err, size_t errlen)
{
	int r = qmp_client_connect(vm->path, MEMD_QMP_TIMEOUT_MS, 1, &vm->qc, err, errlen);

	if (r)
		return r;
	vm->pid = qmp_client_peer_pid(vm->qc);
	vm->in.balloon_target = MEMD_NONE;
	vm->in.resident_target = MEMD_NONE;
	r = ensure_polling(d, vm, err, errlen);
	if (!r)
		r = probe_resident(d, vm, err, errlen);
	if (r)
		vm_disconnect(vm);
	return r;
}

static void vm_disconnect(struct memd_vm *vm)
{
	qmp_client_close(vm->qc);
	vm->qc = NULL;
	vm->sampled = false;
}

static void sample_stats(struct memd_vm *vm, json_t *gs, uint64_t now_ms)
{
	struct memd_guest_stats *s = &vm->in.stats;
	json_t *st = json_object_get(gs, "stats");
	json_int_t last = json_integer_value(json_object_get(gs, "last-update"));
	int64_t age = (int64_t)time(NULL) - (int64_t)last;

	/* last-update is wall-clock seconds: bring it onto our monotonic clock */
	if (last <= 0)
		s->updated_ms = MEMD_NONE;
	else
		s->updated_ms = age <= 0 ? now_ms : (uint64_t)age * 1000 >= now_ms ? 1 : now_ms - (uint64_t)age * 1000;
	s->free = u64_of(st, "stat-free-memory");
	s->available = u64_of(st, "stat-available-memory");
	s->caches = u64_of(st, "stat-disk-caches");
	s->major_faults = u64_of(st, "stat-major-faults");
	s->swap_in = u64_of(st, "stat-swap-in");
	s->oom_kills = u64_of(st, "stat-oom-kills");
	s->alloc_stalls = u64_of(st, "stat-alloc-stalls");
}

static void sample_mm(struct memd_vm *vm, json_t *mm)
{
	struct memd_vm_in *in = &vm->in;
	uint64_t resident = u64_of(mm, "host-resident"), zero = u64_of(mm, "zero-pages");
	uint64_t target = u64_of(mm, "resident-target");

	in->ram = u64_of(mm, "guest-ram");
	vm->compressed = u64_of(mm, "compressed-bytes");
	in->resident = resident == MEMD_NONE ? MEMD_NONE
		     : resident + (vm->compressed == MEMD_NONE ? 0 : vm->compressed);
	in->saved_reported = u64_of(mm, "reported-bytes");
	in->saved_zero = zero == MEMD_NONE ? MEMD_NONE : zero << 12;
	in->saved_shared = u64_of(mm, "shared-bytes-saved");
	in->saved_compressed = MEMD_NONE;
	if (vm->compressed != MEMD_NONE && u64_of(mm, "compressed-pages") != MEMD_NONE) {
		uint64_t orig = u64_of(mm, "compressed-pages") << 12;

		in->saved_compressed = orig > vm->compressed ? orig - vm->compressed : 0;
	}
	in->refault_rate = u64_of(mm, "refault-rate");
	{
		static const uint32_t secs[MEMD_IDLE_N] = MEMD_IDLE_SECONDS_INIT;
		json_t *idle = json_object_get(mm, "idle-bytes");

		for (int k = 0; k < MEMD_IDLE_N; k++) {
			char key[16];

			snprintf(key, sizeof(key), "%us", secs[k]);
			in->idle[k] = idle ? u64_of(idle, key) : MEMD_NONE;
		}
	}
	/* the VM's own word wins over ours when it reports its target */
	if (json_object_get(mm, "resident-target"))
		in->resident_target = target == 0 ? MEMD_NONE : target;
}

static int vm_sample(struct memd *d, struct memd_vm *vm, uint64_t now_ms, char *err, size_t errlen)
{
	struct memd_vm_in *in = &vm->in;
	json_t *ret;
	int r;

	vm->sampled = false;
	in->id = vm->id;
	in->name = vm->name;
	in->kind = MEMD_VM_MINIVMM;
	in->floor = memd_opts_floor(&d->o, vm->name);
	in->weight = memd_opts_weight(&d->o, vm->name);
	r = exec(vm, "query-memory-manager", NULL, &ret, err, errlen);
	if (r == -EPROTO) {
		/* not a minivmm (QEMU): its size from the generic query */
		json_t *m;

		r = exec(vm, "query-memory-size-summary", NULL, &m, err, errlen);
		if (r)
			return r;
		ret = json_pack("{s:O}", "guest-ram", json_object_get(m, "base-memory"));
		json_decref(m);
	}
	if (r)
		return r;
	sample_mm(vm, ret);
	json_decref(ret);
	if (in->ram == MEMD_NONE || in->ram == 0) {
		snprintf(err, errlen, "the VM did not say its guest RAM size");
		return -EBADMSG;
	}
	in->balloon_actual = in->ram;
	if (vm->has_balloon) {
		r = exec(vm, "query-balloon", NULL, &ret, err, errlen);
		if (r && r != -EPROTO)
			return r;
		if (!r) {
			uint64_t a = u64_of(ret, "actual");

			in->balloon_actual = a == MEMD_NONE ? in->ram : a;
			json_decref(ret);
		}
		r = exec(vm, "qom-get", json_pack("{s:s,s:s}", "path", BALLOON_QOM, "property", "guest-stats"),
			 &ret, err, errlen);
		if (r && r != -EPROTO)
			return r;
		memset(&in->stats, 0xff, sizeof(in->stats));
		if (!r) {
			sample_stats(vm, ret, now_ms);
			json_decref(ret);
		}
	} else {
		memset(&in->stats, 0xff, sizeof(in->stats));
	}
	vm->rss = MEMD_NONE;
	if (vm->pid > 0 && memd_read_rss(vm->pid, &vm->rss) < 0)
		vm->rss = MEMD_NONE;
	vm->sampled = true;
	return 0;
}

static int vm_apply(struct memd *d, struct memd_vm *vm, const struct memd_vm_decision *dec, char *did,
		    size_t didlen, char *err, size_t errlen)
{
	char b[32];
	json_t *ret;
	int r;

	did[0] = '\0';
	if (dec->balloon == MEMD_SET && vm->has_balloon) {
		r = exec(vm, "balloon", json_pack("{s:I}", "value", (json_int_t)dec->balloon_target), &ret, err, errlen);
		if (r)
			return r;
		json_decref(ret);
		vm->in.balloon_target = dec->balloon_target;
		snprintf(did, didlen, "balloon %s", memd_size(dec->balloon_target, b));
	}
	if (dec->resident != MEMD_KEEP && vm->in.resident_target_ok) {
		uint64_t bytes = dec->resident == MEMD_SET ? dec->resident_target : 0;
		size_t n = strlen(did);

		r = exec(vm, "mm-set-resident-target", json_pack("{s:I}", "bytes", (json_int_t)bytes), &ret, err, errlen);
		if (r == -EPROTO) {
			vm->in.resident_target_ok = false;
			if (!vm->told_no_resident)
				memd_log_msg(d, "VM %s: mm-set-resident-target refused (%s): the resident tier is "
					     "unavailable for it", vm->name, err);
			vm->told_no_resident = true;
			return 0;
		}
		if (r)
			return r;
		json_decref(ret);
		vm->in.resident_target = bytes ? bytes : MEMD_NONE;
		snprintf(did + n, didlen - n, "%sresident target %s", n ? ", " : "",
			 bytes ? memd_size(bytes, b) : "cleared");
	}
	return 0;
}

static bool vm_connected(const struct memd_vm *vm)
{
	return vm->qc != NULL;
}

static void vm_describe(const struct memd_vm *vm, json_t *o)
{
	json_object_set_new(o, "socket", json_string(vm->path));
}

const struct memd_backend memd_backend_minivmm = {
	.kind = MEMD_VM_MINIVMM,
	.name = "minivmm",
	.connect = vm_connect,
	.disconnect = vm_disconnect,
	.connected = vm_connected,
	.sample = vm_sample,
	.apply = vm_apply,
	.describe = vm_describe,
};

static bool is_socket(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

void memd_vm_discover(struct memd *d)
{
	const char *dir = d->o.run_dir ? d->o.run_dir : MEMD_DEFAULT_RUN_DIR;
	DIR *dp;
	struct dirent *de;

	/* a VM whose socket is gone has exited: minivmm removes it at exit */
	for (int i = d->nvm - 1; i >= 0; i--)
		if (d->vm[i]->discovered && memd_vm_be(d->vm[i]) == &memd_backend_minivmm && !is_socket(d->vm[i]->path))
			memd_remove_vm(d, i, "its socket left the run directory (the VM exited)");
	dp = opendir(dir);
	if (!dp)
		return;  /* no VM has been started with --name yet */
	while ((de = readdir(dp))) {
		size_t n = strlen(de->d_name);
		char path[4096], name[MEMD_NAME_MAX];
		bool known = false;

		if (n <= 4 || strcmp(de->d_name + n - 4, ".qmp") || n - 4 >= sizeof(name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		for (int i = 0; i < d->nvm && !known; i++)
			known = memd_vm_be(d->vm[i]) == &memd_backend_minivmm && !strcmp(d->vm[i]->path, path);
		if (known || !is_socket(path))
			continue;
		memcpy(name, de->d_name, n - 4);
		name[n - 4] = '\0';
		memd_add_vm(d, path, name, true);
	}
	closedir(dp);
}
