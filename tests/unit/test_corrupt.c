/* SPDX-License-Identifier: MIT */
/*
 * Corruption: flip and truncate every byte of a small snapshot's
 * manifest.bin and state.bin. The reader must refuse each with one clear
 * message naming the file, and never crash (this runs under ASan in CI).
 * The parsers behind the digests get the same treatment directly.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/lib/testutil.h"

#define MEM (64u << 10)

struct fixture {
	char *tmp;
	char *dir;
	char *path;		/* the file under attack */
	uint8_t *orig;
	size_t len;
};

static void setup_file(struct fixture *fx, const char *name)
{
	fx->tmp = test_tmpdir();
	if (asprintf(&fx->dir, "%s/s", fx->tmp) < 0 ||
	    asprintf(&fx->path, "%s/%s", fx->dir, name) < 0)
		abort();
	assert_int_equal(test_write_snapshot(&snap_io_posix, fx->dir, 1, MEM,
					     7,
					     SNAP_MEMORY_DIGEST, NULL), 0);
	fx->orig = test_read_file(fx->path, &fx->len);
}

static void teardown_file(struct fixture *fx)
{
	test_rmtree(fx->tmp);
	free(fx->orig);
	free(fx->path);
	free(fx->dir);
	free(fx->tmp);
}

static void expect_refused(struct fixture *fx, const char *file,
			   const char *how, size_t at)
{
	struct snap_err err = { "" };
	struct snap_state *s = NULL;
	struct snap_manifest m;
	int ret;

	ret = snap_read(fx->dir, 0, &m, &s, &err);
	if (ret == 0) {
		snap_manifest_release(&m);
		snap_state_free(s);
		fail_msg("%s: %s at %zu was accepted", file, how, at);
	}
	assert_null(s);
	if (strncmp(err.msg, file, strlen(file)) || strchr(err.msg, '\n'))
		fail_msg("%s: %s at %zu: message \"%s\"", file, how, at,
			 err.msg);
}

static void attack(const char *name)
{
	struct fixture fx;
	uint8_t *buf;

	setup_file(&fx, name);
	buf = malloc(fx.len);
	for (size_t i = 0; i < fx.len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {	/* low and high bit */
			memcpy(buf, fx.orig, fx.len);
			buf[i] ^= (uint8_t)(1u << bit);
			test_write_file(fx.path, buf, fx.len);
			expect_refused(&fx, name, "flip", i);
		}
	}
	for (size_t n = 0; n < fx.len; n++) {
		test_write_file(fx.path, fx.orig, n);
		expect_refused(&fx, name, "truncation", n);
	}
	/* Put back, it reads again: the sweep really tested a good file. */
	test_write_file(fx.path, fx.orig, fx.len);
	{
		struct snap_manifest m;

		assert_int_equal(snap_read(fx.dir, 0, &m, NULL, NULL), 0);
		snap_manifest_release(&m);
	}
	free(buf);
	teardown_file(&fx);
}

static void test_manifest_flips_and_truncations(void **unused)
{
	attack(SNAP_MANIFEST_FILE);
}

static void test_state_flips_and_truncations(void **unused)
{
	attack(SNAP_STATE_FILE);
}

/*
 * Behind a correct checksum: mutate the manifest's body and recompute the
 * trailer, so every byte reaches the protobuf decoder and validation.
 */
static void test_manifest_parser(void **unused)
{
	struct fixture fx;
	size_t body;
	uint8_t *buf;
	int accepted = 0, refused = 0;

	setup_file(&fx, SNAP_MANIFEST_FILE);
	body = fx.len - SNAP_TRAILER_LEN;
	buf = malloc(fx.len);
	for (size_t i = 0; i < body; i++) {
		for (unsigned v = 0; v < 256; v += 51) {
			struct snap_err err = { "" };
			struct snap_manifest m;

			memcpy(buf, fx.orig, fx.len);
			buf[i] = (uint8_t)(buf[i] ^ v ^ 0x80);
			snap_sha256(buf, body, buf + body + 2);
			if (snap_manifest_decode(buf, fx.len, &m, &err) == 0) {
				assert_int_equal(snap_manifest_validate(&m,
									NULL), 0);
				snap_manifest_release(&m);
				accepted++;
			} else {
				assert_non_null(strstr(err.msg, "manifest.bin"));
				refused++;
			}
		}
	}
	/* Both outcomes happen: values change, structure breaks. */
	assert_true(accepted > 0 && refused > 0);
	free(buf);
	teardown_file(&fx);
}

/* The state decoder on every flip and truncation, without the digest. */
static void test_state_parser(void **unused)
{
	struct fixture fx;
	uint8_t *buf;
	int accepted = 0, refused = 0;

	setup_file(&fx, SNAP_STATE_FILE);
	buf = malloc(fx.len);
	for (size_t i = 0; i < fx.len; i++) {
		struct snap_err err = { "" };
		struct snap_state *s = NULL;

		memcpy(buf, fx.orig, fx.len);
		buf[i] ^= 0xa5;
		if (snap_state_decode(buf, fx.len, &s, &err) == 0) {
			assert_int_equal(snap_state_validate(s, NULL), 0);
			snap_state_free(s);
			accepted++;
		} else {
			assert_null(s);
			assert_non_null(strstr(err.msg, "state.bin"));
			refused++;
		}
	}
	for (size_t n = 0; n < fx.len; n += 7) {
		struct snap_state *s = NULL;

		if (snap_state_decode(fx.orig, n, &s, NULL) == 0) {
			assert_int_equal(snap_state_validate(s, NULL), 0);
			snap_state_free(s);
		}
	}
	assert_true(accepted > 0 && refused > 0);
	free(buf);
	teardown_file(&fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_flips_and_truncations),
		cmocka_unit_test(test_state_flips_and_truncations),
		cmocka_unit_test(test_manifest_parser),
		cmocka_unit_test(test_state_parser),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
