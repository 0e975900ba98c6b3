/*
 * Unit tests of minivmm-memd's libvirt backend against libvirt's test
 * driver (test:///default: no daemon; setMemory changes "actual" at once,
 * memoryStats are synthetic, last_update is a constant from long ago): the
 * XML it reads (memballoon and stats period; minivmm metadata in both the
 * namespaced and the stripped form virDomainGetMetadata returns, units,
 * bad values), picking the running domains up as VMs of kind libvirt,
 * setting a missing stats period (said once), sampling every tag, setting
 * the balloon target live and libvirt's error for a target above the
 * maximum, lifecycle events through the daemon's own loop (a domain
 * created elsewhere is picked up, a domain without a memballoon is
 * observed only and said once, a destroyed one is dropped), floors and
 * weights from metadata below --vm-floor/--vm-weight, a URI that cannot be
 * opened (libvirt's message and what to check, never fatal) and a lost
 * connection that is reconnected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "balloon/memd/memd.h"
#include "vmm/lib/loop.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static void test_parse_balloon(void **state)
{
	bool b;
	int p;

	assert_int_equal(memd_lv_parse_balloon("<domain><devices><memballoon model='virtio'><stats period='5'/>"
					       "</memballoon></devices></domain>", &b, &p), 0);
	assert_true(b);
	assert_int_equal(p, 5);
	assert_int_equal(memd_lv_parse_balloon("<domain><devices><memballoon model='virtio-transitional'/>"
					       "</devices></domain>", &b, &p), 0);
	assert_true(b);
	assert_int_equal(p, 0);
	assert_int_equal(memd_lv_parse_balloon("<domain><devices><memballoon model='none'/></devices></domain>",
					       &b, &p), 0);
	assert_false(b);
	assert_int_equal(memd_lv_parse_balloon("<domain><devices/></domain>", &b, &p), 0);
	assert_false(b);
	assert_int_equal(memd_lv_parse_balloon("<domain><devices>", &b, &p), -EINVAL);
}

static void test_parse_metadata(void **state)
{
	static const struct { const char *xml; int r; uint64_t floor; uint32_t weight; const char *words; } t[] = {
		/* as the domain XML holds it */
		{ "<minivmm:config xmlns:minivmm='urn:minivmm:domain:1'><minivmm:memd floor='512' unit='MiB' "
		  "weight='2'/></minivmm:config>", 0, 512 * MiB, 2, NULL },
		/* as virDomainGetMetadata returns it: the namespace stripped */
		{ "<config>\n  <memd floor=\"128\" unit=\"MiB\" weight=\"1\"/>\n</config>", 0, 128 * MiB, 1, NULL },
		{ "<config><memd floor='1048576'/></config>", 0, GiB, 0, NULL },          /* KiB by default */
		{ "<config><memd floor='2' unit='GiB'/></config>", 0, 2 * GiB, 0, NULL },
		{ "<config><memd weight='300'/></config>", 0, 0, 300, NULL },
		{ "<config><mm>cold-age=10</mm></config>", 0, 0, 0, NULL },
		/* another namespace's memd is not ours */
		{ "<x:config xmlns:x='urn:example'><x:memd floor='512'/></x:config>", 0, 0, 0, NULL },
		{ "<config><memd floor='512' unit='parsecs'/></config>", -EINVAL, 0, 0, "not one of libvirt's units" },
		{ "<config><memd floor='0'/></config>", -EINVAL, 0, 0, "not a size above 0" },
		{ "<config><memd floor='-5'/></config>", -EINVAL, 0, 0, "not a size above 0" },
		{ "<config><memd floor='99999999999999999999' unit='GiB'/></config>", -EINVAL, 0, 0, "not a size" },
		{ "<config><memd weight='0'/></config>", -EINVAL, 0, 0, "from 1 to 10000" },
		{ "<config><memd weight='2x'/></config>", -EINVAL, 0, 0, "from 1 to 10000" },
		{ "<config><memd", -EINVAL, 0, 0, "is not XML" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t floor = 7;
		uint32_t weight = 7;
		char err[300] = "";

		assert_int_equal(memd_lv_parse_metadata(t[i].xml, &floor, &weight, err, sizeof(err)), t[i].r);
		assert_int_equal(floor, t[i].floor);
		assert_int_equal(weight, t[i].weight);
		if (t[i].words) {
			if (!strstr(err, t[i].words))
				fail_msg("%s: '%s' lacks '%s'", t[i].xml, err, t[i].words);
		}
	}
}

