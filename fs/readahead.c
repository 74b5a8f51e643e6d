/* SPDX-License-Identifier: MIT */
/*
 * The mount's read-ahead. The kernel bounds a FUSE read (and the pages a
 * fault reads around it) by the smaller of the daemon's max_readahead and
 * the read_ahead_kb of the mount's own bdi, which starts at 128 KiB
 * whatever the disk below has. A restored guest faults all over its
 * memory; larger reads mean fewer round trips and chunks loaded side by
 * side, so snapfs sets it (-o readahead_kb, 1024 by default, matching its
 * 1 MiB requests).
 *
 * The bdi is named by the mount's device number, "MAJOR:MINOR", which
 * /proc/self/mountinfo gives without a call into the mount (that would
 * wait for the daemon's own loop).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/snapfs.h"

/* mountinfo escapes blanks, newlines and backslashes as \ooo. */
static void unescape(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
					(s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* "MAJOR:MINOR" of the last mount at mountpoint into dev. */
static int mount_dev(const char *mountpoint, char *dev, size_t size)
{
	char *line = NULL;
	size_t cap = 0;
	int ret = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char id[32], mnt[4096];

		/* ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ... */
		if (sscanf(line, "%*s %*s %31s %*s %4095s", id, mnt) != 2)
			continue;
		unescape(mnt);
		if (!strcmp(mnt, mountpoint)) {
			snprintf(dev, size, "%s", id);
			ret = 0;	/* the last one is on top */
		}
	}
	free(line);
	fclose(f);
	return ret;
}

int fs_set_readahead(const char *mountpoint, unsigned kb)
{
	char dev[32], path[96];
	int ret;
	FILE *f;

	ret = mount_dev(mountpoint, dev, sizeof(dev));
	if (!ret) {
		snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb",
			 dev);
		f = fopen(path, "we");
		if (!f) {
			ret = -errno;
		} else {
			fprintf(f, "%u\n", kb);
			if (fclose(f))
				ret = -errno;
		}
	}
	if (ret)
		fprintf(stderr, "%s: %s: cannot set readahead_kb=%u: %s "
			"(reads stay at the kernel's read-ahead)\n",
			SNAPFS_NAME, mountpoint, kb, strerror(-ret));
	return ret;
}
