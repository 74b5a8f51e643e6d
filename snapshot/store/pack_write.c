/* SPDX-License-Identifier: MIT */
/*
 * Pack files, the writer's side (pack.c says what they are): puts, the
 * sync that publishes the indexes of the packs that changed, and the
 * compaction that copies the live records of mostly dead or small sealed
 * packs into the current one.
 */
#include "snapshot/store/pack_int.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/format/io.h"

/* ---- writing ------------------------------------------------------------- */

static void le32_put(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

/* A new pack to append to, as ps->active. Lock held for writing. */
static int start_pack(struct packs *ps)
{
	uint8_t hdr[PACK_HDR] = PACK_MAGIC;
	char name[32];
	uint32_t pi;
	int fd, ret;

	le32_put(hdr + 8, 1);
	for (;;) {
		pack_file_name(name, sizeof(name), ps->next_seq, "pack");
		fd = openat(ps->dfd, name, O_RDWR | O_CREAT | O_EXCL |
			    O_CLOEXEC, 0444);
		if (fd >= 0 || errno != EEXIST)
			break;
		ps->next_seq++;	/* left by a writer before us */
	}
	if (fd < 0)
		return -errno;
	ret = snap_io_write_all(&snap_io_posix, fd, hdr, sizeof(hdr), 0);
	if (!ret)
		ret = pack_new(ps, ps->next_seq, fd, &pi);
	if (ret) {
		close(fd);
		unlinkat(ps->dfd, name, 0);
		return ret;
	}
	ps->pk[pi]->mine = true;
	ps->active = pi;
	return 0;
}

/* Seal pack pi once it is full and its last put is done. */
static void maybe_seal(struct packs *ps, uint32_t pi)
{
	struct pack *p = ps->pk[pi];

	if (p->full && !p->inflight && !p->sealed)
		pack_write_index(ps, pi, true);	/* else sealed at next open */
}

/*
 * Append a record of key and value (len bytes) to the active pack: its
 * place under the lock, its bytes outside, value first. *pi and *off say
 * where; the caller enters it and ends the put with put_done(), unless
 * *pi is PACKS_NONE: nothing was reserved.
 */
static int append(struct packs *ps, const uint8_t *key, const void *buf,
		  uint32_t len, uint32_t *pi, uint64_t *off)
{
	uint64_t need = PACK_REC_HDR + (uint64_t)len;
	uint8_t hdr[PACK_REC_HDR];
	struct pack *p;
	int ret = 0;

	*pi = PACKS_NONE;
	pthread_rwlock_wrlock(&ps->lock);
	p = ps->active == PACKS_NONE ? NULL : ps->pk[ps->active];
	if (p && p->end > PACK_HDR && p->end + need > PACK_MAX) {
		p->full = true;
		maybe_seal(ps, ps->active);
		p = NULL;
	}
	if (!p) {
		ret = start_pack(ps);
		if (!ret)
			p = ps->pk[ps->active];
	}
	if (p) {
		*pi = ps->active;
		*off = p->end;
		p->end += need;
		p->inflight++;
	}
	pthread_rwlock_unlock(&ps->lock);
	if (ret)
		return ret;
	memcpy(hdr, PACK_REC_MAGIC, 4);
	le32_put(hdr + 4, len);
	le32_put(hdr + 8, ~len);
	memcpy(hdr + 12, key, SNAP_KEY_LEN);
	ret = snap_io_write_all(&snap_io_posix, p->fd, buf, len,
				*off + PACK_REC_HDR);
	if (!ret)
		ret = snap_io_write_all(&snap_io_posix, p->fd, hdr,
					sizeof(hdr), *off);
	return ret;
}

/* The end of a put to pack pi: lock held for writing. */
static void put_done(struct packs *ps, uint32_t pi, uint64_t off,
		     uint32_t len)
{
	struct pack *p = ps->pk[pi];
	uint64_t end = off + PACK_REC_HDR + len;

	p->inflight--;
	if (end > p->size)
		p->size = end;
	maybe_seal(ps, pi);
}

int packs_put(struct packs *ps, const uint8_t key[SNAP_KEY_LEN],
	      const void *buf, size_t len)
{
	uint64_t off;
	uint32_t pi;
	int ret;

	if (ps->rdonly)
		return -EROFS;
	if (len > PACK_VALUE_MAX)
		return -EFBIG;
	pthread_rwlock_rdlock(&ps->lock);
	ret = pack_find(ps, key) != SIZE_MAX;
	pthread_rwlock_unlock(&ps->lock);
	if (ret)
		return 0;	/* the store only puts a key's one content */
	ret = append(ps, key, buf, (uint32_t)len, &pi, &off);
	if (pi == PACKS_NONE)
		return ret;
	pthread_rwlock_wrlock(&ps->lock);
	if (!ret)
		ret = pack_enter(ps, pi, key, off, (uint32_t)len);
	ps->pk[pi]->dirty = true;
	put_done(ps, pi, off, (uint32_t)len);
	pthread_rwlock_unlock(&ps->lock);
	return ret < 0 ? ret : 0;
}

/* ---- sync and compaction ------------------------------------------------- */

int packs_sync(struct packs *ps)
{
	int ret = 0;

	if (ps->rdonly)
		return 0;
	pthread_rwlock_wrlock(&ps->lock);
	for (uint32_t i = 0; !ret && i < ps->npk; i++) {
		struct pack *p = ps->pk[i];

		if (p && p->dirty)
			ret = pack_write_index(ps, i, false);
	}
	pthread_rwlock_unlock(&ps->lock);
	if (!ret && syncfs(ps->dfd))
		ret = -errno;
	return ret;
}

/*
 * Whether compaction rewrites pack p: a fifth of it dead (so packs take
 * at most 5/4 of what they hold, for writing each live byte again at most
 * four times per byte freed), or small beside other small ones.
 */
static bool worth_compacting(const struct packs *ps, const struct pack *p,
			     uint32_t nsmall)
{
	if (!p->sealed ||
	    (ps->active != PACKS_NONE && p == ps->pk[ps->active]))
		return false;
	return p->live * 5 < p->size * 4 ||
	       (p->size < SMALL_PACK && nsmall > 1);
}

/* Move the record of key from (pi, off) to the active pack. */
static int move_record(struct packs *ps, const struct ent *old, void *buf)
{
	uint64_t off;
	uint32_t pi;
	size_t s;
	int ret;

	pthread_rwlock_rdlock(&ps->lock);	/* ps->pk may grow */
	ret = snap_io_read_all(ps->pk[old->pack]->fd, buf, old->len,
			       old->off + PACK_REC_HDR);
	pthread_rwlock_unlock(&ps->lock);
	if (ret)
		return ret;
	ret = append(ps, old->key, buf, old->len, &pi, &off);
	if (pi == PACKS_NONE)
		return ret;
	pthread_rwlock_wrlock(&ps->lock);
	s = pack_find(ps, old->key);
	if (!ret && s != SIZE_MAX && ps->tab[s].pack == old->pack &&
	    ps->tab[s].off == old->off) {
		struct pack *from = ps->pk[old->pack], *to = ps->pk[pi];
		uint64_t rec = PACK_REC_HDR + (uint64_t)old->len;

		ret = pack_add_rec(to, old->key, off, old->len);
		if (!ret) {
			ps->tab[s].pack = pi;
			ps->tab[s].off = off;
			from->live -= rec;
			to->live += rec;
			from->dirty = to->dirty = true;
		}
	}
	put_done(ps, pi, off, old->len);
	pthread_rwlock_unlock(&ps->lock);
	return ret;
}

/* By pack, then by offset: a pack's records copied in one pass. */
static int by_place(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;

	if (x->pack != y->pack)
		return x->pack < y->pack ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Remove pack i, which no key points into. Lock held for writing. */
static void drop_pack(struct packs *ps, uint32_t i)
{
	struct pack *p = ps->pk[i];
	char name[32];

	pack_file_name(name, sizeof(name), p->seq, "idx");
	unlinkat(ps->dfd, name, 0);
	pack_file_name(name, sizeof(name), p->seq, "pack");
	unlinkat(ps->dfd, name, 0);
	close(p->fd);
	free(p->recs);
	free(p);
	ps->pk[i] = NULL;
}

/* Remove the doomed packs no key points into any more. */
static void drop_emptied(struct packs *ps, const bool *doomed, uint32_t npk)
{
	pthread_rwlock_wrlock(&ps->lock);
	for (uint32_t i = 0; i < npk; i++)
		if (doomed[i] && ps->pk[i] && !ps->pk[i]->live)
			drop_pack(ps, i);
	pthread_rwlock_unlock(&ps->lock);
}

/*
 * The packs worth compacting, marked in a new array of ps->npk (*npk),
 * and the entries pointing into them in a new array (*n), by place.
 */
static int doomed_packs(struct packs *ps, bool **doomed, uint32_t *npk,
			struct ent **moves, size_t *n)
{
	uint32_t nsmall = 0;

	*n = 0;
	pthread_rwlock_wrlock(&ps->lock);
	/* The pack being written holds most of the garbage (what was
	 * rewritten since the last gc): sealed now, it can go too. */
	if (ps->active != PACKS_NONE) {
		struct pack *p = ps->pk[ps->active];

		if (!p->inflight && p->live * 5 < p->size * 4 &&
		    !pack_write_index(ps, ps->active, true))
			ps->active = PACKS_NONE;
	}
	*npk = ps->npk;
	*doomed = calloc(*npk + 1, sizeof(**doomed));
	for (uint32_t i = 0; i < *npk; i++)
		if (ps->pk[i] && ps->pk[i]->sealed &&
		    ps->pk[i]->size < SMALL_PACK)
			nsmall++;
	for (uint32_t i = 0; *doomed && i < *npk; i++)
		(*doomed)[i] = ps->pk[i] && worth_compacting(ps, ps->pk[i],
							     nsmall);
	*moves = *doomed ? malloc((ps->used + 1) * sizeof(**moves)) : NULL;
	for (size_t i = 0; *moves && i < ps->cap; i++) {
		const struct ent *e = &ps->tab[i];

		if (e->pack < *npk && (*doomed)[e->pack])
			(*moves)[(*n)++] = *e;
	}
	pthread_rwlock_unlock(&ps->lock);
	if (!*moves)
		return -ENOMEM;
	qsort(*moves, *n, sizeof(**moves), by_place);
	return 0;
}

/*
 * Copy the live records of the doomed packs into the current one, pack
 * after pack, and remove each batch of emptied packs once its copies are
 * synced: at any moment the store holds at most one batch (32 MiB of
 * copies) twice.
 */
int packs_compact(struct packs *ps)
{
	struct ent *moves = NULL;
	bool *doomed = NULL;
	uint64_t batch = 0;
	uint32_t npk;
	size_t n;
	void *buf;
	int ret;

	if (ps->rdonly)
		return -EROFS;
	buf = malloc(PACK_VALUE_MAX);
	ret = buf ? doomed_packs(ps, &doomed, &npk, &moves, &n) : -ENOMEM;
	for (size_t i = 0; !ret && i < n; i++) {
		ret = move_record(ps, &moves[i], buf);
		batch += PACK_REC_HDR + (uint64_t)moves[i].len;
		if (ret || (i + 1 < n && (batch < PACK_MAX / 2 ||
					  moves[i + 1].pack == moves[i].pack)))
			continue;
		ret = packs_sync(ps);	/* the copies durable first */
		if (!ret)
			drop_emptied(ps, doomed, npk);
		batch = 0;
	}
	if (!ret)
		drop_emptied(ps, doomed, npk);	/* those nothing was in */
	free(buf);
	free(moves);
	free(doomed);
	return ret;
}
