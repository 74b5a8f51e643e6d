/* SPDX-License-Identifier: MIT */
/*
 * snapedit: make a snapshot hostile in one chosen way, for the tests of
 * snapvm restore's refusals. Works in place on DIR (a copy the test made):
 * rewrites manifest.bin, or state.bin and the manifest's digest of it, so
 * that every checksum is right and only the one change is wrong.
 *
 *   snapedit DIR --manifest-vcpus N     manifest's vCPU count (state keeps its own)
 *   snapedit DIR --memory-size BYTES    manifest's RAM size and regions
 *   snapedit DIR --require NAME         a required feature
 *   snapedit DIR --xsave-size BYTES     vCPU 0's XSAVE area, zero-extended
 *   snapedit DIR --xstate-bv MASK       vCPU 0's XSAVE header XSTATE_BV
 *   snapedit DIR --msr INDEX            one more MSR on vCPU 0
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/format/digest.h"
#include "snapshot/format/io.h"
#include "snapshot/format/manifest.h"
#include "snapshot/format/snapdir.h"
#include "snapshot/format/state.h"

#define XSAVE_HEADER	512	/* XSTATE_BV, the first word of the header */
#define LAYOUT_HOLE	0xc0000000ull
#define LAYOUT_HIGH	0x100000000ull

static int fail(const char *dir, const char *what)
{
	fprintf(stderr, "snapedit: %s: %s\n", dir, what);
	return 1;
}

static int write_file(const char *dir, const char *name, const uint8_t *buf,
		      size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
		return -EIO;
	return 0;
}

/* snapvm's layout of size bytes: below 3 GiB, the rest from 4 GiB. */
static void set_memory(struct snap_manifest *m, uint64_t size)
{
	m->memory_size = size;
	m->n_regions = 1;
	m->regions[0] = (struct snap_region){ 0, size, 0 };
	if (size > LAYOUT_HOLE) {
		m->regions[0].size = LAYOUT_HOLE;
		m->regions[1] = (struct snap_region){ LAYOUT_HIGH,
						      size - LAYOUT_HOLE,
						      LAYOUT_HOLE };
		m->n_regions = 2;
	}
}

static int edit_state(struct snap_state *s, const char *op, uint64_t v)
{
	struct snap_vcpu *c = &s->vcpus[0];

	if (!strcmp(op, "--xsave-size")) {
		uint8_t *x = calloc(1, v);

		if (!x)
			return -ENOMEM;
		memcpy(x, c->xsave, c->xsave_size < v ? c->xsave_size : v);
		free(c->xsave);
		c->xsave = x;
		c->xsave_size = (uint32_t)v;
	} else if (!strcmp(op, "--xstate-bv")) {
		if (c->xsave_size < XSAVE_HEADER + 8)
			return -EINVAL;
		memcpy(c->xsave + XSAVE_HEADER, &v, 8);
	} else if (!strcmp(op, "--msr")) {
		struct snap_msr *msrs = realloc(c->msrs, (c->n_msrs + 1) *
						sizeof(*msrs));

		if (!msrs)
			return -ENOMEM;
		msrs[c->n_msrs++] = (struct snap_msr){ (uint32_t)v, 0 };
		c->msrs = msrs;
	} else {
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct snap_state *state = NULL;
	struct snap_err err = { "" };
	struct snap_manifest m;
	const char *dir, *op;
	uint8_t *buf = NULL;
	char path[4096];
	size_t len;
	uint64_t v;
	int ret;

	if (argc != 4) {
		fprintf(stderr, "usage: snapedit DIR OPTION VALUE\n");
		return 2;
	}
	dir = argv[1];
	op = argv[2];
	v = strtoull(argv[3], NULL, 0);
	snprintf(path, sizeof(path), "%s/%s", dir, SNAP_MANIFEST_FILE);
	if (snap_read_file(path, SNAP_MANIFEST_FILE, SNAP_MANIFEST_MAX, &buf,
			   &len, &err) ||
	    snap_manifest_decode(buf, len, &m, &err))
		return fail(dir, err.msg);
	free(buf);

	if (!strcmp(op, "--manifest-vcpus")) {
		m.vcpu_count = (uint32_t)v;
	} else if (!strcmp(op, "--memory-size")) {
		set_memory(&m, v);
	} else if (!strcmp(op, "--require")) {
		if (snap_manifest_add_feature(&m.required_features,
					      &m.n_required, argv[3]))
			return fail(dir, "out of memory");
	} else {
		snprintf(path, sizeof(path), "%s/%s", dir, SNAP_STATE_FILE);
		if (snap_read_file(path, SNAP_STATE_FILE, SNAP_STATE_MAX, &buf,
				   &len, &err) ||
		    snap_state_decode(buf, len, &state, &err))
			return fail(dir, err.msg);
		free(buf);
		ret = edit_state(state, op, v);
		if (ret)
			return fail(dir, strerror(-ret));
		/* encode validates: edits stay in libsnap's limits. */
		if (snap_state_encode(state, &buf, &len, &err))
			return fail(dir, err.msg);
		if (write_file(dir, SNAP_STATE_FILE, buf, len))
			return fail(dir, "cannot write state.bin");
		snap_sha256(buf, len, m.state_sha256);
		m.state_size = len;
		free(buf);
		snap_state_free(state);
	}
	if (snap_manifest_encode(&m, &buf, &len, &err))
		return fail(dir, err.msg);
	if (write_file(dir, SNAP_MANIFEST_FILE, buf, len))
		return fail(dir, "cannot write manifest.bin");
	free(buf);
	snap_manifest_release(&m);
	return 0;
}