/* ---- a daemon on test:///default ---- */

struct fix {
	struct memd d;
	char log[64];
	virConnectPtr own;          /* the test's own connection: the domains' "other client" */
};

static struct memd_vm *vm_named(struct memd *d, const char *name)
{
	for (int i = 0; i < d->nvm; i++)
		if (!strcmp(d->vm[i]->name, name))
			return d->vm[i];
	return NULL;
}

/* Runs the daemon's loop (libvirt's event dispatch included) for about ms. */
static void pump(struct memd *d, int ms)
{
	for (int i = 0; i < ms / 10; i++)
		loop_run_once(d->loop, 10);
}

static int count(const char *path, const char *words)
{
	char *text = NULL;
	int n = 0;

	assert_int_equal(memd_read_text(path, 1 << 24, &text), 0);
	for (const char *p = text; (p = strstr(p, words)); p++)
		n++;
	free(text);
	return n;
}

static struct fix *start(const char *uri, const char *extra_key, const char *extra_val)
{
	struct fix *f = calloc(1, sizeof(*f));
	char err[700] = "";

	assert_non_null(f);
	memd_opts_init(&f->d.o);
	snprintf(f->log, sizeof(f->log), "/tmp/memd-lv-test-%d.jsonl", (int)getpid());
	unlink(f->log);
	assert_int_equal(memd_opts_set(&f->d.o, "libvirt", uri, err, sizeof(err)), 0);
	assert_int_equal(memd_opts_set(&f->d.o, "budget", "64G", err, sizeof(err)), 0);
	assert_int_equal(memd_opts_set(&f->d.o, "run-dir", "/nonexistent/memd-test", err, sizeof(err)), 0);
	assert_int_equal(memd_opts_set(&f->d.o, "log", f->log, err, sizeof(err)), 0);
	/* observe only: the test moves the balloons itself */
	assert_int_equal(memd_opts_set(&f->d.o, "policy", "none", err, sizeof(err)), 0);
	if (extra_key)
		assert_int_equal(memd_opts_set(&f->d.o, extra_key, extra_val, err, sizeof(err)), 0);
	f->d.sig_fd = -1;
	assert_int_equal(memd_start(&f->d, err, sizeof(err)), 0);
	return f;
}

static void stop(struct fix *f)
{
	if (f->own)
		virConnectClose(f->own);
	memd_stop(&f->d);
	unlink(f->log);
	free(f);
}

static void test_test_driver_domain_sampled_and_ballooned(void **state)
{
	struct fix *f = start("test:///default", NULL, NULL);
	struct memd_vm *vm = vm_named(&f->d, "test");
	struct memd_vm_decision dec = { .balloon = MEMD_SET, .balloon_target = GiB };
	char did[160], err[400];

	assert_non_null(vm);
	assert_true(memd_lv_is_open(memd_lv_find(&f->d, "test:///default")));
	assert_ptr_equal(vm->be, &memd_backend_libvirt);
	assert_true(memd_vm_connected(vm));
	assert_true(vm->sampled);
	assert_int_equal(vm->in.kind, MEMD_VM_LIBVIRT);
	assert_int_equal(vm->in.ram, 8 * GiB);
	assert_true(vm->has_balloon);
	/* the test driver's domain has no stats period: set, and said once however often it reconnects */
	assert_int_equal(count(f->log, "had no stats period"), 1);
	/* the synthetic stats: rss = unused = usable = current / 2; last_update long ago = stale */
	assert_int_equal(vm->rss, vm->in.balloon_actual / 2);
	assert_int_equal(vm->in.stats.free, vm->in.balloon_actual / 2);
	assert_int_equal(vm->in.stats.available, vm->in.balloon_actual / 2);
	assert_int_equal(vm->in.stats.caches, vm->in.balloon_actual / 8);
	assert_int_equal(vm->in.stats.oom_kills, MEMD_NONE);
	assert_false(memd_stats_fresh(&f->d.cfg, &vm->in, memd_now_ms()));
	assert_false(vm->in.resident_target_ok);

	/* the balloon target, live: the test driver's actual follows at once */
	assert_int_equal(memd_backend_libvirt.apply(&f->d, vm, &dec, did, sizeof(did), err, sizeof(err)), 0);
	assert_string_equal(did, "balloon 1 GiB");
	assert_int_equal(memd_backend_libvirt.sample(&f->d, vm, memd_now_ms(), err, sizeof(err)), 0);
	assert_int_equal(vm->in.balloon_actual, GiB);
	assert_int_equal(vm->in.balloon_target, GiB);
	/* above the maximum: libvirt's own message, an error for the daemon (no crash, no exit) */
	dec.balloon_target = 16 * GiB;
	assert_true(memd_backend_libvirt.apply(&f->d, vm, &dec, did, sizeof(did), err, sizeof(err)) < 0);
	print_message("above the maximum: %s\n", err);
	assert_non_null(strstr(err, "virDomainSetMemoryFlags"));
	assert_int_equal(vm->in.balloon_target, GiB);

	/* query-vms shows it as kind libvirt with every tag */
	json_t *vms = memd_vms_json(&f->d), *o = json_array_get(vms, 0), *lv = json_object_get(o, "libvirt");

	assert_string_equal(json_string_value(json_object_get(o, "kind")), "libvirt");
	assert_string_equal(json_string_value(json_object_get(o, "uri")), "test:///default");
	assert_int_equal(json_object_size(json_object_get(lv, "memory-stats")), 13);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(lv, "memory-stats"), "actual")),
			 GiB >> 10);
	json_decref(vms);
	/* set it back for the other tests: the test driver's state lives as long as the process */
	dec.balloon_target = 2 * GiB;
	assert_int_equal(memd_backend_libvirt.apply(&f->d, vm, &dec, did, sizeof(did), err, sizeof(err)), 0);
	stop(f);
}

