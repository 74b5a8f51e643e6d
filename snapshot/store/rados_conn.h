/* SPDX-License-Identifier: MIT */
#ifndef SNAP_RADOS_CONN_H
#define SNAP_RADOS_CONN_H

/*
 * A connection to a Ceph cluster and one pool of it, shared by what keeps
 * a store there (meta_rados.c, and the chunks' backend), and counted.
 *
 * A store in RADOS is named "rados:POOL" or "rados:POOL/PREFIX": its
 * objects are in POOL, in the RADOS namespace PREFIX (none without one),
 * so that stores in one pool never see each other's objects. The cluster
 * is the one conf names: the file given, else $CEPH_CONF, else librados'
 * own default (/etc/ceph/ceph.conf).
 *
 * Every wait on the cluster is bounded (RADOS_TIMEOUT_S): a monitor or OSD
 * that does not answer is an error (-ETIMEDOUT, or what librados says),
 * never a hang.
 */

#include <rados/librados.h>

#include "snapshot/format/error.h"

#define RADOS_SCHEME		"rados:"
#define RADOS_TIMEOUT_S		10

struct rados_conn {
	rados_t cluster;
	rados_ioctx_t io;
	char *name;		/* "rados:POOL[/PREFIX]", for messages */
	unsigned refs;		/* atomic */
};

/* Whether name is a store in RADOS ("rados:..."). */
int rados_is_name(const char *name);

/* Connect to the store name ("rados:POOL[/PREFIX]"); one reference. */
int rados_conn_open(const char *name, const char *conf, struct rados_conn **c,
		    struct snap_err *err);

struct rados_conn *rados_conn_get(struct rados_conn *c);
void rados_conn_put(struct rados_conn *c);

#endif
