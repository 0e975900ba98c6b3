/*
 * memd lv_xml: what the libvirt backend reads from a domain's XML with
 * libxml2: whether it has a virtio memballoon and its stats period, and
 * minivmm's own metadata (<minivmm:memd floor= unit= weight=/> in the
 * urn:minivmm:domain:1 namespace, as the domain XML has it, or without a
 * namespace, as virDomainGetMetadata returns it). Pure functions; any thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "balloon/memd/memd.h"

static xmlDoc *read_xml(const char *xml)
{
	/* the text comes from libvirt, but never let it reach the network or print on stderr */
	return xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
			     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static bool is(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static xmlNode *child(const xmlNode *n, const char *name)
{
	for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

int memd_lv_parse_balloon(const char *xml, bool *has_balloon, int *period)
{
	xmlDoc *doc = read_xml(xml);
	xmlNode *root, *mb, *st;

	*has_balloon = false;
	*period = 0;
	if (!doc)
		return -EINVAL;
	root = xmlDocGetRootElement(doc);
	mb = is(root, "domain") ? child(child(root, "devices"), "memballoon") : NULL;
	if (mb) {
		xmlChar *model = xmlGetProp(mb, (const xmlChar *)"model");

		/* virtio, virtio-transitional, virtio-non-transitional: all the same driver in the guest */
		*has_balloon = model && !strncmp((const char *)model, "virtio", 6);
		xmlFree(model);
		st = child(mb, "stats");
		if (*has_balloon && st) {
			xmlChar *p = xmlGetProp(st, (const xmlChar *)"period");

			*period = p ? atoi((const char *)p) : 0;
			xmlFree(p);
		}
	}
	xmlFreeDoc(doc);
	return 0;
}

/* libvirt's memory units, KiB when none is given (as in <memory>). */
static int unit_mult(const char *u, uint64_t *mult)
{
	static const struct { const char *name; uint64_t mult; } units[] = {
		{ "b", 1 }, { "bytes", 1 }, { "KB", 1000 }, { "k", 1024 }, { "KiB", 1024 },
		{ "MB", 1000000 }, { "M", 1 << 20 }, { "MiB", 1 << 20 },
		{ "GB", 1000000000 }, { "G", 1 << 30 }, { "GiB", 1 << 30 },
		{ "TB", 1000000000000ULL }, { "T", 1ULL << 40 }, { "TiB", 1ULL << 40 },
	};

	if (!u) {
		*mult = 1024;
		return 0;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(u, units[i].name)) {
			*mult = units[i].mult;
			return 0;
		}
	return -EINVAL;
}

/*
 * The first element named name in minivmm's namespace, depth first. One in
 * no namespace counts too: virDomainGetMetadata returns the element it was
 * asked for by namespace with that namespace stripped ("<config><memd .../>").
 */
static xmlNode *find_ns(xmlNode *n, const char *name)
{
	for (; n; n = n->next) {
		xmlNode *f;

		if (n->type == XML_ELEMENT_NODE && (!n->ns || (n->ns->href &&
		    !strcmp((const char *)n->ns->href, MEMD_LV_NS))) && !strcmp((const char *)n->name, name))
			return n;
		if ((f = find_ns(n->children, name)))
			return f;
	}
	return NULL;
}

int memd_lv_parse_metadata(const char *xml, uint64_t *floor, uint32_t *weight, char *err, size_t errlen)
{
	xmlDoc *doc = read_xml(xml);
	xmlNode *m;
	char *fl = NULL, *unit = NULL, *w = NULL;
	int r = 0;

	*floor = 0;
	*weight = 0;
	if (!doc) {
		const xmlError *e = xmlGetLastError();

		snprintf(err, errlen, "minivmm metadata is not XML: %s", e && e->message ? e->message : "parse error");
		return -EINVAL;
	}
	m = find_ns(xmlDocGetRootElement(doc), "memd");
	if (m) {
		fl = (char *)xmlGetProp(m, (const xmlChar *)"floor");
		unit = (char *)xmlGetProp(m, (const xmlChar *)"unit");
		w = (char *)xmlGetProp(m, (const xmlChar *)"weight");
	}
	if (fl) {
		uint64_t mult, v;
		char *end;

		errno = 0;
		v = strtoull(fl, &end, 10);
		if (unit_mult(unit, &mult) < 0) {
			snprintf(err, errlen, "<minivmm:memd unit='%s'> is not one of libvirt's units (KiB, MiB, GiB, ...)",
				 unit);
			r = -EINVAL;
		} else if (errno || end == fl || *end || fl[0] == '-' || v == 0 || v > UINT64_MAX / mult) {
			snprintf(err, errlen, "<minivmm:memd floor='%s'> is not a size above 0 (in %s)", fl,
				 unit ? unit : "KiB");
			r = -EINVAL;
		} else {
			*floor = v * mult;
		}
	}
	if (!r && w) {
		char *end;
		long v = strtol(w, &end, 10);

		if (end == w || *end || v < 1 || v > 10000) {
			snprintf(err, errlen, "<minivmm:memd weight='%s'> is not a weight from 1 to 10000", w);
			r = -EINVAL;
		} else {
			*weight = (uint32_t)v;
		}
	}
	if (r)
		*floor = *weight = 0;
	xmlFree(fl);
	xmlFree(unit);
	xmlFree(w);
	xmlFreeDoc(doc);
	return r;
}
