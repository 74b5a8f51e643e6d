/* SPDX-License-Identifier: MIT */
/*
 * state.bin: snap_state_decode (protobuf, every field, every count), then
 * each device's payload through the decoder of its name (state.h,
 * state_virtio.h). The whole input also goes through every payload
 * decoder, which reaches them without a VmState around the payload.
 *
 * Whatever decodes must encode, and decode again to something that
 * encodes to the same bytes: a validation that decode and encode disagree
 * on is a bug either way.
 *
 * No FUZZ_FIX variant: state.bin has no checksum of its own; its digest
 * is in the manifest (fuzz_snapdir_fix recomputes it).
 */
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "snapshot/format/state.h"
#include "snapshot/format/state_virtio.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

/* Encoded twice from two decodes: the same bytes, or a bug. */
static void same(const char *what, uint8_t *one, size_t n1, uint8_t *two,
		 size_t n2)
{
	if (n1 != n2 || memcmp(one, two, n1))
		fuzz_die("%s: changes between two round trips", what);
	free(one);
	free(two);
}

/*
 * One payload type: decode into a value, encode a value. A payload
 * decoded, encoded, decoded and encoded again gives the same bytes.
 */
#define PAYLOAD(name, type, dec, enc)					\
static void check_##name(const uint8_t *buf, size_t len)		\
{									\
	struct snap_err err;						\
	uint8_t *one, *two;						\
	size_t n1, n2;							\
	type v, again;							\
									\
	if (dec(buf, len, &v, &err))					\
		return;							\
	if (enc(&v, &one, &n1))						\
		fuzz_die(#name ": a decoded payload does not encode");	\
	if (dec(one, n1, &again, &err))					\
		fuzz_die(#name ": a re-encoded payload does not decode: %s", \
			 err.msg);					\
	if (enc(&again, &two, &n2))					\
		fuzz_die(#name ": a decoded payload does not encode");	\
	same(#name, one, n1, two, n2);					\
}

/* The payload types whose codecs do not fit the macro's shape. */
static int pci_dec(const uint8_t *buf, size_t len, uint32_t *v,
		   struct snap_err *err)
{
	return snap_pci_host_decode(buf, len, v, err);
}

static int pci_enc(const uint32_t *v, uint8_t **buf, size_t *len)
{
	return snap_pci_host_encode(*v, buf, len);
}

struct blk_set {
	struct snap_virtio_blk b[SNAP_BLK_MAX];
	uint32_t n;
};

static int blk_dec(const uint8_t *buf, size_t len, struct blk_set *v,
		   struct snap_err *err)
{
	return snap_virtio_blk_decode(buf, len, v->b, &v->n, err);
}

static int blk_enc(const struct blk_set *v, uint8_t **buf, size_t *len)
{
	return snap_virtio_blk_encode(v->b, v->n, buf, len);
}

static int transport_dec(const uint8_t *buf, size_t len,
			 struct snap_virtio *v, struct snap_err *err)
{
	return snap_virtio_transport_decode(buf, len, "fuzz", v, err);
}

PAYLOAD(uart8250, struct snap_uart8250, snap_uart8250_decode,
	snap_uart8250_encode)
PAYLOAD(rtc, struct snap_rtc, snap_rtc_decode, snap_rtc_encode)
PAYLOAD(pci, uint32_t, pci_dec, pci_enc)
PAYLOAD(virtio_blk, struct blk_set, blk_dec, blk_enc)
PAYLOAD(virtio_rng, struct snap_virtio, snap_virtio_rng_decode,
	snap_virtio_rng_encode)
PAYLOAD(virtio_vsock, struct snap_virtio_vsock, snap_virtio_vsock_decode,
	snap_virtio_vsock_encode)
PAYLOAD(transport, struct snap_virtio, transport_dec,
	snap_virtio_transport_encode)

/* Device names as snapvm saves them (vmm/dev/), and their payloads; a
 * name matches its prefix, as snapctl inspect matches "uart8250". */
static const struct {
	const char *name;
	void (*check)(const uint8_t *buf, size_t len);
} payloads[] = {
	{ "uart8250", check_uart8250 },
	{ "rtc", check_rtc },
	{ "pci", check_pci },
	{ "virtio-blk", check_virtio_blk },
	{ "virtio-rng", check_virtio_rng },
	{ "virtio-vsock", check_virtio_vsock },
	{ NULL, check_transport },	/* embedded in the virtio ones */
};

#define N_PAYLOADS (sizeof(payloads) / sizeof(payloads[0]))

static void check_devices(const struct snap_state *s)
{
	for (uint32_t i = 0; i < s->n_devices; i++)
		for (size_t k = 0; k < N_PAYLOADS; k++)
			if (payloads[k].name &&
			    !strncmp(s->devices[i].name, payloads[k].name,
				     strlen(payloads[k].name)))
				payloads[k].check(s->devices[i].payload,
						  s->devices[i].len);
}

static uint8_t *encode(const struct snap_state *s, size_t *len)
{
	struct snap_err err;
	uint8_t *buf;

	if (snap_state_encode(s, &buf, len, &err))
		fuzz_die("a decoded state does not encode: %s", err.msg);
	return buf;
}

static void round_trip(const struct snap_state *s)
{
	struct snap_state *again;
	struct snap_err err;
	uint8_t *one, *two;
	size_t n1, n2;

	one = encode(s, &n1);
	if (snap_state_decode(one, n1, &again, &err))
		fuzz_die("a re-encoded state does not decode: %s", err.msg);
	two = encode(again, &n2);
	snap_state_free(again);
	same("state", one, n1, two, n2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = fuzz_dup(data, size);
	struct snap_state *s;
	struct snap_err err;

	if (!snap_state_decode(buf, size, &s, &err)) {
		check_devices(s);
		round_trip(s);
		snap_state_free(s);
	}
	for (size_t k = 0; k < N_PAYLOADS; k++)
		payloads[k].check(buf, size);
	free(buf);
	return 0;
}
