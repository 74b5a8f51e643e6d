/* SPDX-License-Identifier: MIT */
#ifndef SNAP_PACK_INT_H
#define SNAP_PACK_INT_H

/*
 * Inside pack files (pack.c: the key table, reads, open and free;
 * pack_write.c: puts, sync, compaction; pack_index.c: reading packs and
 * their indexes, writing indexes). Every function here expects ps->lock
 * held for writing, or the packs not yet shared (at open).
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "snapshot/store/pack.h"

#define SLOT_EMPTY	UINT32_MAX
#define SLOT_GONE	(UINT32_MAX - 1)
#define PACKS_NONE	UINT32_MAX
#define SMALL_PACK	(PACK_MAX / 8)

struct ent {
	uint8_t key[SNAP_KEY_LEN];
	uint64_t off;
	uint32_t len;
	uint32_t pack;		/* index in packs->pk, or SLOT_* */
};

/* A record of an unsealed pack, for its next index. */
struct rec {
	uint8_t key[SNAP_KEY_LEN];
	uint64_t off;
	uint32_t len;
};

struct pack {
	uint32_t seq;
	int fd;
	uint64_t end;		/* next record's offset (reserved or read) */
	uint64_t size;		/* bytes of whole records and header */
	uint64_t live;		/* bytes of records a key points to */
	unsigned inflight;	/* puts between reserve and enter */
	bool sealed, full, dirty, mine;
	struct rec *recs;	/* unsealed: every record entered */
	size_t nrecs, caprecs;
	struct stat idx_st;	/* a reader's: the index last read */
};

struct packs {
	int dfd;		/* dir/packs */
	char *dir;		/* its path, for frame_publish */
	bool rdonly;
	uint64_t seed;
	pthread_rwlock_t lock;
	struct ent *tab;
	size_t cap, used, gone;
	struct pack **pk;
	uint32_t npk, cappk;
	uint32_t active;	/* PACKS_NONE: none yet */
	uint32_t next_seq;
};

/* ---- pack.c -------------------------------------------------------------- */

/* The table slot holding key, or SIZE_MAX. */
size_t pack_find(const struct packs *ps, const uint8_t *key);
/* Remember a record of unsealed pack p for its next index. */
int pack_add_rec(struct pack *p, const uint8_t *key, uint64_t off,
		 uint32_t len);
/* Enter key at (pack pi, off, len): 1, or 0 when known (it keeps its
 * place), or a negative errno. */
int pack_enter(struct packs *ps, uint32_t pi, const uint8_t *key,
	       uint64_t off, uint32_t len);
/* A new entry in ps->pk for pack seq open at fd, its index in *pi. */
int pack_new(struct packs *ps, uint32_t seq, int fd, uint32_t *pi);

/* ---- pack_index.c -------------------------------------------------------- */

/* "0000000042.pack" for seq 42 and ext "pack". */
int pack_file_name(char *buf, size_t n, uint32_t seq, const char *ext);
/* Read every pack not known yet; in a reader, again what changed. */
int pack_load_all(struct packs *ps, struct snap_err *err);
/* Publish pack pi's index again (sealed when seal is or it was). */
int pack_write_index(struct packs *ps, uint32_t pi, bool seal);

#endif
