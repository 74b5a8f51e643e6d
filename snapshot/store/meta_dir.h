/* SPDX-License-Identifier: MIT */
#ifndef SNAP_META_DIR_H
#define SNAP_META_DIR_H

/* What meta_dir.c and meta_dir_names.c share: the directory's state. */

#include "snapshot/store/meta.h"

struct meta_dir {
	char *dir;		/* absolute */
	int lock_fd;		/* DIR/lock: shared while open, gc: excl */
	int write_fd;		/* DIR/lock.write: held by the writer */
	bool gc_held;		/* lock_fd is exclusive */
};

/* "DIR/name" into buf. */
int meta_dir_path(const struct meta_dir *md, const char *name, char *buf,
		  size_t size, struct snap_err *err);

/* The names of meta.h, as directories and hard links. */
int meta_dir_mkdir(void *ctx, const char *snap, struct snap_err *err);
int meta_dir_rmdir(void *ctx, const char *snap, struct snap_err *err);
int meta_dir_link(void *ctx, const char *path, const uint8_t id[SNAP_ID_LEN],
		  struct snap_err *err);
int meta_dir_unlink(void *ctx, const char *path, struct snap_err *err);
int meta_dir_lookup(void *ctx, const char *path, uint8_t id[SNAP_ID_LEN],
		    unsigned *nlink, struct snap_err *err);
int meta_dir_rename(void *ctx, const char *from, const char *to,
		    bool noreplace, struct snap_err *err);
int meta_dir_list(void *ctx, const char *snap,
		  int (*fn)(void *arg, const char *entry), void *arg,
		  struct snap_err *err);
int meta_dir_stat(void *ctx, const char *snap, struct stat *st,
		  struct snap_err *err);
int meta_dir_nlink(void *ctx, const uint8_t id[SNAP_ID_LEN], unsigned *nlink,
		   struct snap_err *err);
int meta_dir_sync_names(void *ctx, const char *snap, struct snap_err *err);

#endif
