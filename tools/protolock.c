/* SPDX-License-Identifier: MIT */
/*
 * protolock: guards the on-disk compatibility rule of the schemas in
 * proto/, "a committed field never changes number, type or label"
 * (docs/format.md).
 *
 * It lists every field of every message of manifest.proto, state.proto
 * and store.proto as protobuf-c's descriptors describe them, one line per
 * field, sorted:
 *
 *	<message full name> <number> <name> <label> <type>
 *
 * label is what protobuf-c reports (required, optional, repeated, or none
 * for proto3 implicit presence); type is the protobuf type name, with
 * message:<full name> and enum:<full name> for composite ones.
 *
 *	protolock dump			print the listing
 *	protolock check LOCK [--tap]	compare it with LOCK (proto/schema.lock)
 *	protolock update LOCK		add new fields to LOCK, refusing changes
 *
 * A locked field must still exist in its message with the same number,
 * name, label and type; a field not yet in the lock fails check until
 * `make proto-lock` records it. Exit status: 0 clean, 1 violation, 2 usage
 * or I/O error.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/manifest.pb-c.h"
#include "proto/state.pb-c.h"
#include "proto/store.pb-c.h"

/*
 * Every message of both schema files, reachable from the roots or not (a
 * device payload such as Uart8250 is only ever packed into bytes). A new
 * message goes here; fields naming a message missing from this table make
 * protolock fail.
 */
static const ProtobufCMessageDescriptor *const descriptors[] = {
	/* proto/manifest.proto */
	&snapfs__manifest__producer__descriptor,
	&snapfs__manifest__memory_region__descriptor,
	&snapfs__manifest__snapshot_manifest__descriptor,
	&snapfs__manifest__disk__descriptor,
	/* proto/state.proto */
	&snapfs__state__regs__descriptor,
	&snapfs__state__segment__descriptor,
	&snapfs__state__descriptor_table__descriptor,
	&snapfs__state__sregs__descriptor,
	&snapfs__state__fpu__descriptor,
	&snapfs__state__xcr__descriptor,
	&snapfs__state__msr__descriptor,
	&snapfs__state__vcpu_events__descriptor,
	&snapfs__state__debug_regs__descriptor,
	&snapfs__state__cpuid_entry__descriptor,
	&snapfs__state__vcpu__descriptor,
	&snapfs__state__pic__descriptor,
	&snapfs__state__ioapic__descriptor,
	&snapfs__state__pit_channel__descriptor,
	&snapfs__state__pit__descriptor,
	&snapfs__state__clock__descriptor,
	&snapfs__state__device__descriptor,
	&snapfs__state__uart8250__descriptor,
	&snapfs__state__rtc__descriptor,
	&snapfs__state__vm_state__descriptor,
	&snapfs__state__pci_host__descriptor,
	&snapfs__state__pci_function__descriptor,
	&snapfs__state__virt_queue__descriptor,
	&snapfs__state__virtio_transport__descriptor,
	&snapfs__state__virtio_blk__descriptor,
	&snapfs__state__virtio_blk_set__descriptor,
	&snapfs__state__virtio_rng__descriptor,
	&snapfs__state__virtio_vsock__descriptor,
	/* proto/store.proto */
	&snapfs__store__store_info__descriptor,
	&snapfs__store__image_info__descriptor,
	&snapfs__store__delta_frame__descriptor,
	&snapfs__store__image_times__descriptor,
	&snapfs__store__file_ref__descriptor,
	&snapfs__store__working_set__descriptor,
	&snapfs__store__pack_index__descriptor,
	&snapfs__store__open_record__descriptor,
};

#define N_DESCRIPTORS (sizeof(descriptors) / sizeof(descriptors[0]))

static const char *const label_names[] = {
	[PROTOBUF_C_LABEL_REQUIRED]	= "required",
	[PROTOBUF_C_LABEL_OPTIONAL]	= "optional",
	[PROTOBUF_C_LABEL_REPEATED]	= "repeated",
	[PROTOBUF_C_LABEL_NONE]		= "none",
};

