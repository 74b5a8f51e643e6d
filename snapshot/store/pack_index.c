/* SPDX-License-Identifier: MIT */
/*
 * Pack files on disk (pack.c says what they are): reading a pack and its
 * index at open, or again in a reader; writing an index. Everything read
 * is checked against the pack file's real size before it is entered.
 */
#include "snapshot/store/pack_int.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/store/frame.h"
#include "proto/store.pb-c.h"

int pack_file_name(char *buf, size_t n, uint32_t seq, const char *ext)
{
	return snprintf(buf, n, "%010u.%s", seq, ext);
}

static bool rec_hdr_ok(const uint8_t *h, uint32_t *len)
{
	uint32_t n, cpl;

	memcpy(&n, h + 4, 4);
	memcpy(&cpl, h + 8, 4);
	n = le32toh(n);
	cpl = le32toh(cpl);
	*len = n;
	return !memcmp(h, PACK_REC_MAGIC, 4) && n == ~cpl &&
	       n <= PACK_VALUE_MAX;
}

/* Enter the whole records of pack pi from p->end to file_size. */
static int scan(struct packs *ps, uint32_t pi, uint64_t file_size)
{
	struct pack *p = ps->pk[pi];
	uint8_t h[PACK_REC_HDR];
	uint32_t len;
	int ret;

	while (p->end + PACK_REC_HDR <= file_size) {
		if (pread(p->fd, h, sizeof(h), (off_t)p->end) !=
		    (ssize_t)sizeof(h))
			return -EIO;
		if (!rec_hdr_ok(h, &len) ||
		    p->end + PACK_REC_HDR + len > file_size)
			break;		/* torn, or not yet written */
		ret = pack_enter(ps, pi, h + 12, p->end, len);
		if (ret < 0)
			return ret;
		p->end += PACK_REC_HDR + (uint64_t)len;
		p->size = p->end;
	}
	return 0;
}

/* Pack p's index, decoded and its lists of one length; -ENOENT: none. */
static int index_load(struct packs *ps, struct pack *p,
		      Snapfs__Store__PackIndex **out, struct snap_err *err)
{
	Snapfs__Store__PackIndex *m;
	char name[32], path[4096 + 32], label[48];
	uint8_t *buf;
	size_t len;
	int ret;

	pack_file_name(name, sizeof(name), p->seq, "idx");
	snprintf(path, sizeof(path), "%s/%s", ps->dir, name);
	snprintf(label, sizeof(label), "packs/%s", name);
	if (fstatat(ps->dfd, name, &p->idx_st, 0))
		return -errno;
	ret = frame_read_one(path, label, &buf, &len, err);
	if (ret)
		return ret;
	m = snapfs__store__pack_index__unpack(NULL, len, buf);
	free(buf);
	if (!m)
		return snap_err_set(err, -EBADMSG, "%s: undecodable", label);
	if (m->keys.len != m->n_offsets * SNAP_KEY_LEN ||
	    m->n_lengths != m->n_offsets) {
		ret = snap_err_set(err, -EBADMSG, "%s: %zu offsets, %zu "
				   "lengths and %zu key bytes disagree", label,
				   m->n_offsets, m->n_lengths, m->keys.len);
		snapfs__store__pack_index__free_unpacked(m, NULL);
		return ret;
	}
	*out = m;
	return 0;
}

/*
 * Enter what pack pi's index lists (records inside file_size only: a
 * listed record past the end is absent, as verify then says) and take its
 * end and seal. -ENOENT when it has no index.
 */
static int read_index(struct packs *ps, uint32_t pi, uint64_t file_size,
		      struct snap_err *err)
{
	struct pack *p = ps->pk[pi];
	Snapfs__Store__PackIndex *m;
	int ret;

	ret = index_load(ps, p, &m, err);
	if (ret)
		return ret;
	p->sealed = m->sealed;		/* before pack_enter(): no records kept */
	for (size_t i = 0; i < m->n_offsets; i++) {
		uint64_t off = m->offsets[i], n = m->lengths[i];

		if (off < PACK_HDR || n > PACK_VALUE_MAX ||
		    off > file_size || file_size - off < PACK_REC_HDR + n)
			continue;
		ret = pack_enter(ps, pi, m->keys.data + i * SNAP_KEY_LEN, off,
			    (uint32_t)n);
		if (ret < 0)
			break;
		ret = 0;
	}
	if (m->end > p->end)
		p->end = m->end < file_size ? m->end : file_size;
	p->size = p->end;
	snapfs__store__pack_index__free_unpacked(m, NULL);
	return ret;
}

