/* SPDX-License-Identifier: MIT */
/*
 * Pack files: chunks appended to a few large files instead of one file
 * each. A chunk file costs an inode, a temporary name and a rename, about
 * 100 us on ext4 (far more for a while after a large delete, when ext4
 * skips recently freed inodes one by one), and threads creating them
 * queue on the directory's lock; an append costs the copy of its bytes.
 *
 *   packs/<seq>.pack   PACK_HDR bytes ("SNAPPACK", version 1), then
 *                      records: "SNPK", u32 len, u32 ~len, the 32-byte
 *                      key, then len bytes of value (little-endian)
 *   packs/<seq>.idx    one frame (frame.h): PackIndex, where each record
 *                      of the pack is, up to `end`
 *
 * Only the store's one writer appends, and only to packs it made. A put
 * reserves the record's place under the lock, writes the value and then
 * the header outside it (so that a reader in another process never finds
 * a header before its value), and enters the key once both are written.
 * Several puts write at once, so a record may be whole while one before
 * it is not yet: sync therefore publishes the index of every pack that
 * changed (the records whole at that moment) before syncfs, and what a
 * sync covered is found through the index after a crash whatever was left
 * torn around it. Records past an index's `end` are read one by one and
 * the first that is not whole ends the pack: puts no sync covered may be
 * lost, as the backend contract allows.
 *
 * A pack is sealed (nothing appended any more) once PACK_MAX bytes are
 * reserved and its last put is done; a writer seals every pack it finds at
 * open, so that packs are only read through indexes. A delete forgets the
 * key, and the next sync writes its pack's index without it; the bytes
 * stay until compaction (gc) copies the live records of mostly dead or
 * small sealed packs into the current one and removes those packs after
 * syncfs.
 *
 * The keys live in one open-addressing table (48 bytes a chunk), hashed
 * with a per-process random seed over all 32 bytes of the key, so that
 * indexes on disk cannot choose collisions. Sizes read from disk are
 * checked against the pack file's real size before anything is entered.
 *
 * Here: the key table, reads, open and free; pack_write.c: puts, sync and
 * compaction; pack_index.c: packs and their indexes on disk.
 */
#include "snapshot/store/pack_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/format/io.h"

/* ---- the key table ------------------------------------------------------- */

static uint64_t key_hash(const struct packs *ps, const uint8_t *key)
{
	uint64_t h = ps->seed, w;

	for (int i = 0; i < SNAP_KEY_LEN; i += 8) {
		memcpy(&w, key + i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 31;
	}
	return h;
}

/* The slot holding key, or SIZE_MAX. */
size_t pack_find(const struct packs *ps, const uint8_t *key)
{
	size_t mask = ps->cap - 1;

	if (!ps->cap)
		return SIZE_MAX;
	for (size_t i = key_hash(ps, key) & mask;; i = (i + 1) & mask) {
		const struct ent *e = &ps->tab[i];

		if (e->pack == SLOT_EMPTY)
			return SIZE_MAX;
		if (e->pack != SLOT_GONE && !memcmp(e->key, key, SNAP_KEY_LEN))
			return i;
	}
}

static void place(struct packs *ps, const struct ent *e)
{
	size_t mask = ps->cap - 1, i = key_hash(ps, e->key) & mask;

	while (ps->tab[i].pack != SLOT_EMPTY && ps->tab[i].pack != SLOT_GONE)
		i = (i + 1) & mask;
	if (ps->tab[i].pack == SLOT_GONE)
		ps->gone--;
	ps->tab[i] = *e;
	ps->used++;
}

/* Room for one more key: rehash at 3/4 full, counting deleted slots. */
static int reserve_slot(struct packs *ps)
{
	struct ent *old = ps->tab;
	size_t oldcap = ps->cap, cap = oldcap ? oldcap : 1024;

	if ((ps->used + ps->gone + 1) * 4 <= oldcap * 3)
		return 0;
	while ((ps->used + 1) * 2 > cap)
		cap *= 2;
	ps->tab = malloc(cap * sizeof(*ps->tab));
	if (!ps->tab) {
		ps->tab = old;
		return -ENOMEM;
	}
	for (size_t i = 0; i < cap; i++)
		ps->tab[i].pack = SLOT_EMPTY;
	ps->cap = cap;
	ps->used = ps->gone = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].pack != SLOT_EMPTY && old[i].pack != SLOT_GONE)
			place(ps, &old[i]);
	free(old);
	return 0;
}

