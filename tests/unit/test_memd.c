/*
 * Unit tests of minivmm-memd around its policy core: options and the config
 * file (key = value lines and JSON, sizes, floors and weights by name and
 * for "*", every error saying what was wrong), the parsers of the kernel's
 * text (/proc/meminfo, PSI, cgroup values, smaps_rollup) on samples,
 * cgroup directories that lack the memory controller, the control
 * protocol under hostile input (malformed JSON, non-objects, unknown
 * commands, commands before negotiation, NUL bytes, deep nesting), the
 * budget refused below the floors, and the metrics text.
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

#include "balloon/memd/memd.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static void test_opts_command_line_words(void **state)
{
	struct memd_opts o;
	char err[512];

	memd_opts_init(&o);
	assert_int_equal(o.source, MEMD_SRC_HOST);
	assert_int_equal(o.reserve, MEMD_DEFAULT_RESERVE);
	assert_int_equal(memd_opts_set(&o, "budget", "8G", err, sizeof(err)), 0);
	assert_int_equal(o.source, MEMD_SRC_BUDGET);
	assert_int_equal(o.budget, 8 * GiB);
	assert_int_equal(memd_opts_set(&o, "vm", "unix:/tmp/a.qmp", err, sizeof(err)), 0);
	assert_int_equal(memd_opts_set(&o, "vm", "/tmp/b.qmp", err, sizeof(err)), 0);
	assert_int_equal(o.nvm, 2);
	assert_string_equal(o.vm[0], "/tmp/a.qmp");
	assert_string_equal(o.vm[1], "/tmp/b.qmp");
	assert_int_equal(memd_opts_set(&o, "vm-floor", "db=1G", err, sizeof(err)), 0);
	assert_int_equal(memd_opts_set(&o, "vm-floor", "*=128M", err, sizeof(err)), 0);
	assert_int_equal(memd_opts_set(&o, "vm-weight", "db=300", err, sizeof(err)), 0);
	assert_int_equal(memd_opts_floor(&o, "db"), GiB);
	assert_int_equal(memd_opts_floor(&o, "web"), 128 * MiB);
	assert_int_equal(memd_opts_weight(&o, "db"), 300);
	assert_int_equal(memd_opts_weight(&o, "web"), 0);
	/* "*" is the default, not a VM: it does not count in the floors' sum */
	assert_int_equal(memd_opts_floor_sum(&o), GiB);
	assert_int_equal(memd_opts_set(&o, "interval", "0.5", err, sizeof(err)), 0);
	assert_int_equal(o.interval_ms, 500);
	assert_int_equal(memd_opts_set(&o, "policy", "mom", err, sizeof(err)), 0);
	assert_string_equal(o.policy, "mom");
	assert_int_equal(memd_opts_set(&o, "cgroup", "vms", err, sizeof(err)), 0);
	assert_int_equal(o.source, MEMD_SRC_CGROUP);
	memd_opts_free(&o);
}

static void test_opts_errors_say_what_is_accepted(void **state)
{
	static const struct { const char *key, *val, *words; } bad[] = {
		{ "budget", "lots", "is not a size" },
		{ "budget", "0", "above 0" },
		{ "budget", "99999999999999999999G", "is not a size" },
		{ "reserve", "-1G", "is not a size" },
		{ "vm-floor", "db", "is not NAME=SIZE" },
		{ "vm-floor", "=1G", "is not NAME=SIZE" },
		{ "vm-floor", "db=big", "is not a size" },
		{ "vm-weight", "db=0", "from 1 to 10000" },
		{ "vm-weight", "db=x", "from 1 to 10000" },
		{ "policy", "greedy", "minivmm, mom or none" },
		{ "interval", "0", "from 0.05 to 60" },
		{ "interval", "nan", "from 0.05 to 60" },
		{ "vm", "unix:", "path" },
		{ "frobnicate", "1", "unknown option" },
	};
	struct memd_opts o;
	char err[512];

	memd_opts_init(&o);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_true(memd_opts_set(&o, bad[i].key, bad[i].val, err, sizeof(err)) < 0);
		if (!strstr(err, bad[i].words))
			fail_msg("--%s %s: '%s' lacks '%s'", bad[i].key, bad[i].val, err, bad[i].words);
	}
	/* a name longer than a name may be */
	char name[200];
	memset(name, 'a', 150);
	strcpy(name + 150, "=1G");
	assert_true(memd_opts_set(&o, "vm-floor", name, err, sizeof(err)) < 0);
	memd_opts_free(&o);
}