static const char *const type_names[] = {
	[PROTOBUF_C_TYPE_INT32]		= "int32",
	[PROTOBUF_C_TYPE_SINT32]	= "sint32",
	[PROTOBUF_C_TYPE_SFIXED32]	= "sfixed32",
	[PROTOBUF_C_TYPE_INT64]		= "int64",
	[PROTOBUF_C_TYPE_SINT64]	= "sint64",
	[PROTOBUF_C_TYPE_SFIXED64]	= "sfixed64",
	[PROTOBUF_C_TYPE_UINT32]	= "uint32",
	[PROTOBUF_C_TYPE_FIXED32]	= "fixed32",
	[PROTOBUF_C_TYPE_UINT64]	= "uint64",
	[PROTOBUF_C_TYPE_FIXED64]	= "fixed64",
	[PROTOBUF_C_TYPE_FLOAT]		= "float",
	[PROTOBUF_C_TYPE_DOUBLE]	= "double",
	[PROTOBUF_C_TYPE_BOOL]		= "bool",
	[PROTOBUF_C_TYPE_ENUM]		= "enum",
	[PROTOBUF_C_TYPE_STRING]	= "string",
	[PROTOBUF_C_TYPE_BYTES]		= "bytes",
	[PROTOBUF_C_TYPE_MESSAGE]	= "message",
};

#define LOCK_HEADER \
	"# Every committed field of proto/*.proto: a field never changes\n" \
	"# number, name, label or type, and is never removed. Written by\n" \
	"# `make proto-lock` (build/protolock update), checked by\n" \
	"# `make check-proto`. Do not edit by hand.\n" \
	"# <message> <number> <name> <label> <type>\n"

struct field {
	char msg[128];
	uint32_t number;
	char name[64];
	char label[16];
	char type[192];
};

struct listing {
	struct field *f;
	size_t n, cap;
};

/* What a comparison found: one line per violation. */
struct violation {
	char *text;
	bool changed;		/* a locked field changed or vanished */
};

struct report {
	struct violation *v;
	size_t n, cap;
	size_t n_changed;
	size_t n_new;		/* fields not in the lock yet */
};

/* The lock of `check --tap`: failures are then reported in TAP too. */
static const char *tap_lock;

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (tap_lock)
		printf("1..1\nnot ok 1 - schema matches %s\n# protolock: %s\n",
		       tap_lock, msg);
	else
		fprintf(stderr, "protolock: %s\n", msg);
	exit(2);
}

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return p;
	*cap = *cap ? 2 * *cap : 256;
	p = realloc(p, *cap * size);
	if (!p)
		die("out of memory");
	return p;
}

static bool copy_text(char *dst, size_t size, const char *src)
{
	return (size_t)snprintf(dst, size, "%s", src) < size;
}

/* ---- listings ----------------------------------------------------------- */

static struct field *listing_add(struct listing *l)
{
	l->f = grow(l->f, &l->cap, l->n, sizeof(*l->f));
	memset(&l->f[l->n], 0, sizeof(l->f[l->n]));
	return &l->f[l->n++];
}

static void listing_free(struct listing *l)
{
	free(l->f);
	memset(l, 0, sizeof(*l));
}

static int field_cmp(const void *a, const void *b)
{
	const struct field *x = a, *y = b;
	int c = strcmp(x->msg, y->msg);

	if (c)
		return c;
	return (x->number > y->number) - (x->number < y->number);
}

static const struct field *listing_find(const struct listing *l,
					const char *msg, uint32_t number)
{
	struct field key = { .number = number };

	if (!copy_text(key.msg, sizeof(key.msg), msg) || !l->n)
		return NULL;
	return bsearch(&key, l->f, l->n, sizeof(*l->f), field_cmp);
}

/* The field of msg called name, or NULL. */
static const struct field *listing_find_name(const struct listing *l,
					     const char *msg, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->f[i].msg, msg) && !strcmp(l->f[i].name, name))
			return &l->f[i];
	return NULL;
}

