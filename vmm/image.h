/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_IMAGE_H
#define SNAPVM_IMAGE_H

/*
 * Writing RAM images (memory.bin): the three ways a save fills one. All
 * write at the same offsets they read (an image is RAM from offset 0), into
 * a file already sized, and return the bytes they moved or -errno.
 */

#include <stdint.h>
#include <sys/types.h>

#define IMAGE_PAGE	4096u

/*
 * Copy the data extents of src's first size bytes into dst (holes stay
 * holes) with copy_file_range, which shares extents where the filesystem
 * can; read and write where it cannot.
 */
int64_t image_copy_file(int src, int dst, uint64_t size);

/* Write the pages of ram that are not all zero; the rest stay holes. */
int64_t image_write_nonzero(const uint8_t *ram, uint64_t size, int dst);

/*
 * Write the pages whose bit is set in bitmap (bit i of word i / 64 is page
 * i), in runs.
 */
int64_t image_write_pages(const uint8_t *ram, uint64_t size,
			  const uint64_t *bitmap, int dst);

#endif