static void test_config_lines(void **state)
{
	struct memd_opts o;
	char err[512];
	const char *text =
		"# minivmm-memd.conf\n"
		"budget = 6G\n"
		"  policy=none   # observe first\n"
		"\n"
		"vm = unix:/run/x.qmp\n"
		"vm-floor = db=512M\n"
		"vm-weight=db=200\r\n"
		"metrics-file = /tmp/m.prom\n";

	memd_opts_init(&o);
	assert_int_equal(memd_opts_parse(&o, text, "test.conf", err, sizeof(err)), 0);
	assert_int_equal(o.budget, 6 * GiB);
	assert_string_equal(o.policy, "none");
	assert_int_equal(o.nvm, 1);
	assert_string_equal(o.vm[0], "/run/x.qmp");
	assert_int_equal(memd_opts_floor(&o, "db"), 512 * MiB);
	assert_int_equal(memd_opts_weight(&o, "db"), 200);
	assert_string_equal(o.metrics, "/tmp/m.prom");

	assert_true(memd_opts_parse(&o, "budget = 1G\nnonsense\n", "c.conf", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "c.conf:2:"));
	assert_non_null(strstr(err, "key = value"));
	assert_true(memd_opts_parse(&o, "budget = 1G\n\npolicy = fast\n", "c.conf", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "c.conf:3:"));
	assert_non_null(strstr(err, "minivmm, mom or none"));
	assert_true(memd_opts_parse(&o, "config = /etc/other\n", "c.conf", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "may not load another"));
	memd_opts_free(&o);
}

