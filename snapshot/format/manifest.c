/* SPDX-License-Identifier: MIT */
/*
 * manifest.bin codec. The only file that sees the protobuf-c manifest types.
 */
#include "snapshot/format/manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "proto/manifest.pb-c.h"

/*
 * Required features this build implements. A snapshot naming any other
 * required feature is refused (docs/format.md, "Features").
 */
static const char *const known_required_features[] = {
	SNAP_FEATURE_PCI,		/* PCI bus 0 and its host bridge */
	SNAP_FEATURE_VIRTIO_BLK,	/* virtio-blk, disks in the directory */
	SNAP_FEATURE_VIRTIO_RNG,
	SNAP_FEATURE_VIRTIO_VSOCK,
	NULL,
};

bool snap_feature_known(const char *name)
{
	for (size_t i = 0; known_required_features[i]; i++)
		if (!strcmp(known_required_features[i], name))
			return true;
	return false;
}

int snap_manifest_init(struct snap_manifest *m, const char *producer,
		       const char *version)
{
	struct timespec ts;

	memset(m, 0, sizeof(*m));
	if (getrandom(m->id, sizeof(m->id), 0) != sizeof(m->id))
		return -errno;
	snprintf(m->producer_name, sizeof(m->producer_name), "%s", producer);
	snprintf(m->producer_version, sizeof(m->producer_version), "%s",
		 version);
	snprintf(m->arch, sizeof(m->arch), "x86_64");
	m->page_size = SNAP_PAGE_SIZE;
	clock_gettime(CLOCK_REALTIME, &ts);
	m->created_unix_ns = (uint64_t)ts.tv_sec * 1000000000ull +
			     (uint64_t)ts.tv_nsec;
	return 0;
}