static bool listing_has_msg(const struct listing *l, const char *msg)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->f[i].msg, msg))
			return true;
	return false;
}

/* Sort, and refuse two lines for one field ("where" names the source). */
static void listing_sort(struct listing *l, const char *where)
{
	qsort(l->f, l->n, sizeof(*l->f), field_cmp);
	for (size_t i = 1; i < l->n; i++)
		if (!field_cmp(&l->f[i - 1], &l->f[i]))
			die("%s: %s field %u listed twice", where, l->f[i].msg,
			    l->f[i].number);
}

static bool in_table(const ProtobufCMessageDescriptor *d)
{
	for (size_t i = 0; i < N_DESCRIPTORS; i++)
		if (descriptors[i] == d)
			return true;
	return false;
}

static void describe(const ProtobufCMessageDescriptor *d,
		     const ProtobufCFieldDescriptor *fd, struct field *f)
{
	const char *type = NULL;
	bool ok;

	if ((size_t)fd->label >= sizeof(label_names) / sizeof(label_names[0]) ||
	    (size_t)fd->type >= sizeof(type_names) / sizeof(type_names[0]) ||
	    !label_names[fd->label] || !type_names[fd->type])
		die("%s field %u: unknown label or type", d->name, fd->id);
	if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
		const ProtobufCMessageDescriptor *sub = fd->descriptor;

		if (!in_table(sub))
			die("%s field %u (%s): message %s is missing from the "
			    "descriptor table of tools/protolock.c", d->name,
			    fd->id, fd->name, sub->name);
		type = sub->name;
	} else if (fd->type == PROTOBUF_C_TYPE_ENUM) {
		type = ((const ProtobufCEnumDescriptor *)fd->descriptor)->name;
	}
	f->number = fd->id;
	ok = copy_text(f->msg, sizeof(f->msg), d->name) &&
	     copy_text(f->name, sizeof(f->name), fd->name) &&
	     copy_text(f->label, sizeof(f->label), label_names[fd->label]);
	if (type)
		ok = ok && (size_t)snprintf(f->type, sizeof(f->type), "%s:%s",
					    type_names[fd->type], type) <
			   sizeof(f->type);
	else
		ok = ok && copy_text(f->type, sizeof(f->type),
				     type_names[fd->type]);
	if (!ok)
		die("%s field %u: name too long", d->name, fd->id);
}

/* The listing of the schema compiled into this program. */
static void schema_list(struct listing *l)
{
	for (size_t i = 0; i < N_DESCRIPTORS; i++) {
		const ProtobufCMessageDescriptor *d = descriptors[i];

		for (unsigned j = 0; j < d->n_fields; j++)
			describe(d, &d->fields[j], listing_add(l));
	}
	listing_sort(l, "descriptor table");
}

static void listing_print(const struct listing *l, FILE *out)
{
	for (size_t i = 0; i < l->n; i++)
		fprintf(out, "%s %u %s %s %s\n", l->f[i].msg, l->f[i].number,
			l->f[i].name, l->f[i].label, l->f[i].type);
}

/* ---- the lock file ------------------------------------------------------ */

static bool parse_number(const char *s, uint32_t *v)
{
	unsigned long n;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || *end || n == 0 || n > (1u << 29) - 1)
		return false;
	*v = (uint32_t)n;
	return true;
}

static bool parse_line(char *line, struct field *f)
{
	char *tok[6], *save = NULL;
	int n = 0;

	for (char *t = strtok_r(line, " \t\r\n", &save); t;
	     t = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == 6)
			return false;
		tok[n++] = t;
	}
	return n == 5 && copy_text(f->msg, sizeof(f->msg), tok[0]) &&
	       parse_number(tok[1], &f->number) &&
	       copy_text(f->name, sizeof(f->name), tok[2]) &&
	       copy_text(f->label, sizeof(f->label), tok[3]) &&
	       copy_text(f->type, sizeof(f->type), tok[4]);
}

