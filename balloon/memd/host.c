/*
 * memd host signals: /proc/meminfo, PSI (/proc/pressure/memory or a v2
 * cgroup's memory.pressure) and its trigger, memory cgroups v1 and v2,
 * and a process's resident memory. The parsers take the kernel's text so
 * the unit tests can feed them samples; the readers are thin around them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "balloon/memd/memd.h"

#define CGROUP1_MAGIC 0x27e0eb      /* CGROUP_SUPER_MAGIC */
#define CGROUP2_MAGIC 0x63677270    /* CGROUP2_SUPER_MAGIC */

int memd_read_text(const char *path, size_t cap, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0, size = 4096;
	char *buf;

	*out = NULL;
	if (fd < 0)
		return -errno;
	buf = malloc(size);
	for (;;) {
		ssize_t n;

		if (!buf) {
			close(fd);
			return -ENOMEM;
		}
		if (len + 1 >= size) {
			char *b;

			if (size >= cap) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			size *= 2;
			b = realloc(buf, size);
			if (!b)
				free(buf);
			buf = b;
			continue;
		}
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(buf);
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/* The value of "Key:   N kB" in /proc-style text, in bytes; MEMD_NONE when absent. */
static uint64_t kb_field(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		unsigned long long v;
		char unit[8] = "";

		if (strncmp(p, key, klen) || p[klen] != ':')
			continue;
		if (sscanf(p + klen + 1, "%llu %7s", &v, unit) < 1)
			return MEMD_NONE;
		return strcmp(unit, "kB") == 0 ? (uint64_t)v << 10 : (uint64_t)v;
	}
	return MEMD_NONE;
}

int memd_parse_meminfo(const char *text, struct memd_meminfo *m)
{
	m->total = kb_field(text, "MemTotal");
	m->free = kb_field(text, "MemFree");
	m->available = kb_field(text, "MemAvailable");
	m->buffers = kb_field(text, "Buffers");
	m->cached = kb_field(text, "Cached");
	m->swap_total = kb_field(text, "SwapTotal");
	return m->total == MEMD_NONE || m->total == 0 ? -EINVAL : 0;
}

/*
 * some avg10=0.00 avg60=0.00 avg300=0.00 total=0
 * full avg10=0.00 avg60=0.00 avg300=0.00 total=0
 * ("full" is missing on old kernels: then it is 0).
 */
int memd_parse_psi(const char *text, struct memd_psi *p)
{
	bool some = false;

	memset(p, 0, sizeof(*p));
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		double a10, a60, a300;
		unsigned long long total;
		char kind[8];

		if (sscanf(l, "%7s avg10=%lf avg60=%lf avg300=%lf total=%llu", kind, &a10, &a60, &a300, &total) != 5)
			continue;
		if (a10 < 0 || a10 > 100 || a10 != a10)
			return -EINVAL;
		if (!strcmp(kind, "some")) {
			p->some_avg10 = a10;
			p->some_total = total;
			some = true;
		} else if (!strcmp(kind, "full")) {
			p->full_avg10 = a10;
			p->full_total = total;
		}
	}
	return some ? 0 : -EINVAL;
}

