/* SPDX-License-Identifier: MIT */
#include "snapshot/store/rados_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/store/store.h"

int rados_is_name(const char *name)
{
	return strncmp(name, RADOS_SCHEME, strlen(RADOS_SCHEME)) == 0;
}

/* POOL and PREFIX of "rados:POOL[/PREFIX]", checked, in new strings. */
static int split_name(const char *name, char **pool, char **prefix,
		      struct snap_err *err)
{
	const char *p = name + strlen(RADOS_SCHEME), *slash = strchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : strlen(p);

	if (n == 0 || (slash && (!slash[1] || strchr(slash + 1, '/'))) ||
	    strlen(p) > SNAP_STORE_NAME_MAX)
		return snap_err_set(err, -EINVAL, "%s: expected rados:POOL or "
				    "rados:POOL/PREFIX", name);
	*pool = strndup(p, n);
	*prefix = strdup(slash ? slash + 1 : "");
	if (!*pool || !*prefix) {
		free(*pool);
		free(*prefix);
		return snap_err_set(err, -ENOMEM, "%s: out of memory", name);
	}
	return 0;
}

/*
 * Timeouts first (librados waits forever for an OSD by default), so that
 * the configuration file or CEPH_ARGS may still choose others; then the
 * file, then CEPH_ARGS.
 */
static int configure(rados_t cl, const char *conf)
{
	static const char *const quiet[][2] = {
		/* Only errors, and on stderr: never a log file of ours. */
		{ "log_to_stderr", "false" },
		{ "err_to_stderr", "true" },
		{ "log_file", "" },
		/* A client has no admin socket: several would fight over
		 * the one path a test cluster's conf gives them all. */
		{ "admin_socket", "" },
	};
	static const char *const timeouts[] = {
		"client_mount_timeout", "rados_mon_op_timeout",
		"rados_osd_op_timeout",
	};
	char t[16];
	int ret;

	snprintf(t, sizeof(t), "%d", RADOS_TIMEOUT_S);
	for (size_t i = 0; i < sizeof(timeouts) / sizeof(*timeouts); i++)
		rados_conf_set(cl, timeouts[i], t);
	if (!conf)
		conf = getenv("CEPH_CONF");
	ret = rados_conf_read_file(cl, conf && *conf ? conf : NULL);
	if (!ret)
		ret = rados_conf_parse_env(cl, NULL);
	for (size_t i = 0; !ret && i < sizeof(quiet) / sizeof(*quiet); i++)
		ret = rados_conf_set(cl, quiet[i][0], quiet[i][1]);
	return ret;
}

int rados_conn_open(const char *name, const char *conf, struct rados_conn **out,
		    struct snap_err *err)
{
	struct rados_conn *c;
	char *pool = NULL, *prefix = NULL;
	int ret;

	ret = split_name(name, &pool, &prefix, err);
	if (ret)
		return ret;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->name = strdup(name))) {
		free(c);
		ret = snap_err_set(err, -ENOMEM, "%s: out of memory", name);
		goto out;
	}
	c->refs = 1;
	ret = rados_create(&c->cluster, NULL);
	if (ret) {
		snap_err_set(err, ret, "%s: rados_create: %s", name,
			     strerror(-ret));
		free(c->name);
		free(c);
		goto out;
	}
	ret = configure(c->cluster, conf);
	if (ret) {
		snap_err_set(err, ret, "%s: reading the Ceph configuration "
			     "%s: %s", name, conf ? conf : "(default)",
			     strerror(-ret));
		goto fail;
	}
	ret = rados_connect(c->cluster);
	if (ret) {
		snap_err_set(err, ret, "%s: connecting to the cluster: %s",
			     name, strerror(-ret));
		goto fail;
	}
	ret = rados_ioctx_create(c->cluster, pool, &c->io);
	if (ret) {
		snap_err_set(err, ret, "%s: pool '%s': %s", name, pool,
			     ret == -ENOENT ? "no such pool" : strerror(-ret));
		goto fail;
	}
	rados_ioctx_set_namespace(c->io, prefix);
	*out = c;
	goto out;
fail:
	rados_shutdown(c->cluster);
	free(c->name);
	free(c);
out:
	free(pool);
	free(prefix);
	return ret;
}

struct rados_conn *rados_conn_get(struct rados_conn *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void rados_conn_put(struct rados_conn *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL))
		return;
	rados_ioctx_destroy(c->io);
	rados_shutdown(c->cluster);
	free(c->name);
	free(c);
}