static const char dom_xml[] =
	"<domain type='test'><name>%s</name><memory unit='MiB'>1024</memory>"
	"<metadata><minivmm:config xmlns:minivmm='urn:minivmm:domain:1'>"
	"<minivmm:memd floor='%s' unit='MiB' weight='7'/></minivmm:config></metadata>"
	"<os><type>hvm</type></os><devices>%s</devices></domain>";

static virDomainPtr create(virConnectPtr c, const char *name, const char *floor, const char *devices)
{
	char xml[1024];
	virDomainPtr dom;

	snprintf(xml, sizeof(xml), dom_xml, name, floor, devices);
	dom = virDomainCreateXML(c, xml, 0);
	assert_non_null(dom);
	return dom;
}

static void test_lifecycle_events_pick_up_and_drop(void **state)
{
	struct fix *f = start("test:///default", "vm-floor", "pinned=300M");
	virDomainPtr a, b, c;

	f->own = virConnectOpen("test:///default");
	assert_non_null(f->own);
	a = create(f->own, "withballoon", "512", "<memballoon model='virtio'><stats period='3'/></memballoon>");
	b = create(f->own, "noballoon", "256", "<memballoon model='none'/>");
	c = create(f->own, "pinned", "512", "<memballoon model='virtio'/>");
	/* the events arrive through the daemon's loop: no tick, no listing */
	pump(&f->d, 300);
	assert_non_null(vm_named(&f->d, "withballoon"));
	assert_non_null(vm_named(&f->d, "noballoon"));
	assert_non_null(vm_named(&f->d, "pinned"));
	for (int i = 0; i < 3; i++)
		memd_tick(&f->d, false);
	assert_true(vm_named(&f->d, "withballoon")->has_balloon);
	assert_false(vm_named(&f->d, "noballoon")->has_balloon);
	assert_int_equal(count(f->log, "domain noballoon has no virtio memballoon: it is observed only"), 1);
	/* a period in the XML is left alone */
	assert_int_equal(count(f->log, "domain withballoon: its memballoon had no stats period"), 0);
	/* floors and weights: the domain's metadata, below an option naming it */
	assert_int_equal(vm_named(&f->d, "withballoon")->in.floor, 512 * MiB);
	assert_int_equal(vm_named(&f->d, "withballoon")->in.weight, 7);
	assert_int_equal(vm_named(&f->d, "noballoon")->in.floor, 256 * MiB);
	assert_int_equal(vm_named(&f->d, "pinned")->in.floor, 300 * MiB);
	assert_int_equal(vm_named(&f->d, "pinned")->in.weight, 7);
	/* a balloon decision for the observed-only domain sends nothing */
	{
		struct memd_vm_decision dec = { .balloon = MEMD_SET, .balloon_target = 128 * MiB };
		char did[160] = "x", err[300];

		assert_int_equal(memd_backend_libvirt.apply(&f->d, vm_named(&f->d, "noballoon"), &dec, did,
							    sizeof(did), err, sizeof(err)), 0);
		assert_string_equal(did, "");
	}
	/* destroyed: dropped on the event */
	assert_int_equal(virDomainDestroy(a), 0);
	assert_int_equal(virDomainDestroy(b), 0);
	pump(&f->d, 300);
	assert_null(vm_named(&f->d, "withballoon"));
	assert_null(vm_named(&f->d, "noballoon"));
	assert_non_null(vm_named(&f->d, "pinned"));
	assert_int_equal(count(f->log, "libvirt lifecycle event"), 2);
	assert_int_equal(virDomainDestroy(c), 0);
	virDomainFree(a);
	virDomainFree(b);
	virDomainFree(c);
	stop(f);
}