int memd_parse_cgroup_value(const char *text, uint64_t *v)
{
	unsigned long long n;
	char *end;

	text += strspn(text, " \t");
	if (!strncmp(text, "max", 3) && strspn(text + 3, " \t\r\n") == strlen(text + 3)) {
		*v = MEMD_NONE;
		return 0;
	}
	if (*text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(text, &end, 10);
	if (errno || strspn(end, " \t\r\n") != strlen(end))
		return -EINVAL;
	/* v1 says "no limit" with LONG_MAX rounded down to a page */
	*v = n >= (1ULL << 62) ? MEMD_NONE : (uint64_t)n;
	return 0;
}

int memd_parse_rollup(const char *text, uint64_t *bytes)
{
	uint64_t rss = kb_field(text, "Rss"), sh = kb_field(text, "Shared_Hugetlb"),
		 pr = kb_field(text, "Private_Hugetlb");

	if (rss == MEMD_NONE)
		return -EINVAL;
	*bytes = rss + (sh == MEMD_NONE ? 0 : sh) + (pr == MEMD_NONE ? 0 : pr);
	return 0;
}

int memd_read_meminfo(struct memd_meminfo *m)
{
	char *t;
	int r = memd_read_text("/proc/meminfo", 65536, &t);

	if (r)
		return r;
	r = memd_parse_meminfo(t, m);
	free(t);
	return r;
}

int memd_read_psi(const char *path, struct memd_psi *p)
{
	char *t;
	int r = memd_read_text(path, 4096, &t);

	if (r)
		return r;
	r = memd_parse_psi(t, p);
	free(t);
	return r;
}

int memd_read_rss(pid_t pid, uint64_t *bytes)
{
	char path[64], *t;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	r = memd_read_text(path, 65536, &t);
	if (r)
		return r;
	r = memd_parse_rollup(t, bytes);
	free(t);
	return r;
}

static char *join(const char *dir, const char *file)
{
	char *s;

	return asprintf(&s, "%s/%s", dir, file) < 0 ? NULL : s;
}

static bool readable(const char *dir, const char *file)
{
	char *p = join(dir, file);
	bool ok = p && access(p, R_OK) == 0;

	free(p);
	return ok;
}

/* What a directory without memory files is, for the error message. */
static void describe(const char *dir, char *what, size_t len)
{
	struct statfs fs;
	char *p, *ctrl = NULL;

	if (statfs(dir, &fs) < 0) {
		snprintf(what, len, "cannot be examined (%s)", strerror(errno));
		return;
	}
	if ((unsigned long)fs.f_type == CGROUP2_MAGIC) {
		p = join(dir, "cgroup.controllers");
		if (p && memd_read_text(p, 4096, &ctrl) == 0)
			ctrl[strcspn(ctrl, "\n")] = '\0';
		snprintf(what, len, "is a cgroup v2 directory without the memory controller (its controllers: %s); "
			 "enable it in the parent's cgroup.subtree_control, or use the v1 memory hierarchy "
			 "(/sys/fs/cgroup/memory)", ctrl && *ctrl ? ctrl : "none");
		free(ctrl);
		free(p);
	} else if ((unsigned long)fs.f_type == CGROUP1_MAGIC) {
		snprintf(what, len, "is a cgroup v1 hierarchy of another controller (no memory.limit_in_bytes); "
			 "the v1 memory controller is mounted at /sys/fs/cgroup/memory");
	} else {
		snprintf(what, len, "is not a cgroup directory");
	}
}

int memd_cgroup_open(const char *path, struct memd_cgroup *cg, char *err, size_t errlen)
{
	static const char *const roots[] = { "/sys/fs/cgroup/memory", "/sys/fs/cgroup" };
	char *dir = NULL, what[512];
	struct stat st;

	memset(cg, 0, sizeof(*cg));
	if (path[0] == '/') {
		dir = strdup(path);
	} else {
		for (size_t i = 0; i < 2 && !dir; i++) {
			char *p = join(roots[i], path);

			if (p && stat(p, &st) == 0 && S_ISDIR(st.st_mode))
				dir = p;
			else
				free(p);
		}
		if (!dir) {
			snprintf(err, errlen, "--cgroup %s: no such directory under /sys/fs/cgroup/memory or "
				 "/sys/fs/cgroup; give the cgroup's path", path);
			return -ENOENT;
		}
	}
	if (!dir)
		return -ENOMEM;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "--cgroup %s: %s", dir, errno ? strerror(errno) : "not a directory");
		free(dir);
		return -ENOENT;
	}
	cg->dir = dir;
	if (readable(dir, "memory.usage_in_bytes") && readable(dir, "memory.limit_in_bytes")) {
		cg->version = 1;
		cg->usage_file = join(dir, "memory.usage_in_bytes");
		cg->limit_file = join(dir, "memory.limit_in_bytes");
		cg->events_file = join(dir, "memory.oom_control");
		cg->soft_file = join(dir, "memory.soft_limit_in_bytes");
	} else if (readable(dir, "memory.current") && readable(dir, "memory.max")) {
		cg->version = 2;
		cg->usage_file = join(dir, "memory.current");
		cg->limit_file = join(dir, "memory.max");
		cg->events_file = join(dir, "memory.events");
		cg->soft_file = join(dir, "memory.high");
		if (readable(dir, "memory.pressure"))
			cg->pressure_file = join(dir, "memory.pressure");
	} else {
		describe(dir, what, sizeof(what));
		snprintf(err, errlen, "--cgroup %s %s", dir, what);
		memd_cgroup_close(cg);
		return -ENOTSUP;
	}
	if (!cg->usage_file || !cg->limit_file) {
		memd_cgroup_close(cg);
		return -ENOMEM;
	}
	return 0;
}

int memd_cgroup_read(const struct memd_cgroup *cg, uint64_t *usage, uint64_t *limit)
{
	char *t;
	int r = memd_read_text(cg->usage_file, 256, &t);

	if (r)
		return r;
	r = memd_parse_cgroup_value(t, usage);
	free(t);
	if (r || *usage == MEMD_NONE)
		return -EINVAL;
	r = memd_read_text(cg->limit_file, 256, &t);
	if (r)
		return r;
	r = memd_parse_cgroup_value(t, limit);
	free(t);
	return r;
}

void memd_cgroup_close(struct memd_cgroup *cg)
{
	free(cg->dir);
	free(cg->usage_file);
	free(cg->limit_file);
	free(cg->pressure_file);
	free(cg->events_file);
	free(cg->soft_file);
	memset(cg, 0, sizeof(*cg));
}

int memd_parse_oom_kill(const char *text, uint64_t *n)
{
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		unsigned long long v;

		if (sscanf(p, "oom_kill %llu", &v) == 1) {
			*n = v;
			return 0;
		}
	}
	return -ENOENT;
}

uint64_t memd_cgroup_soft(const struct memd_cgroup *cg)
{
	uint64_t v = MEMD_NONE;
	char *t;

	if (!cg->soft_file || memd_read_text(cg->soft_file, 256, &t))
		return MEMD_NONE;
	if (memd_parse_cgroup_value(t, &v))
		v = MEMD_NONE;
	free(t);
	return v;
}

int memd_cgroup_oom_kills(const struct memd_cgroup *cg, uint64_t *n)
{
	char *t;
	int r;

	if (!cg->events_file)
		return -ENOENT;
	r = memd_read_text(cg->events_file, 4096, &t);
	if (r)
		return r;
	r = memd_parse_oom_kill(t, n);
	free(t);
	return r;
}

int memd_psi_trigger(const char *path, uint64_t stall_us, uint64_t window_us, char *err, size_t errlen)
{
	char trig[64];
	int fd, n;

	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot open %s for a PSI trigger: %s", path, strerror(e));
		return -e;
	}
	n = snprintf(trig, sizeof(trig), "some %llu %llu", (unsigned long long)stall_us,
		     (unsigned long long)window_us);
	/* the kernel wants the terminating NUL written too */
	if (write(fd, trig, (size_t)n + 1) < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot set the PSI trigger '%s' on %s: %s", trig, path, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}