/* Read pack seq: its header, its index, and the records past the index. */
static int load_pack(struct packs *ps, uint32_t seq, struct snap_err *err)
{
	char name[32], magic[PACK_HDR];
	struct stat st;
	uint32_t pi;
	int fd, ret;

	pack_file_name(name, sizeof(name), seq, "pack");
	fd = openat(ps->dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return snap_err_set(err, -errno, "packs/%s: %m", name);
	if (fstat(fd, &st)) {
		ret = snap_err_set(err, -errno, "packs/%s: %m", name);
		close(fd);
		return ret;
	}
	ret = pack_new(ps, seq, fd, &pi);
	if (ret) {
		close(fd);
		return snap_err_set(err, ret, "packs: out of memory");
	}
	if ((uint64_t)st.st_size < PACK_HDR) {	/* made, never written */
		ps->pk[pi]->end = PACK_HDR;
		return 0;
	}
	if (pread(fd, magic, PACK_HDR, 0) != PACK_HDR ||
	    memcmp(magic, PACK_MAGIC, 8))
		return snap_err_set(err, -EBADMSG, "packs/%s: not a pack",
				    name);
	ret = read_index(ps, pi, (uint64_t)st.st_size, err);
	if (ret && ret != -ENOENT)
		return ret;
	if (!ps->pk[pi]->sealed)
		ret = scan(ps, pi, (uint64_t)st.st_size);
	else
		ret = 0;
	if (ret)
		return snap_err_set(err, ret, "packs/%s: %s", name,
				    strerror(-ret));
	return 0;
}

static struct pack *pack_by_seq(struct packs *ps, uint32_t seq, uint32_t *pi)
{
	for (uint32_t i = 0; i < ps->npk; i++)
		if (ps->pk[i] && ps->pk[i]->seq == seq) {
			*pi = i;
			return ps->pk[i];
		}
	return NULL;
}

/* "0000000042.pack" -> 42; false for any other name. */
static bool parse_name(const char *name, uint32_t *seq)
{
	char *end;
	unsigned long v;

	if (strlen(name) != 15 || strcmp(name + 10, ".pack"))
		return false;
	v = strtoul(name, &end, 10);
	if (end != name + 10 || v >= UINT32_MAX - 1)
		return false;
	*seq = (uint32_t)v;
	return true;
}

/*
 * Read every pack not known yet; in a reader, read again the indexes that
 * changed and the records appended since.
 */
int pack_load_all(struct packs *ps, struct snap_err *err)
{
	struct dirent *e;
	int fd, ret = 0;
	DIR *d;

	fd = dup(ps->dfd);
	if (fd < 0)
		return snap_err_set(err, -errno, "packs: %m");
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return snap_err_set(err, -errno, "packs: %m");
	}
	rewinddir(d);
	while (!ret && (e = readdir(d))) {
		uint32_t seq, pi;
		struct pack *p;
		struct stat st;
		char name[32];

		if (!parse_name(e->d_name, &seq))
			continue;
		p = pack_by_seq(ps, seq, &pi);
		if (!p) {
			ret = load_pack(ps, seq, err);
			continue;
		}
		if (p->sealed || p->mine)
			continue;
		pack_file_name(name, sizeof(name), seq, "idx");
		if (fstatat(ps->dfd, name, &st, 0) == 0 &&
		    (st.st_ino != p->idx_st.st_ino ||
		     st.st_mtim.tv_sec != p->idx_st.st_mtim.tv_sec ||
		     st.st_mtim.tv_nsec != p->idx_st.st_mtim.tv_nsec ||
		     st.st_size != p->idx_st.st_size)) {
			struct stat ps_st;

			if (fstat(p->fd, &ps_st))
				ret = -errno;
			else
				ret = read_index(ps, pi, (uint64_t)ps_st.st_size,
						 err);
			if (ret == -ENOENT)
				ret = 0;
		}
		if (!ret) {
			if (fstat(p->fd, &st))
				ret = snap_err_set(err, -errno, "packs: %m");
			else
				ret = scan(ps, pi, (uint64_t)st.st_size);
		}
	}
	closedir(d);
	return ret;
}