/*
 * Read the lock at path into l. A missing file is an empty lock when
 * may_be_missing; anything else that goes wrong is fatal.
 */
static void lock_read(const char *path, bool may_be_missing,
		      struct listing *l)
{
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	FILE *fp;

	fp = fopen(path, "r");
	if (!fp) {
		if (errno == ENOENT && may_be_missing)
			return;
		die("cannot open %s: %s", path, strerror(errno));
	}
	while (getline(&line, &cap, fp) != -1) {
		const char *p = line + strspn(line, " \t\r\n");

		lineno++;
		if (!*p || *p == '#')
			continue;
		if (!parse_line(line, listing_add(l)))
			die("%s:%u: malformed line, \"<message> <number> <name> "
			    "<label> <type>\" expected", path, lineno);
	}
	if (ferror(fp))
		die("cannot read %s: %s", path, strerror(errno));
	free(line);
	fclose(fp);
	listing_sort(l, path);
}

/* Replace path with the listing: temp file, fsync, rename, fsync dir. */
static void lock_write(const char *path, const struct listing *l)
{
	char *tmp, *dir;
	int fd, dfd, saved;
	FILE *fp;

	if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
		die("out of memory");
	fd = mkstemp(tmp);
	if (fd < 0)
		die("cannot create %s: %s", tmp, strerror(errno));
	fp = fdopen(fd, "w");
	if (!fp) {
		saved = errno;
		close(fd);
		goto fail;
	}
	fputs(LOCK_HEADER, fp);
	listing_print(l, fp);
	if (fflush(fp) || ferror(fp) || fchmod(fd, 0644) || fsync(fd)) {
		saved = errno;
		fclose(fp);
		goto fail;
	}
	if (fclose(fp)) {
		saved = errno;
		goto fail;
	}
	if (rename(tmp, path)) {
		saved = errno;
		unlink(tmp);
		die("cannot rename %s to %s: %s", tmp, path, strerror(saved));
	}
	dir = strdup(path);
	if (!dir)
		die("out of memory");
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
	if (dfd < 0 || fsync(dfd))
		die("cannot sync the directory of %s: %s", path,
		    strerror(errno));
	close(dfd);
	free(dir);
	free(tmp);
	return;
fail:
	unlink(tmp);
	die("cannot write %s: %s", tmp, strerror(saved));
}

/* ---- comparison --------------------------------------------------------- */

static void __attribute__((format(printf, 3, 4)))
report_add(struct report *r, bool changed, const char *fmt, ...)
{
	va_list ap;
	char *line;
	int ret;

	va_start(ap, fmt);
	ret = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (ret < 0)
		die("out of memory");
	r->v = grow(r->v, &r->cap, r->n, sizeof(*r->v));
	r->v[r->n++] = (struct violation){ .text = line, .changed = changed };
	if (changed)
		r->n_changed++;
	else
		r->n_new++;
}

static void report_free(struct report *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].text);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* What became of the locked field f in the current listing. */
static void compare_locked(const struct field *f, const struct listing *now,
			   struct report *r)
{
	const struct field *c = listing_find(now, f->msg, f->number);

	if (!c) {
		c = listing_find_name(now, f->msg, f->name);
		if (c)
			report_add(r, true, "%s %s: number changed from %u to %u",
				   f->msg, f->name, f->number, c->number);
		else
			report_add(r, true, "%s field %u (%s): removed (fields "
				   "are never removed)", f->msg, f->number,
				   f->name);
		return;
	}
	if (strcmp(c->name, f->name))
		report_add(r, true, "%s field %u: renamed from %s to %s",
			   f->msg, f->number, f->name, c->name);
	if (strcmp(c->label, f->label))
		report_add(r, true, "%s field %u (%s): label changed from %s "
			   "to %s", f->msg, f->number, f->name, f->label,
			   c->label);
	if (strcmp(c->type, f->type))
		report_add(r, true, "%s field %u (%s): type changed from %s "
			   "to %s", f->msg, f->number, f->name, f->type,
			   c->type);
}