static void test_lost_connection_is_reconnected(void **state)
{
	struct fix *f = start("test:///default", NULL, NULL);
	struct memd_lv *lv = memd_lv_find(&f->d, "test:///default");
	struct memd_vm *vm;

	assert_non_null(vm_named(&f->d, "test"));
	memd_lv_lost(lv, "the test says so");
	assert_false(memd_lv_is_open(lv));
	memd_tick(&f->d, false);
	vm = vm_named(&f->d, "test");
	assert_non_null(vm);
	/* its domains wait, reported, until the connection is back; the daemon goes on */
	assert_false(memd_vm_connected(vm));
	assert_non_null(strstr(vm->error, "is down (reconnecting)"));
	assert_int_equal(count(f->log, "libvirt connection test:///default lost"), 1);
	/* back after the first back-off step (2 s) */
	for (int i = 0; i < 30 && !memd_vm_connected(vm); i++) {
		pump(&f->d, 100);
		memd_tick(&f->d, false);
		vm = vm_named(&f->d, "test");
	}
	assert_true(memd_lv_is_open(lv));
	assert_true(memd_vm_connected(vm));
	assert_true(vm->sampled);
	assert_int_equal(count(f->log, "libvirt connection test:///default open again"), 1);
	stop(f);
}

static void test_uri_that_cannot_be_opened(void **state)
{
	struct fix *f = start("test:///nonexistent/memd-test.xml", NULL, NULL);
	struct memd_lv *lv = memd_lv_find(&f->d, "test:///nonexistent/memd-test.xml");

	assert_non_null(lv);
	assert_false(memd_lv_is_open(lv));
	assert_int_equal(f->d.nvm, 0);
	/* libvirt's own message, then what to check; said once however often it is retried */
	assert_int_equal(count(f->log, "cannot open libvirt connection test:///nonexistent/memd-test.xml: "), 1);
	assert_int_equal(count(f->log, "failed to parse xml document '/nonexistent/memd-test.xml'"), 1);
	assert_int_equal(count(f->log, "Check that libvirtd"), 1);
	memd_tick(&f->d, false);
	assert_int_equal(count(f->log, "Check that libvirtd"), 1);
	stop(f);
}

static void test_libvirt_option(void **state)
{
	struct memd_opts o;
	char err[400];

	memd_opts_init(&o);
	assert_int_equal(memd_opts_set(&o, "libvirt", "qemu:///system", err, sizeof(err)), 0);
	assert_int_equal(memd_opts_set(&o, "libvirt", "test:///default", err, sizeof(err)), 0);
	/* the same URI twice would manage its domains twice */
	assert_int_equal(memd_opts_set(&o, "libvirt", "qemu:///system", err, sizeof(err)), 0);
	assert_int_equal(o.nlibvirt, 2);
	assert_int_equal(memd_opts_set(&o, "libvirt", "", err, sizeof(err)), -EINVAL);
	assert_int_equal(memd_opts_set(&o, "libvirt", "localhost", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not a libvirt connection URI"));
	assert_int_equal(memd_opts_parse(&o, "libvirt = qemu+ssh://h/system\n", "t.conf", err, sizeof(err)), 0);
	assert_int_equal(o.nlibvirt, 3);
	memd_opts_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_balloon),
		cmocka_unit_test(test_parse_metadata),
		cmocka_unit_test(test_libvirt_option),
		cmocka_unit_test(test_test_driver_domain_sampled_and_ballooned),
		cmocka_unit_test(test_lifecycle_events_pick_up_and_drop),
		cmocka_unit_test(test_lost_connection_is_reconnected),
		cmocka_unit_test(test_uri_that_cannot_be_opened),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
