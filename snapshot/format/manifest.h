/* SPDX-License-Identifier: MIT */
#ifndef SNAP_MANIFEST_H
#define SNAP_MANIFEST_H

/*
 * manifest.bin: the description of a snapshot (docs/format.md).
 *
 * snap_manifest_encode() produces the exact bytes of manifest.bin, ending in
 * the checksum trailer; snap_manifest_decode() checks the trailer, decodes,
 * and validates every field before anything else sees it. The protobuf-c
 * types never leave manifest.c.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot/format/digest.h"
#include "snapshot/format/error.h"

#define SNAP_ID_LEN		16
#define SNAP_PAGE_SIZE		4096u
#define SNAP_MAX_VCPUS		256u
#define SNAP_MAX_REGIONS	64u
#define SNAP_MAX_FEATURES	64u
#define SNAP_NAME_MAX		64u	/* producer name, version, arch */
#define SNAP_TEXT_MAX		4096u	/* cmdline, parent hint, feature */
#define SNAP_MANIFEST_MAX	(1u << 20)
#define SNAP_STATE_MAX		(256u << 20)
#define SNAP_MEMORY_MAX		(1ull << 46)	/* 64 TiB */
#define SNAP_GPA_LIMIT		(1ull << 52)
#define SNAP_MAX_DISKS		8u
#define SNAP_DISK_MAX		(1ull << 44)	/* 16 TiB */

/* Required features of devices (docs/format.md, "Features"). */
#define SNAP_FEATURE_PCI		"pci"
#define SNAP_FEATURE_VIRTIO_BLK		"virtio-blk"
#define SNAP_FEATURE_VIRTIO_RNG		"virtio-rng"
#define SNAP_FEATURE_VIRTIO_VSOCK	"virtio-vsock"

/* The checksum trailer that ends manifest.bin: tag, length, digest. */
#define SNAP_TRAILER_TAG	0x7a	/* field 15, wire type 2 (bytes) */
#define SNAP_TRAILER_LEN	(2 + SNAP_DIGEST_LEN)

struct snap_region {
	uint64_t gpa;		/* guest physical address */
	uint64_t size;
	uint64_t offset;	/* in memory.bin */
};

/* A disk: a raw image file of the snapshot directory. */
struct snap_disk {
	char file[SNAP_NAME_MAX];	/* a plain name, e.g. "disk0.img" */
	uint64_t size;
	uint8_t sha256[SNAP_DIGEST_LEN];
	bool read_only;
};

struct snap_manifest {
	uint8_t id[SNAP_ID_LEN];
	char producer_name[SNAP_NAME_MAX];
	char producer_version[SNAP_NAME_MAX];
	char arch[SNAP_NAME_MAX];
	uint32_t page_size;
	uint32_t vcpu_count;
	struct snap_region regions[SNAP_MAX_REGIONS];
	uint32_t n_regions;
	bool has_parent;
	uint8_t parent_id[SNAP_ID_LEN];
	char *parent_hint;		/* may be NULL */
	uint64_t created_unix_ns;
	uint8_t state_sha256[SNAP_DIGEST_LEN];
	uint64_t state_size;
	uint64_t memory_size;
	bool has_memory_sha256;
	uint8_t memory_sha256[SNAP_DIGEST_LEN];
	char **required_features;
	uint32_t n_required;
	char **compatible_features;
	uint32_t n_compatible;
	char *cmdline;			/* may be NULL */
	struct snap_disk disks[SNAP_MAX_DISKS];
	uint32_t n_disks;
};

/*
 * Fill a new manifest with what every writer sets the same way: a random
 * id, the producer, arch "x86_64", the page size and the creation time.
 */
int snap_manifest_init(struct snap_manifest *m, const char *producer,
		       const char *version);

/* Free what the manifest owns (strings, feature lists); m may be NULL. */
void snap_manifest_release(struct snap_manifest *m);

/* Duplicate a string into *dst (replacing it); NULL clears it. */
int snap_manifest_set_text(char **dst, const char *src);

/* Append a feature name to a list (required or compatible). */
int snap_manifest_add_feature(char ***list, uint32_t *n, const char *name);

/* Check every field; errors say "manifest.bin: FIELD: ...". */
int snap_manifest_validate(const struct snap_manifest *m,
			   struct snap_err *err);

/* Encode m (validated first) into a new buffer holding manifest.bin. */
int snap_manifest_encode(const struct snap_manifest *m, uint8_t **buf,
			 size_t *len, struct snap_err *err);

/*
 * Decode manifest.bin: checksum trailer, then protobuf, then validation,
 * then required features. On success m owns new memory to release.
 */
int snap_manifest_decode(const uint8_t *buf, size_t len,
			 struct snap_manifest *m, struct snap_err *err);

/* True when this build knows the required feature name. */
bool snap_feature_known(const char *name);

#endif
