/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_SNAPSHOT_H
#define SNAPVM_SNAPSHOT_H

/*
 * Saving a running VM as a snapshot directory (docs/format.md), published
 * atomically through libsnap's writer.
 *
 * A save pauses every vCPU, reads the VM's state (vstate.h) and each
 * device's, writes memory.bin and copies each disk (devices_capture), and
 * resumes; then, with the VM running, it syncs them, digests the disks,
 * writes state.bin and manifest.bin and renames the result into place:
 * nothing the VM does after the pause reaches the snapshot. memory.bin is always a complete image of RAM; how
 * it is made depends on what the saver knows:
 *
 *   - a base: a complete image equal to RAM when KVM's dirty log was last
 *     cleared (the VM's last snapshot, or the image it was restored from
 *     MAP_PRIVATE). memory.bin is then a copy_file_range of the base (free
 *     where the filesystem shares extents) with the pages written since
 *     written over it: time and bytes grow with those pages.
 *   - no base, RAM in a shared file (--mem-file): a copy_file_range of
 *     the file's data extents.
 *   - no base, anonymous RAM: the non-zero pages; memory.bin is sparse.
 *
 * A diff snapshot (parent given) must name the base: its manifest records
 * the parent's id. After a save, the snapshot is the base of the next one.
 * A failed save changes nothing: the pages written since the base stay
 * counted, and the VM resumes.
 */

#include <stdbool.h>
#include <stdint.h>

#include "snapshot/format/error.h"
#include "snapshot/format/manifest.h"

struct vm;
struct saver;

/* Where the first base comes from: a restored snapshot's memory.bin. */
struct saver_base {
	const char *memory_path;	/* NULL: no base */
	uint8_t id[SNAP_ID_LEN];	/* that snapshot's id */
};

/*
 * A saver for vm (built, not yet started). cmdline (may be NULL) goes into
 * each manifest. With base->memory_path, KVM's dirty log starts now: call
 * it before the vCPUs first run.
 */
int saver_create(struct saver **out, struct vm *vm, const char *cmdline,
		 const struct saver_base *base, struct snap_err *err);
void saver_destroy(struct saver *s);

struct saver_result {
	uint8_t id[SNAP_ID_LEN];
	bool diff;
	uint64_t copied;	/* bytes of memory.bin copied from a file */
	uint64_t written;	/* bytes of memory.bin written from RAM */
	uint64_t paused_us;	/* how long the vCPUs were parked */
};

/*
 * Save the VM as dir (absolute, must not exist), a diff of parent when it
 * is not NULL. Any thread but a vCPU's; one save at a time.
 */
int saver_save(struct saver *s, const char *dir, const char *parent,
	       struct saver_result *r, struct snap_err *err);

#endif