static void free_list(char **list, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void snap_manifest_release(struct snap_manifest *m)
{
	if (!m)
		return;
	free(m->parent_hint);
	free(m->cmdline);
	free_list(m->required_features, m->n_required);
	free_list(m->compatible_features, m->n_compatible);
	m->parent_hint = m->cmdline = NULL;
	m->required_features = m->compatible_features = NULL;
	m->n_required = m->n_compatible = 0;
}

int snap_manifest_set_text(char **dst, const char *src)
{
	char *copy = NULL;

	if (src && !(copy = strdup(src)))
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

int snap_manifest_add_feature(char ***list, uint32_t *n, const char *name)
{
	char **grown;
	char *copy;

	if (*n >= SNAP_MAX_FEATURES)
		return -E2BIG;
	copy = strdup(name);
	grown = realloc(*list, (*n + 1) * sizeof(**list));
	if (!copy || !grown) {
		free(copy);
		if (grown)
			*list = grown;
		return -ENOMEM;
	}
	grown[(*n)++] = copy;
	*list = grown;
	return 0;
}

/* ---- validation --------------------------------------------------------- */

#define FAIL(...) snap_err_set(err, -EINVAL, "manifest.bin: " __VA_ARGS__)

static bool is_aligned(uint64_t v, uint32_t page)
{
	return (v & (page - 1)) == 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b,
			   uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int validate_regions(const struct snap_manifest *m,
			    struct snap_err *err)
{
	uint64_t total = 0;

	if (m->n_regions == 0)
		return FAIL("regions: none, at least one expected");
	if (m->n_regions > SNAP_MAX_REGIONS)
		return FAIL("regions: %u, at most %u expected", m->n_regions,
			    SNAP_MAX_REGIONS);
	for (uint32_t i = 0; i < m->n_regions; i++) {
		const struct snap_region *r = &m->regions[i];

		if (r->size == 0)
			return FAIL("region %u: size 0", i);
		if (!is_aligned(r->gpa | r->size | r->offset, m->page_size))
			return FAIL("region %u: gpa 0x%llx size 0x%llx offset "
				    "0x%llx, page-aligned values expected", i,
				    (unsigned long long)r->gpa,
				    (unsigned long long)r->size,
				    (unsigned long long)r->offset);
		if (r->gpa >= SNAP_GPA_LIMIT ||
		    r->size > SNAP_GPA_LIMIT - r->gpa)
			return FAIL("region %u: gpa 0x%llx size 0x%llx beyond "
				    "the 52-bit physical address space", i,
				    (unsigned long long)r->gpa,
				    (unsigned long long)r->size);
		if (r->offset > m->memory_size ||
		    r->size > m->memory_size - r->offset)
			return FAIL("region %u: offset 0x%llx size 0x%llx past "
				    "the end of memory.bin (0x%llx bytes)", i,
				    (unsigned long long)r->offset,
				    (unsigned long long)r->size,
				    (unsigned long long)m->memory_size);
		for (uint32_t j = 0; j < i; j++) {
			const struct snap_region *o = &m->regions[j];

			if (ranges_overlap(r->gpa, r->size, o->gpa, o->size))
				return FAIL("region %u overlaps region %u in "
					    "guest memory", i, j);
			if (ranges_overlap(r->offset, r->size, o->offset,
					   o->size))
				return FAIL("region %u overlaps region %u in "
					    "memory.bin", i, j);
		}
		total += r->size;
	}
	if (total != m->memory_size)
		return FAIL("memory_size 0x%llx, regions cover 0x%llx",
			    (unsigned long long)m->memory_size,
			    (unsigned long long)total);
	return 0;
}

static int validate_text(const char *field, const char *s, size_t max,
			 struct snap_err *err)
{
	if (s && strlen(s) >= max)
		return FAIL("%s: %zu bytes, at most %zu expected", field,
			    strlen(s), max - 1);
	return 0;
}

/* A disk file is a plain name of the directory, not one of its own files. */
static int validate_disks(const struct snap_manifest *m, struct snap_err *err)
{
	static const char *const reserved[] = {
		"manifest.bin", "state.bin", "memory.bin", ".", "..",
	};

	if (m->n_disks > SNAP_MAX_DISKS)
		return FAIL("disks: %u, at most %u expected", m->n_disks,
			    SNAP_MAX_DISKS);
	for (uint32_t i = 0; i < m->n_disks; i++) {
		const struct snap_disk *d = &m->disks[i];

		if (!d->file[0] || strchr(d->file, '/') ||
		    strnlen(d->file, SNAP_NAME_MAX) == SNAP_NAME_MAX)
			return FAIL("disk %u: file \"%.*s\": a plain file name "
				    "expected", i, (int)SNAP_NAME_MAX - 1,
				    d->file);
		for (size_t r = 0; r < sizeof(reserved) / sizeof(*reserved);
		     r++)
			if (!strcmp(d->file, reserved[r]))
				return FAIL("disk %u: file \"%s\": a name the "
					    "snapshot uses itself", i, d->file);
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(d->file, m->disks[j].file))
				return FAIL("disk %u: file \"%s\" is also disk "
					    "%u's", i, d->file, j);
		if (d->size > SNAP_DISK_MAX || d->size % 512)
			return FAIL("disk %u: size %llu, a multiple of 512 up "
				    "to %llu expected", i,
				    (unsigned long long)d->size,
				    (unsigned long long)SNAP_DISK_MAX);
	}
	return 0;
}

static int validate_features(const char *field, char **list, uint32_t n,
			     struct snap_err *err)
{
	if (n > SNAP_MAX_FEATURES)
		return FAIL("%s: %u names, at most %u expected", field, n,
			    SNAP_MAX_FEATURES);
	for (uint32_t i = 0; i < n; i++) {
		if (!list[i][0])
			return FAIL("%s: empty name", field);
		if (validate_text(field, list[i], SNAP_NAME_MAX, err))
			return -EINVAL;
	}
	return 0;
}

int snap_manifest_validate(const struct snap_manifest *m,
			   struct snap_err *err)
{
	int ret;

	if (!m->producer_name[0])
		return FAIL("producer: name missing");
	if (strcmp(m->arch, "x86_64"))
		return FAIL("arch: \"%s\", \"x86_64\" expected", m->arch);
	if (m->page_size != SNAP_PAGE_SIZE)
		return FAIL("page_size: %u, %u expected", m->page_size,
			    SNAP_PAGE_SIZE);
	if (m->vcpu_count < 1 || m->vcpu_count > SNAP_MAX_VCPUS)
		return FAIL("vcpu_count: %u, 1 to %u expected", m->vcpu_count,
			    SNAP_MAX_VCPUS);
	if (m->memory_size == 0 || m->memory_size > SNAP_MEMORY_MAX)
		return FAIL("memory_size: %llu, 1 to %llu expected",
			    (unsigned long long)m->memory_size,
			    (unsigned long long)SNAP_MEMORY_MAX);
	if (m->state_size == 0 || m->state_size > SNAP_STATE_MAX)
		return FAIL("state_size: %llu, 1 to %u expected",
			    (unsigned long long)m->state_size, SNAP_STATE_MAX);
	ret = validate_regions(m, err);
	if (!ret)
		ret = validate_text("parent_hint", m->parent_hint,
				    SNAP_TEXT_MAX, err);
	if (!ret)
		ret = validate_text("cmdline", m->cmdline, SNAP_TEXT_MAX, err);
	if (!ret)
		ret = validate_features("required_features",
					m->required_features, m->n_required,
					err);
	if (!ret)
		ret = validate_features("compatible_features",
					m->compatible_features,
					m->n_compatible, err);
	if (!ret)
		ret = validate_disks(m, err);
	return ret;
}

#undef FAIL

/* ---- encoding ----------------------------------------------------------- */

static ProtobufCBinaryData bin(const uint8_t *p, size_t n)
{
	return (ProtobufCBinaryData){ .len = n, .data = (uint8_t *)p };
}

static char *text(const char *s)
{
	return (char *)(s ? s : "");
}

int snap_manifest_encode(const struct snap_manifest *m, uint8_t **bufp,
			 size_t *lenp, struct snap_err *err)
{
	Snapfs__Manifest__SnapshotManifest pb =
		SNAPFS__MANIFEST__SNAPSHOT_MANIFEST__INIT;
	Snapfs__Manifest__Producer producer = SNAPFS__MANIFEST__PRODUCER__INIT;
	Snapfs__Manifest__MemoryRegion regions[SNAP_MAX_REGIONS];
	Snapfs__Manifest__MemoryRegion *region_ptrs[SNAP_MAX_REGIONS];
	Snapfs__Manifest__Disk disks[SNAP_MAX_DISKS];
	Snapfs__Manifest__Disk *disk_ptrs[SNAP_MAX_DISKS];
	size_t body;
	uint8_t *buf;
	int ret;

	ret = snap_manifest_validate(m, err);
	if (ret)
		return ret;

	producer.name = (char *)m->producer_name;
	producer.version = (char *)m->producer_version;
	pb.id = bin(m->id, sizeof(m->id));
	pb.producer = &producer;
	pb.arch = (char *)m->arch;
	pb.page_size = m->page_size;
	pb.vcpu_count = m->vcpu_count;
	for (uint32_t i = 0; i < m->n_regions; i++) {
		snapfs__manifest__memory_region__init(&regions[i]);
		regions[i].guest_phys_addr = m->regions[i].gpa;
		regions[i].size = m->regions[i].size;
		regions[i].file_offset = m->regions[i].offset;
		region_ptrs[i] = &regions[i];
	}
	pb.n_regions = m->n_regions;
	pb.regions = region_ptrs;
	if (m->has_parent)
		pb.parent_id = bin(m->parent_id, sizeof(m->parent_id));
	pb.parent_hint = text(m->parent_hint);
	pb.created_unix_ns = m->created_unix_ns;
	pb.state_sha256 = bin(m->state_sha256, sizeof(m->state_sha256));
	pb.state_size = m->state_size;
	pb.memory_size = m->memory_size;
	if (m->has_memory_sha256)
		pb.memory_sha256 = bin(m->memory_sha256,
				       sizeof(m->memory_sha256));
	pb.n_required_features = m->n_required;
	pb.required_features = m->required_features;
	pb.n_compatible_features = m->n_compatible;
	pb.compatible_features = m->compatible_features;
	pb.cmdline = text(m->cmdline);
	for (uint32_t i = 0; i < m->n_disks; i++) {
		snapfs__manifest__disk__init(&disks[i]);
		disks[i].file = (char *)m->disks[i].file;
		disks[i].size = m->disks[i].size;
		disks[i].sha256 = bin(m->disks[i].sha256,
				      sizeof(m->disks[i].sha256));
		disks[i].read_only = m->disks[i].read_only;
		disk_ptrs[i] = &disks[i];
	}
	pb.n_disks = m->n_disks;
	pb.disks = disk_ptrs;

	body = snapfs__manifest__snapshot_manifest__get_packed_size(&pb);
	buf = malloc(body + SNAP_TRAILER_LEN);
	if (!buf)
		return snap_err_set(err, -ENOMEM, "manifest.bin: out of memory");
	snapfs__manifest__snapshot_manifest__pack(&pb, buf);
	buf[body] = SNAP_TRAILER_TAG;
	buf[body + 1] = SNAP_DIGEST_LEN;
	snap_sha256(buf, body, buf + body + 2);
	*bufp = buf;
	*lenp = body + SNAP_TRAILER_LEN;
	return 0;
}

/* ---- decoding ----------------------------------------------------------- */

static int copy_name(char *dst, const char *src, const char *field,
		     struct snap_err *err)
{
	size_t n = strlen(src);

	if (n >= SNAP_NAME_MAX)
		return snap_err_set(err, -EINVAL, "manifest.bin: %s: %zu bytes, "
				    "at most %u expected", field, n,
				    SNAP_NAME_MAX - 1);
	memcpy(dst, src, n + 1);
	return 0;
}

static int copy_digest(uint8_t *dst, ProtobufCBinaryData b,
		       const char *field, struct snap_err *err)
{
	if (b.len != SNAP_DIGEST_LEN)
		return snap_err_set(err, -EINVAL, "manifest.bin: %s: %zu bytes, "
				    "%u expected", field, b.len,
				    SNAP_DIGEST_LEN);
	memcpy(dst, b.data, b.len);
	return 0;
}

static int copy_features(char ***list, uint32_t *n, char **src, size_t nsrc,
			 const char *field, struct snap_err *err)
{
	if (nsrc > SNAP_MAX_FEATURES)
		return snap_err_set(err, -EINVAL, "manifest.bin: %s: %zu names, "
				    "at most %u expected", field, nsrc,
				    SNAP_MAX_FEATURES);
	for (size_t i = 0; i < nsrc; i++)
		if (snap_manifest_add_feature(list, n, src[i]))
			return snap_err_set(err, -ENOMEM,
					    "manifest.bin: out of memory");
	return 0;
}

static int from_pb(const Snapfs__Manifest__SnapshotManifest *pb,
		   struct snap_manifest *m, struct snap_err *err)
{
	int ret;

	if (pb->id.len != SNAP_ID_LEN)
		return snap_err_set(err, -EINVAL, "manifest.bin: id: %zu bytes, "
				    "%u expected", pb->id.len, SNAP_ID_LEN);
	memcpy(m->id, pb->id.data, SNAP_ID_LEN);
	if (!pb->producer)
		return snap_err_set(err, -EINVAL,
				    "manifest.bin: producer: missing");
	ret = copy_name(m->producer_name, pb->producer->name, "producer.name",
			err);
	if (!ret)
		ret = copy_name(m->producer_version, pb->producer->version,
				"producer.version", err);
	if (!ret)
		ret = copy_name(m->arch, pb->arch, "arch", err);
	if (ret)
		return ret;
	m->page_size = pb->page_size;
	m->vcpu_count = pb->vcpu_count;
	if (pb->n_regions > SNAP_MAX_REGIONS)
		return snap_err_set(err, -EINVAL, "manifest.bin: regions: %zu, "
				    "at most %u expected", pb->n_regions,
				    SNAP_MAX_REGIONS);
	for (size_t i = 0; i < pb->n_regions; i++) {
		m->regions[i].gpa = pb->regions[i]->guest_phys_addr;
		m->regions[i].size = pb->regions[i]->size;
		m->regions[i].offset = pb->regions[i]->file_offset;
	}
	m->n_regions = (uint32_t)pb->n_regions;
	if (pb->parent_id.len) {
		if (pb->parent_id.len != SNAP_ID_LEN)
			return snap_err_set(err, -EINVAL, "manifest.bin: "
					    "parent_id: %zu bytes, %u expected",
					    pb->parent_id.len, SNAP_ID_LEN);
		m->has_parent = true;
		memcpy(m->parent_id, pb->parent_id.data, SNAP_ID_LEN);
	}
	m->created_unix_ns = pb->created_unix_ns;
	ret = copy_digest(m->state_sha256, pb->state_sha256, "state_sha256",
			  err);
	if (ret)
		return ret;
	m->state_size = pb->state_size;
	m->memory_size = pb->memory_size;
	if (pb->memory_sha256.len) {
		ret = copy_digest(m->memory_sha256, pb->memory_sha256,
				  "memory_sha256", err);
		if (ret)
			return ret;
		m->has_memory_sha256 = true;
	}
	ret = copy_features(&m->required_features, &m->n_required,
			    pb->required_features, pb->n_required_features,
			    "required_features", err);
	if (!ret)
		ret = copy_features(&m->compatible_features, &m->n_compatible,
				    pb->compatible_features,
				    pb->n_compatible_features,
				    "compatible_features", err);
	if (ret)
		return ret;
	if (pb->n_disks > SNAP_MAX_DISKS)
		return snap_err_set(err, -EINVAL, "manifest.bin: disks: %zu, "
				    "at most %u expected", pb->n_disks,
				    SNAP_MAX_DISKS);
	for (size_t i = 0; i < pb->n_disks; i++) {
		const Snapfs__Manifest__Disk *d = pb->disks[i];
		struct snap_disk *md = &m->disks[i];

		ret = copy_name(md->file, d->file, "disks.file", err);
		if (!ret)
			ret = copy_digest(md->sha256, d->sha256,
					  "disks.sha256", err);
		if (ret)
			return ret;
		md->size = d->size;
		md->read_only = d->read_only;
	}
	m->n_disks = (uint32_t)pb->n_disks;
	if ((pb->parent_hint[0] &&
	     snap_manifest_set_text(&m->parent_hint, pb->parent_hint)) ||
	    (pb->cmdline[0] && snap_manifest_set_text(&m->cmdline, pb->cmdline)))
		return snap_err_set(err, -ENOMEM, "manifest.bin: out of memory");
	return 0;
}

static int check_trailer(const uint8_t *buf, size_t len, struct snap_err *err)
{
	uint8_t digest[SNAP_DIGEST_LEN];
	size_t body;

	if (len < SNAP_TRAILER_LEN)
		return snap_err_set(err, -EBADMSG, "manifest.bin: %zu bytes, "
				    "too short to hold a checksum", len);
	body = len - SNAP_TRAILER_LEN;
	if (buf[body] != SNAP_TRAILER_TAG || buf[body + 1] != SNAP_DIGEST_LEN)
		return snap_err_set(err, -EBADMSG, "manifest.bin: checksum: "
				    "trailer missing (truncated or not a "
				    "snapshot manifest)");
	snap_sha256(buf, body, digest);
	if (memcmp(digest, buf + body + 2, SNAP_DIGEST_LEN))
		return snap_err_set(err, -EBADMSG, "manifest.bin: checksum: "
				    "mismatch (the file is corrupt)");
	return 0;
}

int snap_manifest_decode(const uint8_t *buf, size_t len,
			 struct snap_manifest *m, struct snap_err *err)
{
	Snapfs__Manifest__SnapshotManifest *pb;
	int ret;

	memset(m, 0, sizeof(*m));
	if (len > SNAP_MANIFEST_MAX)
		return snap_err_set(err, -EFBIG, "manifest.bin: %zu bytes, at "
				    "most %u expected", len, SNAP_MANIFEST_MAX);
	ret = check_trailer(buf, len, err);
	if (ret)
		return ret;
	pb = snapfs__manifest__snapshot_manifest__unpack(NULL, len, buf);
	if (!pb)
		return snap_err_set(err, -EBADMSG,
				    "manifest.bin: not a valid SnapshotManifest");
	ret = from_pb(pb, m, err);
	snapfs__manifest__snapshot_manifest__free_unpacked(pb, NULL);
	if (!ret)
		ret = snap_manifest_validate(m, err);
	for (uint32_t i = 0; !ret && i < m->n_required; i++)
		if (!snap_feature_known(m->required_features[i]))
			ret = snap_err_set(err, -ENOTSUP, "manifest.bin: "
					   "required feature \"%s\" is not "
					   "supported by this build",
					   m->required_features[i]);
	if (ret)
		snap_manifest_release(m);
	return ret;
}
