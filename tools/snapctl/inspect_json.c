/* SPDX-License-Identifier: MIT */
/*
 * snapctl inspect --json: the same information as the text form, as one
 * JSON object. Ids and digests are hex strings; absent values are null.
 */
#include "tools/snapctl/snapctl.h"

#include "snapshot/format/digest.h"
#include "tools/snapctl/json.h"

static void features(struct json *j, const char *key, char **list,
		     uint32_t n)
{
	json_array_begin(j, key);
	for (uint32_t i = 0; i < n; i++)
		json_string(j, NULL, list[i]);
	json_array_end(j);
}

static void manifest(struct json *j, const struct snap_manifest *m)
{
	char when[FMT_TIME_LEN];

	json_hex(j, "id", m->id, SNAP_ID_LEN);
	json_object_begin(j, "producer");
	json_string(j, "name", m->producer_name);
	json_string(j, "version", m->producer_version);
	json_object_end(j);
	json_string(j, "arch", m->arch);
	json_u64(j, "page_size", m->page_size);
	json_u64(j, "vcpu_count", m->vcpu_count);
	json_string(j, "created", fmt_time_ns(m->created_unix_ns, when));
	json_u64(j, "created_unix_ns", m->created_unix_ns);
	if (m->has_parent)
		json_hex(j, "parent_id", m->parent_id, SNAP_ID_LEN);
	else
		json_null(j, "parent_id");
	json_string_or_null(j, "parent_hint", m->parent_hint);
	json_string_or_null(j, "cmdline", m->cmdline);
	json_u64(j, "memory_size", m->memory_size);
	json_array_begin(j, "regions");
	for (uint32_t i = 0; i < m->n_regions; i++) {
		json_object_begin(j, NULL);
		json_u64(j, "gpa", m->regions[i].gpa);
		json_u64(j, "size", m->regions[i].size);
		json_u64(j, "offset", m->regions[i].offset);
		json_object_end(j);
	}
	json_array_end(j);
	json_u64(j, "state_size", m->state_size);
	json_hex(j, "state_sha256", m->state_sha256, SNAP_DIGEST_LEN);
	if (m->has_memory_sha256)
		json_hex(j, "memory_sha256", m->memory_sha256,
			 SNAP_DIGEST_LEN);
	else
		json_null(j, "memory_sha256");
	features(j, "required_features", m->required_features, m->n_required);
	features(j, "compatible_features", m->compatible_features,
		 m->n_compatible);
}

static void vcpu(struct json *j, const struct snap_vcpu *v)
{
	const char *mp = fmt_mp_state(v->mp_state);

	json_object_begin(j, NULL);
	json_u64(j, "id", v->id);
	json_u64(j, "rip", v->regs.rip);
	json_u64(j, "rsp", v->regs.rsp);
	json_u64(j, "rflags", v->regs.rflags);
	json_u64(j, "cr0", v->sregs.cr0);
	json_u64(j, "cr3", v->sregs.cr3);
	json_u64(j, "cr4", v->sregs.cr4);
	json_u64(j, "efer", v->sregs.efer);
	json_u64(j, "mp_state", v->mp_state);
	json_string_or_null(j, "mp_state_name", mp);
	json_u64(j, "xsave_size", v->xsave_size);
	json_u64(j, "msrs", v->n_msrs);
	json_u64(j, "xcrs", v->n_xcrs);
	json_u64(j, "cpuid_entries", v->n_cpuid);
	json_u64(j, "tsc_khz", v->tsc_khz);
	json_object_end(j);
}

static void uart8250(struct json *j, const struct snap_device *d)
{
	struct snap_err err = { .msg = "" };
	struct snap_uart8250 u;

	json_object_begin(j, "uart8250");
	if (snap_uart8250_decode(d->payload, d->len, &u, &err)) {
		json_string(j, "error", err.msg);
	} else {
		json_u64(j, "lcr", u.lcr);
		json_u64(j, "ier", u.ier);
		json_u64(j, "rx_len", u.rx_len);
		json_hex(j, "rx", u.rx_fifo, u.rx_len);
	}
	json_object_end(j);
}

static void vm(struct json *j, const struct snap_state *s)
{
	json_bool(j, "pic", s->has_pic);
	json_bool(j, "ioapic", s->has_ioapic);
	json_bool(j, "pit", s->has_pit);
	if (s->has_clock) {
		json_object_begin(j, "clock");
		json_u64(j, "clock", s->clock.clock);
		json_u64(j, "flags", s->clock.flags);
		json_object_end(j);
	} else {
		json_null(j, "clock");
	}
	json_array_begin(j, "devices");
	for (uint32_t i = 0; i < s->n_devices; i++) {
		const struct snap_device *d = &s->devices[i];

		json_object_begin(j, NULL);
		json_string(j, "name", d->name);
		json_u64(j, "size", d->len);
		if (inspect_is_uart8250(d))
			uart8250(j, d);
		json_object_end(j);
	}
	json_array_end(j);
}

int inspect_json(const char *dir, const struct snap_manifest *m,
		 const struct snap_state *s)
{
	struct json j;

	json_begin(&j, stdout);
	json_object_begin(&j, NULL);
	json_string(&j, "path", dir);
	manifest(&j, m);
	json_array_begin(&j, "vcpus");
	for (uint32_t i = 0; i < s->n_vcpus; i++)
		vcpu(&j, &s->vcpus[i]);
	json_array_end(&j);
	vm(&j, s);
	json_object_end(&j);
	return json_end(&j);
}
