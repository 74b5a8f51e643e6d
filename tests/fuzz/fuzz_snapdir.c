/* SPDX-License-Identifier: MIT */
/*
 * A whole snapshot directory: snap_read (snapdir.c) with and without the
 * digests of memory.bin and the disks, and, for a snapshot that reads,
 * what snapctl inspect (text and JSON) and snapctl verify do with it.
 *
 * The input is a small container for the three files:
 *
 *   offset  size  field
 *   0       4     m: manifest.bin's length, little-endian
 *   4       4     s: state.bin's length, little-endian
 *   8       m     manifest.bin
 *   8+m     s     state.bin
 *   8+m+s   rest  memory.bin
 *
 * Lengths past the end of the input are cut to what is there.
 *
 * FUZZ_FIX: the manifest gets a correct checksum trailer; when it then
 * decodes, it is re-encoded with state.bin's size and digest, memory.bin
 * is cut or zero-extended to the manifest's memory size (up to 1 MiB)
 * with its digest recorded when the manifest records one, and each disk
 * of up to 64 KiB is made (zeros) with its digest: so the reading gets
 * past every digest to state.bin's decoder and the checks behind it.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"
#include "tools/snapctl/snapctl.h"
#include "snapshot/format/snapdir.h"

#define MEMORY_FIX_MAX	(1u << 20)
#define DISK_FIX_MAX	(64u << 10)

static char dir[PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_path(dir, fuzz_tmpdir(), "snap");
	if (mkdir(dir, 0755))
		fuzz_die("%s: %s", dir, strerror(errno));
	/* inspect prints; nobody reads it. */
	if (!freopen("/dev/null", "w", stdout))
		fuzz_die("/dev/null: %s", strerror(errno));
	return 0;
}

struct parts {
	const uint8_t *manifest, *state, *memory;
	size_t manifest_len, state_len, memory_len;
};

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void split(const uint8_t *data, size_t size, struct parts *p)
{
	size_t m = 0, s = 0;

	if (size >= 8) {
		m = get_le32(data);
		s = get_le32(data + 4);
		data += 8;
		size -= 8;
	} else {
		size = 0;
	}
	if (m > size)
		m = size;
	if (s > size - m)
		s = size - m;
	p->manifest = data;
	p->manifest_len = m;
	p->state = data + m;
	p->state_len = s;
	p->memory = data + m + s;
	p->memory_len = size - m - s;
}

static void write_part(const char *name, const void *buf, size_t len)
{
	char path[PATH_MAX];

	fuzz_path(path, dir, name);
	fuzz_write_file(path, buf, len);
}

/* Zero bytes for the digests of what the FUZZ_FIX variant makes. */
static const uint8_t zeros[DISK_FIX_MAX];

/*
 * FUZZ_FIX: the manifest (with a correct trailer) made to agree with
 * state.bin, memory.bin and the disks, all written; false when it does not
 * decode, and nothing written.
 */
static bool write_fixed(const struct parts *p)
{
	size_t body = p->manifest_len, len, mem;
	struct snap_manifest m;
	struct snap_err err;
	uint8_t *buf, *mbuf;
	bool ok;

	if (body >= SNAP_TRAILER_LEN &&
	    p->manifest[body - SNAP_TRAILER_LEN] == SNAP_TRAILER_TAG &&
	    p->manifest[body - SNAP_TRAILER_LEN + 1] == SNAP_DIGEST_LEN)
		body -= SNAP_TRAILER_LEN;
	len = body + SNAP_TRAILER_LEN;
	buf = malloc(len);
	if (!buf)
		return false;
	memcpy(buf, p->manifest, body);
	buf[body] = SNAP_TRAILER_TAG;
	buf[body + 1] = SNAP_DIGEST_LEN;
	snap_sha256(buf, body, buf + body + 2);
	ok = !snap_manifest_decode(buf, len, &m, &err);
	free(buf);
	if (!ok)
		return false;

	m.state_size = p->state_len;
	snap_sha256(p->state, p->state_len, m.state_sha256);
	mem = p->memory_len;
	if (m.memory_size <= MEMORY_FIX_MAX)
		mem = (size_t)m.memory_size;
	mbuf = calloc(1, mem ? mem : 1);
	if (!mbuf) {
		snap_manifest_release(&m);
		return false;
	}
	memcpy(mbuf, p->memory, mem < p->memory_len ? mem : p->memory_len);
	if (m.has_memory_sha256)
		snap_sha256(mbuf, mem, m.memory_sha256);
	for (uint32_t i = 0; i < m.n_disks; i++) {
		if (m.disks[i].size > DISK_FIX_MAX)
			continue;
		write_part(m.disks[i].file, zeros, (size_t)m.disks[i].size);
		snap_sha256(zeros, (size_t)m.disks[i].size, m.disks[i].sha256);
	}
	/* A state_size of 0 is invalid: then the manifest stays as it was. */
	if (snap_manifest_encode(&m, &buf, &len, &err)) {
		write_part(SNAP_MANIFEST_FILE, p->manifest, p->manifest_len);
	} else {
		write_part(SNAP_MANIFEST_FILE, buf, len);
		free(buf);
	}
	write_part(SNAP_STATE_FILE, p->state, p->state_len);
	write_part(SNAP_MEMORY_FILE, mbuf, mem);
	free(mbuf);
	snap_manifest_release(&m);
	return true;
}

/* The snapctl subcommand run as "snapctl NAME ARGS... DIR". */
static void snapctl(int (*run)(const struct snapctl_cmd *cmd, int argc,
			       char **argv), const char *name,
		    const char *option)
{
	const struct snapctl_cmd cmd = { name, "", "", run };
	char *argv[4];
	int argc = 0;

	argv[argc++] = (char *)name;
	if (option)
		argv[argc++] = (char *)option;
	argv[argc++] = dir;
	argv[argc] = NULL;
	run(&cmd, argc, argv);
}

/* Remove what an input left: the files of a snapshot and its disks. */
static void clean(void)
{
	fuzz_rmtree(dir);
	if (mkdir(dir, 0755))
		fuzz_die("%s: %s", dir, strerror(errno));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = fuzz_dup(data, size);
	struct snap_state *s = NULL;
	struct snap_manifest m;
	struct snap_err err;
	struct parts p;

	split(copy, size, &p);
	if (!FUZZ_FIX || !write_fixed(&p)) {
		write_part(SNAP_MANIFEST_FILE, p.manifest, p.manifest_len);
		write_part(SNAP_STATE_FILE, p.state, p.state_len);
		write_part(SNAP_MEMORY_FILE, p.memory, p.memory_len);
	}
	free(copy);

	if (!snap_read(dir, SNAP_MEMORY_DIGEST | SNAP_DISK_DIGEST, &m, &s,
		       &err)) {
		snap_state_free(s);
		snap_manifest_release(&m);
	}
	if (snap_read(dir, 0, &m, &s, &err) == 0) {
		if (inspect_json(dir, &m, s))
			fuzz_die("inspect --json: write error");
		snap_state_free(s);
		snap_manifest_release(&m);
		snapctl(inspect_run, "inspect", NULL);
		snapctl(verify_run, "verify", "--quick");
		snapctl(verify_run, "verify", NULL);
	}
	clean();
	return 0;
}
