/*
 * machine_domain: libvirt domain XML -> struct domain_def (see the header
 * for the accepted subset). libxml2 parses (no network, no entity
 * expansion, no DTD loading: a domain file is user input); this file walks
 * the tree with one handler per element it knows, and refuses by name
 * whatever it does not.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "vmm/lib/macros.h"
#include "vmm/lib/opts.h"
#include "vmm/kvm/kvm.h"
#include "vmm/machine_domain.h"

struct dom_ctx {
	const char *file;
	struct domain_def *d;
	char *err;
	size_t errlen;
};

/* A refusal or bad value: "domain FILE:LINE: <elem>: why". Always -EINVAL. */
static int __attribute__((format(printf, 3, 4))) dom_fail(struct dom_ctx *c, xmlNode *n, const char *fmt, ...)
{
	char why[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "domain %s:%ld: <%s>: %s", c->file, n ? (long)xmlGetLineNo(n) : 0L,
		 n ? (const char *)n->name : "domain", why);
	return -EINVAL;
}

/* Records something accepted but honoured differently than libvirt would. */
static void dom_note(struct dom_ctx *c, const char *what)
{
	size_t used = strlen(c->d->notes);

	if (strstr(c->d->notes, what))
		return;
	snprintf(c->d->notes + used, sizeof(c->d->notes) - used, "%s%s", used ? "; " : "", what);
}

