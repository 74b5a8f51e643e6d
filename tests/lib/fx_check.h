/* SPDX-License-Identifier: MIT */
#ifndef SNAP_TEST_FX_CHECK_H
#define SNAP_TEST_FX_CHECK_H

/*
 * Checks of store calls for cmocka tests whose fixture f has a struct
 * snap_err err: the store's message goes into the failure.
 */

/* Fail with the call, its errno and the store's message unless it is 0. */
#define CHECK(f, call) do {						\
		int ret_ = (call);					\
		if (ret_)						\
			fail_msg("%s: %d (%s): %s", #call, ret_,	\
				 strerror(-ret_), (f)->err.msg);	\
	} while (0)

/* Expect call to fail with want and say something. */
#define EXPECT_ERR(f, want, call) do {					\
		long ret_;						\
		(f)->err.msg[0] = '\0';					\
		ret_ = (call);						\
		if (ret_ != (want))					\
			fail_msg("%s: %ld, expected %d (%s): %s", #call,\
				 ret_, (want), strerror(-(want)),	\
				 (f)->err.msg);				\
		if (!(f)->err.msg[0])					\
			fail_msg("%s: %d without a message", #call,	\
				 (want));				\
	} while (0)

#endif