/*
 * Every violation of lock by now, in lock order, then the fields that are
 * new. A field that only moved to another number is reported once.
 */
static void compare(const struct listing *lock, const struct listing *now,
		    const char *lock_path, struct report *r)
{
	for (size_t i = 0; i < lock->n; i++) {
		const struct field *f = &lock->f[i];

		if (listing_has_msg(now, f->msg)) {
			compare_locked(f, now, r);
		} else if (i == 0 || strcmp(lock->f[i - 1].msg, f->msg)) {
			report_add(r, true, "%s: message removed (messages "
				   "are never removed)", f->msg);
		}
	}
	for (size_t i = 0; i < now->n; i++) {
		const struct field *c = &now->f[i];
		const struct field *old;

		if (listing_find(lock, c->msg, c->number))
			continue;
		old = listing_find_name(lock, c->msg, c->name);
		if (old && !listing_find(now, old->msg, old->number))
			continue;	/* reported as a number change */
		report_add(r, false, "%s field %u (%s): not in %s yet: run make "
			   "proto-lock", c->msg, c->number, c->name, lock_path);
	}
}

/* ---- commands ----------------------------------------------------------- */

static int cmd_dump(void)
{
	struct listing now = { 0 };

	schema_list(&now);
	listing_print(&now, stdout);
	listing_free(&now);
	return 0;
}

static int cmd_check(const char *path, bool tap)
{
	struct listing lock = { 0 }, now = { 0 };
	struct report r = { 0 };
	int ret = 0;

	if (tap)
		tap_lock = path;
	schema_list(&now);
	lock_read(path, false, &lock);
	compare(&lock, &now, path, &r);
	if (tap) {
		printf("1..1\n");
		if (r.n)
			printf("not ok 1 - schema matches %s\n", path);
		else
			printf("ok 1 - schema matches %s (%zu fields)\n", path,
			       now.n);
	} else if (!r.n) {
		printf("check-proto: %zu fields match %s\n", now.n, path);
	}
	for (size_t i = 0; i < r.n; i++) {
		if (tap)
			printf("# check-proto: %s\n", r.v[i].text);
		else
			fprintf(stderr, "check-proto: %s\n", r.v[i].text);
	}
	if (r.n)
		ret = 1;
	report_free(&r);
	listing_free(&lock);
	listing_free(&now);
	return ret;
}

static int cmd_update(const char *path)
{
	struct listing lock = { 0 }, now = { 0 };
	struct report r = { 0 };
	int ret = 0;

	schema_list(&now);
	lock_read(path, true, &lock);
	compare(&lock, &now, path, &r);
	if (r.n_changed) {
		for (size_t i = 0; i < r.n; i++)
			if (r.v[i].changed)
				fprintf(stderr, "check-proto: %s\n",
					r.v[i].text);
		fprintf(stderr, "protolock: %s not updated: %zu committed "
			"field%s changed\n", path, r.n_changed,
			r.n_changed == 1 ? "" : "s");
		ret = 1;
		goto out;
	}
	lock_write(path, &now);
	printf("protolock: %s: %zu fields, %zu new\n", path, now.n, r.n_new);
out:
	report_free(&r);
	listing_free(&lock);
	listing_free(&now);
	return ret;
}

static void __attribute__((noreturn)) usage(void)
{
	fputs("usage: protolock dump\n"
	      "       protolock check LOCKFILE [--tap]\n"
	      "       protolock update LOCKFILE\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "dump"))
		return cmd_dump();
	if (argc == 3 && !strcmp(argv[1], "check"))
		return cmd_check(argv[2], false);
	if (argc == 4 && !strcmp(argv[1], "check") &&
	    !strcmp(argv[3], "--tap"))
		return cmd_check(argv[2], true);
	if (argc == 3 && !strcmp(argv[1], "update"))
		return cmd_update(argv[2]);
	usage();
}