static void test_config_json(void **state)
{
	struct memd_opts o;
	char err[512];
	const char *text =
		"{\"cgroup\": \"/sys/fs/cgroup/memory/vms\", \"reserve\": \"1G\", \"interval\": 2,"
		" \"vm\": [\"unix:/a.qmp\", \"/b.qmp\"],"
		" \"vm-floor\": {\"web\": \"256M\"},"
		" \"vms\": {\"db\": {\"floor\": \"1G\", \"weight\": 300}, \"*\": {\"floor\": 134217728}}}";

	memd_opts_init(&o);
	assert_int_equal(memd_opts_parse(&o, text, "c.json", err, sizeof(err)), 0);
	assert_int_equal(o.source, MEMD_SRC_CGROUP);
	assert_string_equal(o.cgroup, "/sys/fs/cgroup/memory/vms");
	assert_int_equal(o.reserve, GiB);
	assert_int_equal(o.interval_ms, 2000);
	assert_int_equal(o.nvm, 2);
	assert_int_equal(memd_opts_floor(&o, "web"), 256 * MiB);
	assert_int_equal(memd_opts_floor(&o, "db"), GiB);
	assert_int_equal(memd_opts_weight(&o, "db"), 300);
	assert_int_equal(memd_opts_floor(&o, "other"), 128 * MiB);

	static const struct { const char *text, *words; } bad[] = {
		{ "{\"budget\": ", "c.json" },
		{ "[1, 2]", "one object" },
		{ "{\"budget\": true}", "string or a number" },
		{ "{\"vms\": {\"db\": {\"floor\": \"1G\", \"colour\": 1}}}", "floor and weight only" },
		{ "{\"vms\": {\"db\": 5}}", "floor and/or weight" },
		{ "{\"budget\": \"-3\"}", "is not a size" },
		{ "{\"frob\": 1}", "unknown option" },
		{ "{\"vm\": [{}]}", "strings or numbers" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_true(memd_opts_parse(&o, bad[i].text, "c.json", err, sizeof(err)) < 0);
		if (!strstr(err, bad[i].words))
			fail_msg("%s: '%s' lacks '%s'", bad[i].text, err, bad[i].words);
	}
	memd_opts_free(&o);
}

static void test_config_file_missing(void **state)
{
	struct memd_opts o;
	char err[512];

	memd_opts_init(&o);
	assert_int_equal(memd_opts_set(&o, "config", "/nonexistent/memd.conf", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "cannot read config file /nonexistent/memd.conf"));
	memd_opts_free(&o);
}

static void test_parse_meminfo(void **state)
{
	const char *text =
		"MemTotal:       24732168 kB\n"
		"MemFree:        19502828 kB\n"
		"MemAvailable:   21862688 kB\n"
		"Buffers:           58748 kB\n"
		"Cached:          2487916 kB\n"
		"SwapCached:            0 kB\n"
		"SwapTotal:             0 kB\n"
		"HugePages_Total:       0\n";
	struct memd_meminfo m;

	assert_int_equal(memd_parse_meminfo(text, &m), 0);
	assert_int_equal(m.total, 24732168ULL << 10);
	assert_int_equal(m.free, 19502828ULL << 10);
	assert_int_equal(m.available, 21862688ULL << 10);
	assert_int_equal(m.buffers, 58748ULL << 10);
	/* "Cached:" is not "SwapCached:" */
	assert_int_equal(m.cached, 2487916ULL << 10);
	assert_int_equal(m.swap_total, 0);
	/* an old kernel without MemAvailable: missing, not zero */
	assert_int_equal(memd_parse_meminfo("MemTotal: 1024 kB\nMemFree: 512 kB\n", &m), 0);
	assert_true(m.available == MEMD_NONE);
	assert_int_equal(memd_parse_meminfo("garbage\n", &m), -EINVAL);
	assert_int_equal(memd_parse_meminfo("", &m), -EINVAL);
}

static void test_parse_psi(void **state)
{
	struct memd_psi p;

	assert_int_equal(memd_parse_psi("some avg10=12.50 avg60=3.00 avg300=1.00 total=123456\n"
					"full avg10=4.25 avg60=1.00 avg300=0.50 total=6789\n", &p), 0);
	assert_true(p.some_avg10 == 12.50);
	assert_true(p.full_avg10 == 4.25);
	assert_int_equal(p.some_total, 123456);
	assert_int_equal(p.full_total, 6789);
	/* kernels before 5.13 have no "full" line for the host */
	assert_int_equal(memd_parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", &p), 0);
	assert_true(p.full_avg10 == 0);
	assert_int_equal(memd_parse_psi("full avg10=1.00 avg60=0.00 avg300=0.00 total=0\n", &p), -EINVAL);
	assert_int_equal(memd_parse_psi("some avg10=250.00 avg60=0.00 avg300=0.00 total=0\n", &p), -EINVAL);
	assert_int_equal(memd_parse_psi("", &p), -EINVAL);
}

static void test_parse_cgroup_and_rollup(void **state)
{
	uint64_t v;

	assert_int_equal(memd_parse_cgroup_value("536870912\n", &v), 0);
	assert_int_equal(v, 512 * MiB);
	assert_int_equal(memd_parse_cgroup_value("max\n", &v), 0);
	assert_true(v == MEMD_NONE);
	/* v1's "unlimited" is LONG_MAX rounded down to a page */
	assert_int_equal(memd_parse_cgroup_value("9223372036854771712\n", &v), 0);
	assert_true(v == MEMD_NONE);
	/* the OOM killer's count: v1 memory.oom_control, v2 memory.events */
	assert_int_equal(memd_parse_oom_kill("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(memd_parse_oom_kill("low 0\nhigh 12\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(memd_parse_oom_kill("oom_kill_disable 0\nunder_oom 0\n", &v), -ENOENT);
	assert_int_equal(memd_parse_cgroup_value("12x\n", &v), -EINVAL);
	assert_int_equal(memd_parse_cgroup_value("-1\n", &v), -EINVAL);
	assert_int_equal(memd_parse_cgroup_value("", &v), -EINVAL);

	assert_int_equal(memd_parse_rollup("55b525dbd000-7fff485d6000 ---p 00000000 00:00 0  [rollup]\n"
					   "Rss:                1780 kB\nPss:  431 kB\n"
					   "Shared_Hugetlb:        0 kB\nPrivate_Hugetlb:   262144 kB\n", &v), 0);
	assert_int_equal(v, (1780ULL + 262144) << 10);
	assert_int_equal(memd_parse_rollup("Pss: 1 kB\n", &v), -EINVAL);
}

static void test_cgroup_without_memory_says_what_it_is(void **state)
{
	struct memd_cgroup cg;
	char err[600], dir[] = "/tmp/memd-cg-XXXXXX";

	/* a plain directory is no cgroup */
	assert_non_null(mkdtemp(dir));
	assert_int_equal(memd_cgroup_open(dir, &cg, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "is not a cgroup directory"));
	rmdir(dir);
	assert_true(memd_cgroup_open("no-such-cgroup-anywhere", &cg, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "no such directory"));
	/* this machine's v2 hierarchy has no memory controller (PLATFORM.md); say which version */
	if (access("/sys/fs/cgroup/unified", F_OK) == 0 &&
	    access("/sys/fs/cgroup/unified/memory.max", F_OK) != 0) {
		assert_int_equal(memd_cgroup_open("/sys/fs/cgroup/unified", &cg, err, sizeof(err)), -ENOTSUP);
		print_message("v2 without memory: %s\n", err);
		assert_non_null(strstr(err, "cgroup v2"));
		assert_non_null(strstr(err, "without the memory controller"));
	}
	if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0) {
		uint64_t usage, limit;

		assert_int_equal(memd_cgroup_open("/sys/fs/cgroup/memory", &cg, err, sizeof(err)), 0);
		assert_int_equal(cg.version, 1);
		assert_int_equal(memd_cgroup_read(&cg, &usage, &limit), 0);
		assert_true(usage > 0);
		memd_cgroup_close(&cg);
	}
}

/* A daemon with no VMs and no loop, enough for the control protocol. */
static struct memd *daemon_new(void)
{
	struct memd *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	memd_opts_init(&d->o);
	memd_config_default(&d->cfg);
	assert_int_equal(memd_policy_new("minivmm", &d->cfg, &d->policy), 0);
	d->psi_fd = -1;
	d->host.budget = d->host.usage = MEMD_NONE;
	return d;
}

static void daemon_free(struct memd *d)
{
	memd_policy_free(d->policy);
	memd_opts_free(&d->o);
	free(d);
}

/* One line through the protocol: the error class, or "return". */
static const char *answer(struct memd *d, const char *line, size_t len, bool *neg, json_t **reply)
{
	json_t *r = memd_control_handle(d, line, len, neg);
	const char *cls;

	json_decref(*reply);
	*reply = r;
	if (!r)
		return NULL;
	if (json_object_get(r, "return"))
		return "return";
	cls = json_string_value(json_object_get(json_object_get(r, "error"), "class"));
	assert_non_null(cls);
	assert_non_null(json_string_value(json_object_get(json_object_get(r, "error"), "desc")));
	return cls;
}

#define ANSWER(s) answer(d, s, strlen(s), &neg, &reply)

/* A blank line is read within its length: the line is not NUL-terminated,
 * and a strspn() over it read on past its end (found by fuzz_memd_control;
 * ASan sees it with the line in a block of exactly its size). */
static void test_control_blank_line_bounded(void **state)
{
	static const char *const blanks[] = { " ", "   ", "\t\r", "" };
	struct memd *d = daemon_new();
	bool neg = false;

	for (size_t i = 0; i < sizeof(blanks) / sizeof(blanks[0]); i++) {
		size_t len = strlen(blanks[i]);
		char *line = malloc(len ? len : 1);
		assert_non_null(line);
		memcpy(line, blanks[i], len);
		assert_null(memd_control_handle(d, line, len, &neg));
		free(line);
	}
	/* blank, then a request: not blank */
	static const char req[] = "  {\"execute\": \"query-host\"}";
	char *line = malloc(sizeof(req) - 1);
	assert_non_null(line);
	memcpy(line, req, sizeof(req) - 1);
	json_t *r = memd_control_handle(d, line, sizeof(req) - 1, &neg);
	assert_non_null(r);       /* answered (negotiation expected first) */
	json_decref(r);
	free(line);
	daemon_free(d);
}

static void test_control_hostile_input(void **state)
{
	struct memd *d = daemon_new();
	json_t *reply = NULL;
	bool neg = false;
	char *deep, *big;

	/* before negotiation only qmp_capabilities, as QEMU does */
	assert_string_equal(ANSWER("{\"execute\": \"query-host\"}"), "CommandNotFound");
	assert_false(neg);
	assert_string_equal(ANSWER("{\"execute\": \"qmp_capabilities\", \"id\": 7}"), "return");
	assert_true(neg);
	assert_int_equal(json_integer_value(json_object_get(reply, "id")), 7);
	assert_string_equal(ANSWER("{\"execute\": \"qmp_capabilities\"}"), "CommandNotFound");

	assert_null(ANSWER(""));
	assert_null(ANSWER("   \r"));
	assert_string_equal(ANSWER("{"), "GenericError");
	assert_string_equal(ANSWER("{\"execute\": }"), "GenericError");
	assert_string_equal(ANSWER("[1,2,3]"), "GenericError");
	assert_string_equal(ANSWER("\"query-host\""), "GenericError");
	assert_string_equal(ANSWER("42"), "GenericError");
	assert_string_equal(ANSWER("{\"execute\": 42}"), "GenericError");
	assert_string_equal(ANSWER("{\"exec\": \"query-host\"}"), "GenericError");
	assert_string_equal(ANSWER("{\"execute\": \"query-host\"} trailing"), "GenericError");
	assert_string_equal(ANSWER("{\"execute\": \"query-host\", \"arguments\": [1]}"), "GenericError");
	assert_string_equal(ANSWER("{\"execute\": \"quit\"}"), "CommandNotFound");
	assert_string_equal(ANSWER("{\"execute\": \"\"}"), "CommandNotFound");
	assert_string_equal(ANSWER("\xff\xfe\x00\x01"), "GenericError");
	/* a NUL inside a line */
	assert_string_equal(answer(d, "{\"execute\": \"query-host\"}\0x", 27, &neg, &reply), "GenericError");
	/* the id comes back whatever it is, even on errors */
	assert_string_equal(ANSWER("{\"execute\": \"nope\", \"id\": {\"a\": [1]}}"), "CommandNotFound");
	assert_true(json_is_object(json_object_get(reply, "id")));

	/* nesting deeper than the parser takes is an error, not a crash */
	deep = malloc(40001);
	memset(deep, '[', 20000);
	memset(deep + 20000, ']', 20000);
	deep[40000] = '\0';
	assert_string_equal(ANSWER(deep), "GenericError");
	free(deep);
	/* a long command name is cut in the message */
	big = malloc(MEMD_CTL_MAX_LINE);
	snprintf(big, MEMD_CTL_MAX_LINE, "{\"execute\": \"%0*d\"}", MEMD_CTL_MAX_LINE - 100, 0);
	assert_string_equal(ANSWER(big), "CommandNotFound");
	assert_true(strlen(json_string_value(json_object_get(json_object_get(reply, "error"), "desc"))) < 300);
	free(big);

	/* the real commands */
	assert_string_equal(ANSWER("{\"execute\": \"query-host\"}"), "return");
	assert_string_equal(json_string_value(json_object_get(json_object_get(reply, "return"), "policy")), "minivmm");
	assert_string_equal(ANSWER("{\"execute\": \"query-vms\"}"), "return");
	assert_true(json_is_array(json_object_get(reply, "return")));
	assert_string_equal(ANSWER("{\"execute\": \"query-commands\"}"), "return");
	assert_string_equal(ANSWER("{\"execute\": \"set-policy\", \"arguments\": {\"policy\": \"mom\"}}"), "return");
	assert_string_equal(memd_policy_name(d->policy), "mom");
	assert_string_equal(ANSWER("{\"execute\": \"set-policy\", \"arguments\": {\"policy\": \"x\"}}"), "GenericError");
	assert_string_equal(ANSWER("{\"execute\": \"set-policy\"}"), "GenericError");
	assert_string_equal(memd_policy_name(d->policy), "mom");
	assert_string_equal(ANSWER("{\"execute\": \"set-budget\", \"arguments\": {\"bytes\": \"2G\"}}"), "return");
	assert_int_equal(d->o.budget, 2 * GiB);
	assert_int_equal(d->o.source, MEMD_SRC_BUDGET);
	assert_string_equal(ANSWER("{\"execute\": \"set-budget\", \"arguments\": {\"bytes\": 1073741824}}"), "return");
	assert_int_equal(d->o.budget, GiB);
	assert_string_equal(ANSWER("{\"execute\": \"set-budget\", \"arguments\": {\"bytes\": -5}}"), "GenericError");
	assert_string_equal(ANSWER("{\"execute\": \"set-budget\", \"arguments\": {\"bytes\": 1.5}}"), "GenericError");
	assert_string_equal(ANSWER("{\"execute\": \"set-budget\", \"arguments\": {}}"), "GenericError");
	assert_int_equal(d->o.budget, GiB);
	json_decref(reply);
	daemon_free(d);
}

static void test_budget_below_floors_says_by_how_much(void **state)
{
	struct memd *d = daemon_new();
	char err[512];

	/* two VMs known by name only (not sampled yet): their configured floors count */
	assert_int_equal(memd_opts_set(&d->o, "vm-floor", "a=512M", err, sizeof(err)), 0);
	assert_int_equal(memd_opts_set(&d->o, "vm-floor", "b=1G", err, sizeof(err)), 0);
	for (int i = 0; i < 2; i++) {
		d->vm[i] = calloc(1, sizeof(struct memd_vm));
		snprintf(d->vm[i]->name, MEMD_NAME_MAX, "%s", i ? "b" : "a");
	}
	d->nvm = 2;
	assert_int_equal(memd_floor_sum(d), 1536 * MiB);
	assert_int_equal(memd_set_budget(d, GiB, err, sizeof(err)), -EINVAL);
	print_message("%s\n", err);
	assert_non_null(strstr(err, "below the sum of the VMs' floors (1.50 GiB) by 512 MiB"));
	assert_int_equal(memd_set_budget(d, 2 * GiB, err, sizeof(err)), 0);
	for (int i = 0; i < 2; i++)
		free(d->vm[i]);
	d->nvm = 0;
	daemon_free(d);
}

static void test_metrics_text(void **state)
{
	struct memd *d = daemon_new();
	struct memd_vm *vm = calloc(1, sizeof(*vm));
	char *text;

	d->host.budget = GiB;
	d->host.usage = 900 * MiB;
	d->host.mi.total = 24 * GiB;
	d->host.mi.available = MEMD_NONE;
	d->state = MEMD_PRESSURE;
	snprintf(vm->name, sizeof(vm->name), "we\"ird\\name");
	vm->sampled = true;
	vm->in = (struct memd_vm_in){ .ram = 256 * MiB, .balloon_target = MEMD_NONE, .balloon_actual = 200 * MiB,
				      .resident = 190 * MiB, .saved_reported = MEMD_NONE, .saved_zero = 0,
				      .saved_shared = MEMD_NONE, .saved_compressed = MEMD_NONE };
	memset(&vm->in.stats, 0xff, sizeof(vm->in.stats));
	vm->rss = 201 * MiB;
	d->vm[0] = vm;
	d->nvm = 1;
	text = memd_metrics_text(d);
	assert_non_null(text);
	assert_non_null(strstr(text, "# TYPE minivmm_memd_budget_bytes gauge\nminivmm_memd_budget_bytes 1073741824\n"));
	assert_non_null(strstr(text, "minivmm_memd_state{state=\"pressure\"} 1\n"));
	assert_non_null(strstr(text, "minivmm_memd_state{state=\"ok\"} 0\n"));
	/* label values escaped as the text format wants */
	assert_non_null(strstr(text, "minivmm_memd_vm_balloon_actual_bytes{vm=\"we\\\"ird\\\\name\"} 209715200\n"));
	/* missing figures are left out, never written as 0 */
	assert_null(strstr(text, "\nminivmm_memd_mem_available_bytes "));
	assert_null(strstr(text, "minivmm_memd_vm_balloon_target_bytes{"));
	assert_non_null(strstr(text, "minivmm_memd_vm_saved_zero_bytes{vm=\"we\\\"ird\\\\name\"} 0\n"));
	free(text);
	free(vm);
	d->nvm = 0;
	daemon_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts_command_line_words),
		cmocka_unit_test(test_opts_errors_say_what_is_accepted),
		cmocka_unit_test(test_config_lines),
		cmocka_unit_test(test_config_json),
		cmocka_unit_test(test_config_file_missing),
		cmocka_unit_test(test_parse_meminfo),
		cmocka_unit_test(test_parse_psi),
		cmocka_unit_test(test_parse_cgroup_and_rollup),
		cmocka_unit_test(test_cgroup_without_memory_says_what_it_is),
		cmocka_unit_test(test_control_hostile_input),
		cmocka_unit_test(test_control_blank_line_bounded),
		cmocka_unit_test(test_budget_below_floors_says_by_how_much),
		cmocka_unit_test(test_metrics_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
