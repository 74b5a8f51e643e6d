/* SPDX-License-Identifier: MIT */
#ifndef SNAP_PACK_H
#define SNAP_PACK_H

/*
 * Pack files: the directory backend's chunks, many to a file (pack.c and
 * docs/store.md "Pack files"). The same operations as a backend's, with
 * -ENOENT for a key no pack holds, so that the directory backend can look
 * for the one-file-per-chunk layout of older stores next.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot/store/backend.h"

#define PACK_MAGIC	"SNAPPACK"	/* a pack's first 8 bytes */
#define PACK_HDR	16		/* magic, u32 version 1, u32 0 */
#define PACK_REC_MAGIC	"SNPK"
#define PACK_REC_HDR	44		/* magic, u32 len, u32 ~len, key */
#define PACK_VALUE_MAX	(8u << 20)	/* twice the largest chunk */
#define PACK_MAX	(64ull << 20)	/* bytes before a pack is sealed */

struct packs;

/*
 * The packs under dir/packs (made when missing unless rdonly), read: each
 * pack's index and, past what an index accounts for, its records. A writer
 * (not rdonly) seals every pack it finds, and appends only to packs of its
 * own; a reader looks again when asked for a key it does not know.
 */
int packs_open(int dfd, const char *dir, bool rdonly, struct packs **out,
	       struct snap_err *err);
void packs_free(struct packs *ps);

int packs_put(struct packs *ps, const uint8_t key[SNAP_KEY_LEN],
	      const void *buf, size_t len);
int packs_get(struct packs *ps, const uint8_t key[SNAP_KEY_LEN], void *buf,
	      size_t cap, size_t *len);
int packs_size(struct packs *ps, const uint8_t key[SNAP_KEY_LEN],
	       uint64_t *size);
int packs_del(struct packs *ps, const uint8_t key[SNAP_KEY_LEN]);
int packs_each(struct packs *ps,
	       int (*fn)(void *arg, const uint8_t key[SNAP_KEY_LEN],
			 uint64_t size),
	       void *arg);

/* Write the index of every pack that changed, then syncfs. */
int packs_sync(struct packs *ps);

/*
 * Rewrite the packs that are mostly dead, and merge small ones, into the
 * pack being written; remove them once the copies are durable.
 */
int packs_compact(struct packs *ps);

#endif