static bool dom_is(xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

/* An attribute's value (caller frees) or NULL. */
static char *dom_attr(xmlNode *n, const char *name)
{
	return (char *)xmlGetProp(n, (const xmlChar *)name);
}

/* The element's text, trimmed (caller frees); "" when empty. */
static char *dom_text(xmlNode *n)
{
	char *t = (char *)xmlNodeGetContent(n), *s = t, *e;

	if (!t)
		return strdup("");
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		e--;
	*e = '\0';
	char *r = strdup(s);
	xmlFree(t);
	return r;
}

/* Sets a string of the definition from n's text. A repeated element replaces
 * the earlier one, as a repeated <memory> does, and the earlier string is
 * freed: a second <name>, <kernel>, ... leaked it (found by fuzz_domain). */
static int dom_set_text(char **field, xmlNode *n)
{
	char *t = dom_text(n);

	if (!t)
		return -ENOMEM;
	free(*field);
	*field = t;
	return 0;
}

/* libvirt's memory units; KiB when none is given. */
static int dom_unit(const char *u, uint64_t *mult)
{
	static const struct { const char *name; uint64_t mult; } units[] = {
		{ "b", 1 }, { "bytes", 1 }, { "KB", 1000 }, { "k", 1024 }, { "KiB", 1024 },
		{ "MB", 1000000 }, { "M", 1 << 20 }, { "MiB", 1 << 20 }, { "GB", 1000000000 },
		{ "G", 1ULL << 30 }, { "GiB", 1ULL << 30 }, { "TB", 1000000000000ULL },
		{ "T", 1ULL << 40 }, { "TiB", 1ULL << 40 },
	};
	if (!u) {
		*mult = 1024;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (!strcmp(u, units[i].name)) {
			*mult = units[i].mult;
			return 0;
		}
	}
	return -EINVAL;
}

/* A size given as text or attribute value with a unit attribute. */
static int dom_size(struct dom_ctx *c, xmlNode *n, const char *value, uint64_t *out)
{
	char *unit = dom_attr(n, "unit");
	uint64_t mult, v;
	int ret = 0;

	if (dom_unit(unit, &mult))
		ret = dom_fail(c, n, "unit '%s' is not one of libvirt's (b, KiB, MiB, GiB, TiB, KB, MB, ...)", unit);
	else if (opts_u64(value, 1, UINT64_MAX / mult, &v))
		ret = dom_fail(c, n, "'%s' is not a size: give a positive number of %s", value, unit ? unit : "KiB");
	else
		*out = v * mult;
	xmlFree(unit);
	return ret;
}

static int dom_text_size(struct dom_ctx *c, xmlNode *n, uint64_t *out)
{
	char *t = dom_text(n);
	int ret = t ? dom_size(c, n, t, out) : -ENOMEM;

	free(t);
	return ret;
}

/* An on/off attribute, when present. */
static int dom_onoff(struct dom_ctx *c, xmlNode *n, const char *name, int *out)
{
	char *v = dom_attr(n, name);
	int ret = 0;

	if (v) {
		if (!strcmp(v, "on"))
			*out = 1;
		else if (!strcmp(v, "off"))
			*out = 0;
		else
			ret = dom_fail(c, n, "%s='%s': use on or off", name, v);
	}
	xmlFree(v);
	return ret;
}

/* ---- <os> ---- */

static int dom_os_type(struct dom_ctx *c, xmlNode *n)
{
	char *arch = dom_attr(n, "arch"), *machine = dom_attr(n, "machine"), *t = dom_text(n);
	int ret = 0;

	if (t && strcmp(t, "hvm"))
		ret = dom_fail(c, n, "'%s' guests are not supported: minivmm runs hvm guests", t);
	else if (arch && strcmp(arch, "x86_64"))
		ret = dom_fail(c, n, "arch '%s' is not supported: minivmm runs x86_64 guests", arch);
	else if (machine)
		dom_note(c, "os machine type ignored: minivmm has one machine (virtio-mmio, MP table)");
	xmlFree(arch);
	xmlFree(machine);
	free(t);
	return ret;
}

static int dom_os(struct dom_ctx *c, xmlNode *os)
{
	for (xmlNode *n = os->children; n; n = n->next) {
		int ret = 0;

		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (dom_is(n, "type"))
			ret = dom_os_type(c, n);
		else if (dom_is(n, "kernel"))
			ret = dom_set_text(&c->d->kernel, n);
		else if (dom_is(n, "initrd"))
			ret = dom_set_text(&c->d->initrd, n);
		else if (dom_is(n, "cmdline"))
			ret = dom_set_text(&c->d->cmdline, n);
		else
			ret = dom_fail(c, n, "not supported: minivmm boots the <kernel> (with <initrd> and "
				       "<cmdline>) directly, without firmware or boot devices");
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- <memoryBacking> ---- */

static int dom_hugepages(struct dom_ctx *c, xmlNode *hp)
{
	c->d->backing_set = true;
	c->d->backing = MM_BACKING_HUGETLB;
	c->d->hugepage_size = 2ULL << 20;
	for (xmlNode *n = hp->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (!dom_is(n, "page"))
			return dom_fail(c, n, "not supported inside <hugepages>: use <page size='2048' unit='KiB'/>");
		char *size = dom_attr(n, "size"), *nodeset = dom_attr(n, "nodeset");
		int ret = nodeset ? dom_fail(c, n, "nodeset: minivmm guests have one NUMA node") :
			  !size ? dom_fail(c, n, "needs a size (2048 KiB or 1048576 KiB)") :
			  dom_size(c, n, size, &c->d->hugepage_size);
		xmlFree(size);
		xmlFree(nodeset);
		if (ret)
			return ret;
		if (c->d->hugepage_size != (2ULL << 20) && c->d->hugepage_size != (1ULL << 30))
			return dom_fail(c, n, "huge pages of 2 MiB or 1 GiB only");
	}
	return 0;
}

static int dom_backing(struct dom_ctx *c, xmlNode *mb)
{
	for (xmlNode *n = mb->children; n; n = n->next) {
		char *type = NULL, *mode = NULL;
		int ret = 0;

		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (dom_is(n, "hugepages")) {
			ret = dom_hugepages(c, n);
		} else if (dom_is(n, "nosharepages")) {
			c->d->nosharepages = true;
		} else if (dom_is(n, "source")) {
			type = dom_attr(n, "type");
			if (type && !strcmp(type, "memfd")) {
				if (c->d->backing != MM_BACKING_HUGETLB) {
					c->d->backing_set = true;
					c->d->backing = MM_BACKING_MEMFD;
				}
			} else if (type && !strcmp(type, "anonymous")) {
				if (!c->d->backing_set) {
					c->d->backing_set = true;
					c->d->backing = MM_BACKING_THP;
				}
			} else {
				ret = dom_fail(c, n, "type '%s' is not supported: use memfd or anonymous",
					       type ? type : "");
			}
		} else if (dom_is(n, "allocation")) {
			mode = dom_attr(n, "mode");
			if (mode && !strcmp(mode, "immediate"))
				c->d->prealloc = true;
			else if (mode && strcmp(mode, "ondemand"))
				ret = dom_fail(c, n, "mode '%s': use immediate or ondemand", mode);
		} else {
			ret = dom_fail(c, n, "not supported in <memoryBacking> (minivmm supports hugepages, "
				       "source memfd|anonymous, allocation, nosharepages)");
		}
		xmlFree(type);
		xmlFree(mode);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- <devices> ---- */

static int dom_memballoon(struct dom_ctx *c, xmlNode *mb)
{
	char *model = dom_attr(mb, "model");
	int deflate = -1, fpr = -1, ret = 0;
	long period = -1;

	if (!model || (strcmp(model, "virtio") && strcmp(model, "none")))
		ret = dom_fail(c, mb, "model '%s' is not supported: use virtio or none", model ? model : "");
	else
		c->d->balloon = !strcmp(model, "virtio");
	xmlFree(model);
	if (!ret)
		ret = dom_onoff(c, mb, "autodeflate", &deflate);
	if (!ret)
		ret = dom_onoff(c, mb, "freePageReporting", &fpr);
	for (xmlNode *n = mb->children; n && !ret; n = n->next) {
		if (n->type != XML_ELEMENT_NODE || dom_is(n, "alias"))
			continue;
		if (dom_is(n, "address")) {
			dom_note(c, "memballoon address ignored: minivmm's balloon is on virtio-mmio");
		} else if (dom_is(n, "stats")) {
			char *p = dom_attr(n, "period");
			uint64_t v;
			if (!p || opts_u64(p, 0, 86400, &v))
				ret = dom_fail(c, n, "period='%s': give seconds from 0 to 86400", p ? p : "");
			else
				period = (long)v;
			xmlFree(p);
		} else {
			ret = dom_fail(c, n, "not supported in <memballoon> (stats, address, alias)");
		}
	}
	if (ret)
		return ret;
	/* Spelled as --balloon would be, so one parser checks both. */
	char *o = c->d->balloon_opts;
	size_t cap = sizeof(c->d->balloon_opts);
	snprintf(o, cap, "%s%s%s", deflate < 0 ? "" : deflate ? ",deflate-on-oom=on" : ",deflate-on-oom=off",
		 fpr < 0 ? "" : fpr ? ",free-page-reporting=on" : ",free-page-reporting=off",
		 period < 0 ? "" : ",stats-period=");
	if (period >= 0)
		snprintf(o + strlen(o), cap - strlen(o), "%ld", period);
	if (o[0] == ',')
		memmove(o, o + 1, strlen(o));   /* the leading comma */
	return 0;
}

static int dom_controller(struct dom_ctx *c, xmlNode *n)
{
	char *type = dom_attr(n, "type"), *model = dom_attr(n, "model");
	int ret = 0;

	/* libvirt adds a USB controller unless told model='none'. */
	if (!type || strcmp(type, "usb") || !model || strcmp(model, "none"))
		ret = dom_fail(c, n, "type '%s' model '%s' is not supported: minivmm has no buses but "
			       "virtio-mmio (only <controller type='usb' model='none'/> is accepted)",
			       type ? type : "", model ? model : "");
	xmlFree(type);
	xmlFree(model);
	return ret;
}

static int dom_devices(struct dom_ctx *c, xmlNode *devs)
{
	bool saw_balloon = false;

	for (xmlNode *n = devs->children; n; n = n->next) {
		int ret = 0;

		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (dom_is(n, "memballoon")) {
			saw_balloon = true;
			ret = dom_memballoon(c, n);
		} else if (dom_is(n, "serial") || dom_is(n, "console")) {
			dom_note(c, "serial/console: the guest console is minivmm's standard output");
		} else if (dom_is(n, "controller")) {
			ret = dom_controller(c, n);
		} else if (dom_is(n, "emulator")) {
			dom_note(c, "emulator ignored: minivmm is the VMM");
		} else {
			ret = dom_fail(c, n, "minivmm does not provide this device (it has: memballoon, "
				       "serial, console)");
		}
		if (ret)
			return ret;
	}
	/* libvirt adds a virtio balloon when the file names none; so does minivmm. */
	if (!saw_balloon)
		c->d->balloon = true;
	return 0;
}

/* ---- <metadata>: minivmm's namespace; other tools' elements are theirs ---- */

static int dom_memd(struct dom_ctx *c, xmlNode *n)
{
	char *floor = dom_attr(n, "floor"), *weight = dom_attr(n, "weight");
	uint64_t w;
	int ret = 0;

	if (floor)
		ret = dom_size(c, n, floor, &c->d->memd_floor);
	if (!ret && weight) {
		if (opts_u64(weight, 1, 1000, &w))
			ret = dom_fail(c, n, "weight='%s': give a number from 1 to 1000", weight);
		else
			c->d->memd_weight = (unsigned)w;
	}
	xmlFree(floor);
	xmlFree(weight);
	return ret;
}

static int dom_own_metadata(struct dom_ctx *c, xmlNode *cfg)
{
	for (xmlNode *n = cfg->children; n; n = n->next) {
		int ret = 0;

		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (dom_is(n, "mm"))
			ret = dom_set_text(&c->d->mm_opts, n);
		else if (dom_is(n, "memd"))
			ret = dom_memd(c, n);
		else
			ret = dom_fail(c, n, "unknown in minivmm's metadata (mm, memd)");
		if (ret)
			return ret;
	}
	return 0;
}

static int dom_metadata(struct dom_ctx *c, xmlNode *md)
{
	for (xmlNode *n = md->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE || !n->ns || !n->ns->href ||
		    strcmp((const char *)n->ns->href, DOMAIN_XMLNS))
			continue;
		if (!dom_is(n, "config"))
			return dom_fail(c, n, "minivmm's metadata element is <config xmlns='" DOMAIN_XMLNS "'>");
		int ret = dom_own_metadata(c, n);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- the rest of <domain> ---- */

static int dom_vcpu(struct dom_ctx *c, xmlNode *n)
{
	char *t = dom_text(n), *cur = dom_attr(n, "current");
	uint64_t v;
	int ret = 0;

	if (!t || opts_u64(t, 1, 1024, &v))
		ret = dom_fail(c, n, "'%s' is not a vCPU count from 1 to 1024", t ? t : "");
	else if (cur && strcmp(cur, t))
		ret = dom_fail(c, n, "current='%s': minivmm has no vCPU hotplug; give the count only", cur);
	else
		c->d->vcpus = (int)v;
	free(t);
	xmlFree(cur);
	return ret;
}

static int dom_features(struct dom_ctx *c, xmlNode *f)
{
	for (xmlNode *n = f->children; n; n = n->next) {
		/* every minivmm guest has ACPI tables (and the MP table): <acpi/> is what it gets */
		if (n->type != XML_ELEMENT_NODE || dom_is(n, "apic") || dom_is(n, "pae") ||
		    dom_is(n, "acpi"))
			continue;
		return dom_fail(c, n, "feature not supported (minivmm accepts apic, pae, acpi)");
	}
	return 0;
}

static int dom_cpu(struct dom_ctx *c, xmlNode *n)
{
	char *mode = dom_attr(n, "mode");
	int ret = 0;

	if (!mode || (strcmp(mode, "host-passthrough") && strcmp(mode, "host-model")))
		ret = dom_fail(c, n, "mode '%s': minivmm gives the guest what KVM supports; use "
			       "host-passthrough or host-model", mode ? mode : "custom");
	xmlFree(mode);
	return ret;
}

typedef int (*dom_handler)(struct dom_ctx *c, xmlNode *n);

static int dom_name(struct dom_ctx *c, xmlNode *n)
{
	return dom_set_text(&c->d->name, n);
}

static int dom_memory(struct dom_ctx *c, xmlNode *n)
{
	return dom_text_size(c, n, &c->d->memory);
}

static int dom_current(struct dom_ctx *c, xmlNode *n)
{
	return dom_text_size(c, n, &c->d->current_memory);
}

static int dom_info(struct dom_ctx *c, xmlNode *n)
{
	(void)c;
	(void)n;
	return 0;   /* uuid, title, description: for people and libvirt */
}

static int dom_lifecycle(struct dom_ctx *c, xmlNode *n)
{
	(void)n;
	dom_note(c, "on_poweroff/on_reboot/on_crash: minivmm exits when the guest powers off, reboots or "
		 "crashes");
	return 0;
}

static int dom_clock(struct dom_ctx *c, xmlNode *n)
{
	(void)n;
	dom_note(c, "clock: the guest keeps KVM's clock; there is no RTC offset");
	return 0;
}

static const struct { const char *name; dom_handler fn; } dom_handlers[] = {
	{ "name", dom_name }, { "uuid", dom_info }, { "title", dom_info }, { "description", dom_info },
	{ "metadata", dom_metadata }, { "memory", dom_memory }, { "currentMemory", dom_current },
	{ "vcpu", dom_vcpu }, { "os", dom_os }, { "memoryBacking", dom_backing },
	{ "devices", dom_devices }, { "features", dom_features }, { "cpu", dom_cpu },
	{ "clock", dom_clock }, { "on_poweroff", dom_lifecycle }, { "on_reboot", dom_lifecycle },
	{ "on_crash", dom_lifecycle },
};

static int dom_walk(struct dom_ctx *c, xmlNode *root)
{
	char *type;
	int ret = 0;

	if (!root || !dom_is(root, "domain"))
		return dom_fail(c, root, "the file's root element must be <domain type='kvm'>");
	type = dom_attr(root, "type");
	if (!type || strcmp(type, "kvm"))
		ret = dom_fail(c, root, "type '%s': minivmm runs KVM domains (type='kvm')", type ? type : "");
	xmlFree(type);
	for (xmlNode *n = root->children; n && !ret; n = n->next) {
		size_t i;

		if (n->type != XML_ELEMENT_NODE)
			continue;
		for (i = 0; i < ARRAY_SIZE(dom_handlers); i++)
			if (dom_is(n, dom_handlers[i].name))
				break;
		ret = i < ARRAY_SIZE(dom_handlers) ? dom_handlers[i].fn(c, n) :
		      dom_fail(c, n, "not supported by minivmm (see README, 'libvirt domain XML')");
	}
	if (!ret && !c->d->memory)
		ret = dom_fail(c, root, "no <memory>: give the guest's RAM, e.g. <memory unit='MiB'>512</memory>");
	if (!ret && c->d->current_memory > c->d->memory)
		ret = dom_fail(c, root, "<currentMemory> is larger than <memory>");
	return ret;
}

int domain_parse(const char *buf, size_t len, const char *name, struct domain_def *d, char *err,
		 size_t errlen)
{
	struct dom_ctx c = { .file = name, .d = d, .err = err, .errlen = errlen };
	xmlParserCtxtPtr ctxt;
	xmlDocPtr doc;
	int ret;

	memset(d, 0, sizeof(*d));
	d->balloon = true;
	if (len > INT32_MAX)
		return dom_fail(&c, NULL, "file too large");
	ctxt = xmlNewParserCtxt();
	if (!ctxt)
		return -ENOMEM;
	/* User input: no network, no entity expansion, no DTD, libxml2 quiet. */
	doc = xmlCtxtReadMemory(ctxt, buf, (int)len, name, NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);
		snprintf(err, errlen, "domain %s:%d:%d: malformed XML: %s", name, e ? e->line : 0,
			 e ? e->int2 : 0, e && e->message ? e->message : "cannot parse");
		/* libxml2's messages end with a newline */
		size_t n = strlen(err);
		if (n && err[n - 1] == '\n')
			err[n - 1] = '\0';
		xmlFreeParserCtxt(ctxt);
		return -EINVAL;
	}
	ret = dom_walk(&c, xmlDocGetRootElement(doc));
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctxt);
	return ret;
}

int domain_load(const char *path, struct domain_def *d, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long len;
	int ret;

	memset(d, 0, sizeof(*d));
	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "cannot open domain file %s: %s", path, strerror(errno));
		return ret;
	}
	if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) || len > (16 << 20)) {
		fclose(f);
		snprintf(err, errlen, "domain file %s: not a regular file of at most 16 MiB", path);
		return -EINVAL;
	}
	buf = malloc((size_t)len + 1);
	if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fclose(f);
		free(buf);
		snprintf(err, errlen, "cannot read domain file %s", path);
		return -EIO;
	}
	fclose(f);
	ret = domain_parse(buf, (size_t)len, path, d, err, errlen);
	free(buf);
	return ret;
}

