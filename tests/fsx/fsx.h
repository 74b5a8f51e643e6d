/* SPDX-License-Identifier: MIT */
/*
 * snapfsx: a filesystem exerciser for a real snapfs mount, checked against
 * a model kept in memory (snapfsx.c says what it promises and checks).
 *
 * The model holds what the mount must show: snapshot directories, the
 * names in them and the files (images) those names share. Every operation
 * does the same thing to the mount and to the model; every read compares.
 * The model never learns anything from the mount, so the same seed and
 * options give the same operations whatever the mount did (after a crash
 * the mount is repaired to the model, never the other way round).
 */
#ifndef SNAPFSX_H
#define SNAPFSX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FSX_MAX_DIRS	6
#define FSX_MAX_FILES	24
#define FSX_MAX_NAMES	40
#define FSX_NAME_LEN	24
#define FSX_DIR_LEN	2048	/* the work directory's path at most */
#define FSX_PATH_LEN	4200

/* A snapshot directory of the mount. */
struct mdir {
	bool used;
	bool dirty;		/* names changed since its last fsync */
	char name[FSX_NAME_LEN];
};

/*
 * A file (an image): what it holds, and what it held at its last fsync.
 * data and synced are maxlen bytes long, zero past their sizes, so that
 * growing a file needs no clearing.
 */
struct mfile {
	bool used;
	unsigned id;		/* its number in messages ("file 7") */
	uint64_t ino;		/* st_ino, the same across mounts */
	size_t size;
	uint8_t *data;
	int nlink;
	int fd;			/* open O_RDWR, or -1 */
	bool mapdirty;		/* written through a shared mapping, not
				 * written back since (fsync, close) */

	/* For --avoid cutadopt (README.md): a copy's source or destination,
	 * shrunk since, and mounted again since that */
	bool layered;
	bool shrunk;
	bool at_risk;

	/* What a kill -9 of the daemon may not lose (snapfsx.c) */
	bool dirty;		/* changed since its last fsync */
	size_t synced_size;
	uint8_t *synced;
	uint8_t *touched;	/* a bit per byte changed since that fsync */
	size_t min_size;	/* smallest and largest size since then */
	size_t max_size;
};

/* A name: DIR/NAME is FILE. */
struct mname {
	bool used;
	int dir;
	int file;
	char name[FSX_NAME_LEN];
};

struct fsx;

enum fsx_opkind {
	OP_CREATE, OP_WRITE, OP_READ, OP_TRUNCATE, OP_MAPREAD, OP_MAPWRITE,
	OP_MAPPRIV, OP_COPY, OP_CLONE, OP_LINK, OP_RENAME, OP_UNLINK,
	OP_MKDIR, OP_RMSNAP, OP_RENAMEDIR, OP_FSYNC, OP_FSYNCDIR, OP_CLOSE,
	OP_GC, OP_REMOUNT, OP_CRASH, OP_COUNT
};

struct fsx_op {
	const char *name;
	int (*run)(struct fsx *fsx);	/* 0 done, 1 not possible now */
	unsigned weight;		/* in a run of 1000 operations */
};

extern const struct fsx_op fsx_ops[OP_COUNT];

struct fsx {
	/* options */
	uint64_t seed;
	uint64_t nops;
	size_t maxlen;		/* a file's largest size */
	size_t maxio;		/* the largest write, read or copy */
	const char *chunk_size;	/* snapctl store init --chunk-size */
	size_t chunk;		/* the same in bytes (64 KiB by default) */
	const char *cache_size;	/* snapfs -o cache_size */
	const char *gc_bytes;	/* snapfs -o gc_bytes */
	const char *snapfs;
	const char *snapctl;
	const char *workdir;	/* made by us when NULL */
	bool verbose;
	uint64_t verbose_from;	/* print operations from this number on */
	bool keep;		/* keep the work directory */
	bool close_on_rmsnap;	/* --avoid deadinode */
	bool avoid_cutadopt;	/* --avoid cutadopt */
	unsigned weight[OP_COUNT];

	/* the run */
	uint64_t rng;
	uint64_t opno;
	enum fsx_opkind kind;
	char desc[512];		/* the operation in words */
	unsigned next_id;	/* for names and file numbers */
	size_t page;
	uint8_t *buf;		/* maxio bytes of scratch */
	uint8_t *buf2;

	struct mdir dirs[FSX_MAX_DIRS];
	struct mfile files[FSX_MAX_FILES];
	struct mname names[FSX_MAX_NAMES];
	bool root_dirty;	/* snapshot names changed since root fsync */

	/* the daemon (daemon.c) */
	char work[FSX_DIR_LEN];
	char store[FSX_DIR_LEN + 16];
	char mnt[FSX_DIR_LEN + 16];
	char log[FSX_DIR_LEN + 16];
	pid_t pid;
	unsigned starts;