int pack_add_rec(struct pack *p, const uint8_t *key, uint64_t off,
		   uint32_t len)
{
	if (p->nrecs == p->caprecs) {
		size_t cap = p->caprecs ? 2 * p->caprecs : 64;
		struct rec *r = realloc(p->recs, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		p->recs = r;
		p->caprecs = cap;
	}
	memcpy(p->recs[p->nrecs].key, key, SNAP_KEY_LEN);
	p->recs[p->nrecs].off = off;
	p->recs[p->nrecs].len = len;
	p->nrecs++;
	return 0;
}

/*
 * Enter key at (pack pi, off, len): a key already known keeps its place,
 * and the new record is dead weight. 1 when entered, 0 when known.
 */
int pack_enter(struct packs *ps, uint32_t pi, const uint8_t *key,
		 uint64_t off, uint32_t len)
{
	struct pack *p = ps->pk[pi];
	struct ent e = { .off = off, .len = len, .pack = pi };
	int ret;

	if (pack_find(ps, key) != SIZE_MAX)
		return 0;
	ret = reserve_slot(ps);
	if (!ret && !p->sealed && !ps->rdonly)	/* for its next index */
		ret = pack_add_rec(p, key, off, len);
	if (ret)
		return ret;
	memcpy(e.key, key, SNAP_KEY_LEN);
	place(ps, &e);
	p->live += PACK_REC_HDR + (uint64_t)len;
	return 1;
}

/* ---- the packs ----------------------------------------------------------- */

/* A new entry in ps->pk for pack seq open at fd, its index in *pi. */
int pack_new(struct packs *ps, uint32_t seq, int fd, uint32_t *pi)
{
	struct pack *p;

	if (ps->npk == ps->cappk) {
		uint32_t cap = ps->cappk ? 2 * ps->cappk : 16;
		struct pack **pk = realloc(ps->pk, cap * sizeof(*pk));

		if (!pk)
			return -ENOMEM;
		ps->pk = pk;
		ps->cappk = cap;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->seq = seq;
	p->fd = fd;
	p->end = p->size = PACK_HDR;
	*pi = ps->npk;
	ps->pk[ps->npk++] = p;
	if (seq >= ps->next_seq)
		ps->next_seq = seq + 1;
	return 0;
}

/* ---- reading ------------------------------------------------------------- */

/* A reader's second look, for a key another process may have put. */
static bool look_again(struct packs *ps)
{
	struct snap_err err;
	bool ok;

	if (!ps->rdonly || ps->dfd < 0)
		return false;
	pthread_rwlock_wrlock(&ps->lock);
	ok = pack_load_all(ps, &err) == 0;
	pthread_rwlock_unlock(&ps->lock);
	return ok;
}

/*
 * fn on key's entry with the lock held for reading (so that its pack
 * stays), looking again once in a reader; -ENOENT when absent.
 */
static int with_entry(struct packs *ps, const uint8_t *key,
		      int (*fn)(struct packs *ps, const struct ent *e,
				void *arg),
		      void *arg)
{
	int ret = -ENOENT;

	for (int again = 0; ret == -ENOENT && again < 2; again++) {
		size_t s;

		if (again && !look_again(ps))
			break;
		pthread_rwlock_rdlock(&ps->lock);
		s = pack_find(ps, key);
		if (s != SIZE_MAX)
			ret = fn(ps, &ps->tab[s], arg);
		pthread_rwlock_unlock(&ps->lock);
	}
	return ret;
}

struct get_arg {
	void *buf;
	size_t cap, *len;
};

static int get_value(struct packs *ps, const struct ent *e, void *arg)
{
	struct get_arg *g = arg;
	int ret;

	if (e->len > g->cap)
		return -EFBIG;
	ret = snap_io_read_all(ps->pk[e->pack]->fd, g->buf, e->len,
			       e->off + PACK_REC_HDR);
	if (!ret)
		*g->len = e->len;
	return ret;
}

int packs_get(struct packs *ps, const uint8_t key[SNAP_KEY_LEN], void *buf,
	      size_t cap, size_t *len)
{
	struct get_arg g = { buf, cap, len };

	return with_entry(ps, key, get_value, &g);
}

static int get_size(struct packs *ps, const struct ent *e, void *arg)
{
	(void)ps;
	*(uint64_t *)arg = e->len;
	return 0;
}

int packs_size(struct packs *ps, const uint8_t key[SNAP_KEY_LEN],
	       uint64_t *size)
{
	return with_entry(ps, key, get_size, size);
}

int packs_del(struct packs *ps, const uint8_t key[SNAP_KEY_LEN])
{
	struct ent *e;
	size_t s;

	if (ps->rdonly)
		return -EROFS;
	pthread_rwlock_wrlock(&ps->lock);
	s = pack_find(ps, key);
	if (s == SIZE_MAX) {
		pthread_rwlock_unlock(&ps->lock);
		return -ENOENT;
	}
	e = &ps->tab[s];
	ps->pk[e->pack]->live -= PACK_REC_HDR + (uint64_t)e->len;
	ps->pk[e->pack]->dirty = true;
	e->pack = SLOT_GONE;
	ps->used--;
	ps->gone++;
	pthread_rwlock_unlock(&ps->lock);
	return 0;
}

struct key_size {
	uint8_t key[SNAP_KEY_LEN];
	uint64_t size;
};

int packs_each(struct packs *ps,
	       int (*fn)(void *arg, const uint8_t key[SNAP_KEY_LEN],
			 uint64_t size),
	       void *arg)
{
	struct key_size *ks;
	size_t n = 0;
	int ret = 0;

	/* A copy: fn may delete, which takes the lock. */
	pthread_rwlock_rdlock(&ps->lock);
	ks = malloc((ps->used + 1) * sizeof(*ks));
	for (size_t i = 0; ks && i < ps->cap; i++) {
		const struct ent *e = &ps->tab[i];

		if (e->pack == SLOT_EMPTY || e->pack == SLOT_GONE)
			continue;
		memcpy(ks[n].key, e->key, SNAP_KEY_LEN);
		ks[n++].size = e->len;
	}
	pthread_rwlock_unlock(&ps->lock);
	if (!ks)
		return -ENOMEM;
	for (size_t i = 0; !ret && i < n; i++)
		ret = fn(arg, ks[i].key, ks[i].size);
	free(ks);
	return ret;
}

/* ---- open and free ------------------------------------------------------- */

/* One descriptor per pack stays open: room for them all and some. */
static void room_for_fds(uint32_t npk)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= 2 * npk + 1024)
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

int packs_open(int dfd, const char *dir, bool rdonly, struct packs **out,
	       struct snap_err *err)
{
	struct packs *ps = calloc(1, sizeof(*ps));
	int ret;

	if (!ps)
		return snap_err_set(err, -ENOMEM, "packs: out of memory");
	ps->dfd = -1;
	ps->rdonly = rdonly;
	ps->active = PACKS_NONE;
	pthread_rwlock_init(&ps->lock, NULL);
	if (getrandom(&ps->seed, sizeof(ps->seed), 0) != sizeof(ps->seed)) {
		ret = snap_err_set(err, -errno, "getrandom: %m");
		goto fail;
	}
	if (asprintf(&ps->dir, "%s/packs", dir) < 0) {
		ps->dir = NULL;
		ret = snap_err_set(err, -ENOMEM, "packs: out of memory");
		goto fail;
	}
	if (!rdonly && mkdirat(dfd, "packs", 0755) && errno != EEXIST) {
		ret = snap_err_set(err, -errno, "%s: %m", ps->dir);
		goto fail;
	}
	ps->dfd = openat(dfd, "packs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ps->dfd < 0 && !(rdonly && errno == ENOENT)) {
		ret = snap_err_set(err, -errno, "%s: %m", ps->dir);
		goto fail;
	}
	ret = ps->dfd < 0 ? 0 : pack_load_all(ps, err);
	if (ret)
		goto fail;
	room_for_fds(ps->npk);
	/* A writer's packs are its own: the others are sealed as found. */
	for (uint32_t i = 0; !rdonly && !ret && i < ps->npk; i++)
		if (!ps->pk[i]->sealed)
			ret = pack_write_index(ps, i, true);
	if (ret) {
		snap_err_set(err, ret, "%s: sealing: %s", ps->dir,
			     strerror(-ret));
		goto fail;
	}
	*out = ps;
	return 0;
fail:
	packs_free(ps);
	return ret;
}

void packs_free(struct packs *ps)
{
	if (!ps)
		return;
	for (uint32_t i = 0; i < ps->npk; i++) {
		if (!ps->pk[i])
			continue;
		close(ps->pk[i]->fd);
		free(ps->pk[i]->recs);
		free(ps->pk[i]);
	}
	free(ps->pk);
	free(ps->tab);
	free(ps->dir);
	if (ps->dfd >= 0)
		close(ps->dfd);
	pthread_rwlock_destroy(&ps->lock);
	free(ps);
}