void domain_free(struct domain_def *d)
{
	free(d->name);
	free(d->kernel);
	free(d->initrd);
	free(d->cmdline);
	free(d->mm_opts);
	memset(d, 0, sizeof(*d));
}

/* ---- the definition as a machine configuration ---- */

/* One line per setting the command line takes over from the file. */
static void dom_override(const struct domain_def *d, unsigned cli, unsigned bit, bool in_file,
			 const char *opt, const char *elem)
{
	if ((cli & bit) && in_file)
		fprintf(stderr, "minivmm: %s overrides %s of the domain %s\n", opt, elem,
			d->name ? d->name : "definition");
}

int domain_apply(struct domain_def *d, unsigned cli, struct vm_config *cfg, const char **name,
		 char *err, size_t errlen)
{
	dom_override(d, cli, DOM_CLI_MEM, d->memory, "--mem", "<memory>");
	dom_override(d, cli, DOM_CLI_CPUS, d->vcpus, "--cpus", "<vcpu>");
	dom_override(d, cli, DOM_CLI_APPEND, d->cmdline, "--append", "<cmdline>");
	dom_override(d, cli, DOM_CLI_IMAGE, d->kernel, "the IMAGE argument", "<kernel>");
	dom_override(d, cli, DOM_CLI_BACKING | DOM_CLI_HPSIZE, d->backing_set, "--mem-backing/--hugepage-size",
		     "<memoryBacking>");
	dom_override(d, cli, DOM_CLI_MM, d->mm_opts, "--mm", "minivmm's <mm> metadata");
	dom_override(d, cli, DOM_CLI_BALLOON | DOM_CLI_NO_BALLOON, d->balloon_opts[0] || !d->balloon,
		     "--balloon/--no-balloon", "<memballoon>");
	if (!(cli & DOM_CLI_MEM))
		cfg->mem.ram_size = d->memory;
	if (!(cli & DOM_CLI_CPUS) && d->vcpus)
		cfg->nr_cpus = d->vcpus;
	if (!(cli & DOM_CLI_APPEND) && d->cmdline)
		cfg->append = d->cmdline;
	if (!(cli & DOM_CLI_IMAGE))
		cfg->image = d->kernel;
	if (!(cli & (DOM_CLI_BACKING | DOM_CLI_HPSIZE)) && d->backing_set) {
		cfg->mem.backing = d->backing;
		if (d->backing == MM_BACKING_HUGETLB)
			cfg->mem.hugepage_size = d->hugepage_size;
	}
	if (!(cli & DOM_CLI_PREALLOC) && d->prealloc)
		cfg->mem.prealloc = true;
	if (!(cli & DOM_CLI_MM) && d->mm_opts)
		cfg->mm_opts = d->mm_opts;
	/* nosharepages: this guest's pages are never deduplicated, whoever set --mm */
	if (d->nosharepages && cfg->mm_opts) {
		snprintf(d->mm_buf, sizeof(d->mm_buf), "%s,dedup=off,ksm=off", cfg->mm_opts);
		cfg->mm_opts = d->mm_buf;
	}
	if (!(cli & (DOM_CLI_BALLOON | DOM_CLI_NO_BALLOON))) {
		cfg->no_balloon = !d->balloon;
		if (d->balloon_opts[0])
			cfg->balloon_opts = d->balloon_opts;
	}
	if (!(cli & DOM_CLI_NAME) && d->name)
		*name = d->name;
	cfg->memd_floor = d->memd_floor;
	cfg->memd_weight = d->memd_weight;
	if (d->notes[0])
		fprintf(stderr, "minivmm: note: %s\n", d->notes);
	if (!cfg->image) {
		snprintf(err, errlen, "the domain gives no <os><kernel> and no IMAGE was given: add one");
		return -EINVAL;
	}
	if (d->current_memory && d->current_memory < cfg->mem.ram_size && cfg->no_balloon) {
		snprintf(err, errlen, "<currentMemory> below <memory> needs the balloon: drop "
			 "<memballoon model='none'> or --no-balloon");
		return -EINVAL;
	}
	return 0;
}