/*
 * Publish pack pi's index: those of recs (n) that a key still points to,
 * the pack's end, and whether it is sealed. Lock held for writing.
 */
static int publish_index(struct packs *ps, uint32_t pi, const struct rec *recs,
			 size_t n, bool seal)
{
	Snapfs__Store__PackIndex m = SNAPFS__STORE__PACK_INDEX__INIT;
	struct pack *p = ps->pk[pi];
	char name[32], path[4096 + 32];
	struct snap_err err;
	uint8_t *buf = NULL;
	size_t k = 0, len;
	int ret = -ENOMEM;

	m.keys.data = malloc(n * SNAP_KEY_LEN + 1);
	m.offsets = malloc((n + 1) * sizeof(*m.offsets));
	m.lengths = malloc((n + 1) * sizeof(*m.lengths));
	if (!m.keys.data || !m.offsets || !m.lengths)
		goto out;
	for (size_t i = 0; i < n; i++) {
		size_t s = pack_find(ps, recs[i].key);

		if (s == SIZE_MAX || ps->tab[s].pack != pi ||
		    ps->tab[s].off != recs[i].off)
			continue;	/* deleted, or moved */
		memcpy(m.keys.data + k * SNAP_KEY_LEN, recs[i].key,
		       SNAP_KEY_LEN);
		m.offsets[k] = recs[i].off;
		m.lengths[k] = recs[i].len;
		k++;
	}
	m.keys.len = k * SNAP_KEY_LEN;
	m.n_offsets = m.n_lengths = k;
	m.end = p->end;
	m.sealed = seal;
	len = protobuf_c_message_get_packed_size(&m.base);
	buf = malloc(len + 1);
	if (!buf)
		goto out;
	protobuf_c_message_pack(&m.base, buf);
	pack_file_name(name, sizeof(name), p->seq, "idx");
	snprintf(path, sizeof(path), "%s/%s", ps->dir, name);
	ret = frame_publish(path, buf, len, 0, &err);
out:
	free(buf);
	free(m.keys.data);
	free(m.offsets);
	free(m.lengths);
	return ret;
}

/* The records a sealed pack's index lists, to list them again. */
static int index_recs(struct packs *ps, struct pack *p, struct rec **recs,
		      size_t *n)
{
	Snapfs__Store__PackIndex *m;
	struct snap_err err;
	int ret;

	ret = index_load(ps, p, &m, &err);
	if (ret)
		return ret;
	*n = m->n_offsets;
	*recs = malloc((*n + 1) * sizeof(**recs));
	for (size_t i = 0; *recs && i < *n; i++) {
		memcpy((*recs)[i].key, m->keys.data + i * SNAP_KEY_LEN,
		       SNAP_KEY_LEN);
		(*recs)[i].off = m->offsets[i];
		(*recs)[i].len = m->lengths[i];
	}
	snapfs__store__pack_index__free_unpacked(m, NULL);
	return *recs ? 0 : -ENOMEM;
}

/*
 * Write pack pi's index again: after puts into it, or deletes from it (so
 * that a deleted key stays deleted after a restart), sealed when seal is
 * or it was. Lock held for writing.
 */
int pack_write_index(struct packs *ps, uint32_t pi, bool seal)
{
	struct pack *p = ps->pk[pi];
	struct rec *recs = NULL;
	size_t n = 0;
	int ret;

	if (p->sealed) {
		ret = index_recs(ps, p, &recs, &n);
		if (!ret)
			ret = publish_index(ps, pi, recs, n, true);
		if (!ret || ret == -ENOENT)
			p->dirty = false;
		free(recs);
		return ret == -ENOENT ? 0 : ret;
	}
	ret = publish_index(ps, pi, p->recs, p->nrecs, seal);
	if (ret)
		return ret;
	p->dirty = false;
	if (seal) {
		p->sealed = true;
		free(p->recs);
		p->recs = NULL;
		p->nrecs = p->caprecs = 0;
	}
	return 0;
}