	/* counts for the summary */
	uint64_t done[OP_COUNT];
	uint64_t crash_lost;	/* files whose unsynced changes a kill lost */
	uint64_t crash_kept;	/* files whose unsynced changes survived */
};

/* snapfsx.c */
uint64_t fsx_rand(struct fsx *fsx);
uint64_t fsx_below(struct fsx *fsx, uint64_t n);	/* 0 .. n-1 */
void fsx_fill(struct fsx *fsx, uint8_t *p, size_t len);
void fsx_note(struct fsx *fsx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
_Noreturn void fsx_fail(struct fsx *fsx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
_Noreturn void fsx_fail_errno(struct fsx *fsx, const char *what);

/* options.c: -1 to run, else the exit status */
int fsx_options(struct fsx *fsx, int argc, char **argv);

/* ops.c, names.c: the operations of fsx_ops */
int op_create(struct fsx *fsx);
int op_write(struct fsx *fsx);
int op_read(struct fsx *fsx);
int op_truncate(struct fsx *fsx);
int op_mapread(struct fsx *fsx);
int op_mapwrite(struct fsx *fsx);
int op_mappriv(struct fsx *fsx);
int op_copy(struct fsx *fsx);
int op_clone(struct fsx *fsx);
int op_link(struct fsx *fsx);
int op_rename(struct fsx *fsx);
int op_unlink(struct fsx *fsx);
int op_mkdir(struct fsx *fsx);
int op_rmsnap(struct fsx *fsx);
int op_renamedir(struct fsx *fsx);
int op_fsync(struct fsx *fsx);
int op_fsyncdir(struct fsx *fsx);
int op_close(struct fsx *fsx);
int op_gc(struct fsx *fsx);
int op_remount(struct fsx *fsx);
int op_crash(struct fsx *fsx);

/* model.c */
int model_init(struct fsx *fsx);
void model_free(struct fsx *fsx);
int model_pick_dir(struct fsx *fsx);
int model_pick_file(struct fsx *fsx);
int model_pick_name(struct fsx *fsx);
int model_new_dir(struct fsx *fsx);
int model_new_file(struct fsx *fsx);
int model_add_name(struct fsx *fsx, int dir, int file, const char *name);
void model_drop_name(struct fsx *fsx, int name);
int model_find_name(const struct fsx *fsx, int dir, const char *name);
int model_dir_names(const struct fsx *fsx, int dir);
int model_count_dirs(const struct fsx *fsx);
int model_count_files(const struct fsx *fsx);
int model_count_names(const struct fsx *fsx);
void model_path(const struct fsx *fsx, int name, char *buf);
const char *model_label(const struct fsx *fsx, int file);
void model_file_path(const struct fsx *fsx, int file, char *buf);
void model_dir_path(const struct fsx *fsx, int dir, char *buf);
void model_write(struct fsx *fsx, int file, size_t off, const uint8_t *p,
		 size_t len);
void model_resize(struct fsx *fsx, int file, size_t size);
void model_synced(struct fsx *fsx, int file);
int model_fd(struct fsx *fsx, int file);
void model_close(struct fsx *fsx, int file);
void model_close_all(struct fsx *fsx);
void model_orphan_gone(struct fsx *fsx, int file);
void model_mounted(struct fsx *fsx);
bool model_no_adopt(const struct fsx *fsx, int src, size_t src_off,
		    int dst, size_t len);

/* check.c */
char **check_list(struct fsx *fsx, const char *path, int *n);
int check_find_dir(const struct fsx *fsx, const char *name);
void check_bytes(struct fsx *fsx, int file, size_t off, const uint8_t *got,
		 size_t len, const char *how);
void check_size(struct fsx *fsx, int file);
void check_name(struct fsx *fsx, int name);
void check_file(struct fsx *fsx, int file);
void check_all(struct fsx *fsx);

/* crash.c */
void check_after_crash(struct fsx *fsx);

/* daemon.c */
int daemon_setup(struct fsx *fsx);
int daemon_start(struct fsx *fsx);
int daemon_stop(struct fsx *fsx);
void daemon_crash(struct fsx *fsx);
void daemon_cleanup(struct fsx *fsx, bool failed);
int daemon_run(struct fsx *fsx, char *const argv[]);
int daemon_log_check(struct fsx *fsx);

/* ops.c helpers shared with names.c and check.c */
void io_pwrite(struct fsx *fsx, int fd, const void *buf, size_t len,
	       size_t off);
size_t io_pread(struct fsx *fsx, int fd, void *buf, size_t len, size_t off);
size_t io_copy(struct fsx *fsx, int in, size_t off_in, int out,
	       size_t off_out, size_t len);
size_t fsx_copy(struct fsx *fsx, int src, size_t so, int dst, size_t doff,
		size_t n, size_t len);

#endif
