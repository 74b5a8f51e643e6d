/* SPDX-License-Identifier: MIT */
/*
 * snapctl inspect: the manifest and a summary of the state, as aligned
 * text (the JSON form is in inspect_json.c).
 */
#include "tools/snapctl/snapctl.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "snapshot/format/digest.h"
#include "snapshot/format/snapdir.h"

#define LABEL_WIDTH	15	/* "memory sha256: " */
#define VCPU_INDENT	10	/* "vcpu 255  " */
#define UART_RX_SHOWN	32	/* bytes of the receive FIFO printed */

bool inspect_is_uart8250(const struct snap_device *d)
{
	return !strncmp(d->name, "uart8250", strlen("uart8250"));
}

static void label(const char *name)
{
	printf("%-*s", LABEL_WIDTH, name);
}

/* A text field: escaped, or "none" when absent. */
static void text_line(const char *name, const char *value)
{
	label(name);
	if (value)
		fmt_text(stdout, value);
	else
		fputs("none", stdout);
	putchar('\n');
}

/* Items of a list: ", " before every one but the first. */
static void list_item(const char **sep, const char *item)
{
	fputs(*sep, stdout);
	fmt_text(stdout, item);
	*sep = ", ";
}

static void features_line(const char *name, char **list, uint32_t n)
{
	const char *sep = "";

	label(name);
	for (uint32_t i = 0; i < n; i++)
		list_item(&sep, list[i]);
	puts(n ? "" : "none");
}

static void print_regions(const struct snap_manifest *m)
{
	char size[FMT_SIZE_LEN];

	printf("%-*s%u\n", LABEL_WIDTH, "regions:", m->n_regions);
	printf("  %3s  %-18s  %-18s  %s\n", "#", "gpa", "size", "offset");
	for (uint32_t i = 0; i < m->n_regions; i++) {
		const struct snap_region *r = &m->regions[i];

		printf("  %3u  0x%016" PRIx64 "  0x%016" PRIx64 "  0x%016"
		       PRIx64 "  %s\n", i, r->gpa, r->size, r->offset,
		       fmt_size(r->size, size));
	}
}

static void print_manifest(const char *dir, const struct snap_manifest *m)
{
	char hex[FMT_DIGEST_LEN], size[FMT_SIZE_LEN], when[FMT_TIME_LEN];

	text_line("snapshot:", dir);
	snap_hex(m->id, SNAP_ID_LEN, hex);
	printf("%-*s%s\n", LABEL_WIDTH, "id:", hex);
	label("producer:");
	fmt_text(stdout, m->producer_name);
	if (m->producer_version[0]) {
		putchar(' ');
		fmt_text(stdout, m->producer_version);
	}
	putchar('\n');
	text_line("arch:", m->arch);
	printf("%-*s%u bytes\n", LABEL_WIDTH, "page size:", m->page_size);
	printf("%-*s%u\n", LABEL_WIDTH, "vcpus:", m->vcpu_count);
	printf("%-*s%s\n", LABEL_WIDTH, "created:",
	       fmt_time_ns(m->created_unix_ns, when));
	if (m->has_parent)
		snap_hex(m->parent_id, SNAP_ID_LEN, hex);
	text_line("parent:", m->has_parent ? hex : NULL);
	text_line("parent hint:", m->parent_hint);
	text_line("cmdline:", m->cmdline);
	printf("%-*s%" PRIu64 " bytes (%s)\n", LABEL_WIDTH, "memory:",
	       m->memory_size, fmt_size(m->memory_size, size));
	print_regions(m);
	snap_hex(m->state_sha256, SNAP_DIGEST_LEN, hex);
	printf("%-*s%" PRIu64 " bytes (%s), sha256 %s\n", LABEL_WIDTH,
	       "state:", m->state_size, fmt_size(m->state_size, size), hex);
	if (m->has_memory_sha256)
		snap_hex(m->memory_sha256, SNAP_DIGEST_LEN, hex);
	printf("%-*s%s\n", LABEL_WIDTH, "memory sha256:",
	       m->has_memory_sha256 ? hex : "not recorded");
	features_line("required:", m->required_features, m->n_required);
	features_line("compatible:", m->compatible_features, m->n_compatible);
}

/* ", 1 thing" or ", N things". */
static void count(uint32_t n, const char *one, const char *many)
{
	printf(", %u %s", n, n == 1 ? one : many);
}

/*
 * Three lines: registers that say where the vCPU is, control registers
 * (aligned under the first), then its state and the sizes of its lists.
 */
static void print_vcpu(const struct snap_vcpu *v)
{
	const char *mp = fmt_mp_state(v->mp_state);
	char cell[32];

	printf("vcpu %-*u rip 0x%016" PRIx64 "  rsp 0x%016" PRIx64
	       "  rflags 0x%08" PRIx64 "\n", VCPU_INDENT - 6, v->id,
	       v->regs.rip, v->regs.rsp, v->regs.rflags);
	snprintf(cell, sizeof(cell), "cr0 0x%08" PRIx64, v->sregs.cr0);
	printf("%*s%-22s  cr3 0x%016" PRIx64 "  cr4 0x%08" PRIx64
	       "  efer 0x%04" PRIx64 "\n", VCPU_INDENT, "", cell,
	       v->sregs.cr3, v->sregs.cr4, v->sregs.efer);
	printf("%*s", VCPU_INDENT, "");
	if (mp)
		fputs(mp, stdout);
	else
		printf("mp_state %u", v->mp_state);
	printf(", xsave %u bytes", v->xsave_size);
	count(v->n_msrs, "msr", "msrs");
	count(v->n_xcrs, "xcr", "xcrs");
	count(v->n_cpuid, "cpuid entry", "cpuid entries");
	printf(", tsc %" PRIu64 " kHz\n", v->tsc_khz);
}

static void print_vm(const struct snap_state *s)
{
	const char *sep = "";

	label("vm:");
	if (s->has_pic)
		list_item(&sep, "pic");
	if (s->has_ioapic)
		list_item(&sep, "ioapic");
	if (s->has_pit)
		list_item(&sep, "pit");
	if (s->has_clock) {
		list_item(&sep, "clock");
		printf(" %" PRIu64 " ns (flags 0x%x)", s->clock.clock,
		       s->clock.flags);
	}
	puts(*sep ? "" : "none");
}

static void print_uart8250(const struct snap_device *d)
{
	struct snap_err err = { .msg = "" };
	struct snap_uart8250 u;
	size_t shown;

	if (snap_uart8250_decode(d->payload, d->len, &u, &err)) {
		printf("  undecodable: %s", err.msg);
		return;
	}
	shown = u.rx_len < UART_RX_SHOWN ? u.rx_len : UART_RX_SHOWN;
	printf("  lcr 0x%02x  ier 0x%02x  rx %u byte%s", u.lcr, u.ier,
	       u.rx_len, u.rx_len == 1 ? "" : "s");
	if (u.rx_len) {
		fputs(" \"", stdout);
		fmt_bytes(stdout, u.rx_fifo, shown);
		fputs(shown < u.rx_len ? "\"..." : "\"", stdout);
	}
}

static void print_devices(const struct snap_state *s)
{
	int width = 0, digits = 1;
	char len[24];

	printf("%-*s%u\n", LABEL_WIDTH, "devices:", s->n_devices);
	for (uint32_t i = 0; i < s->n_devices; i++) {
		int n = (int)fmt_text_width(s->devices[i].name);
		int d = snprintf(len, sizeof(len), "%zu", s->devices[i].len);

		if (n > width)
			width = n;
		if (d > digits)
			digits = d;
	}
	for (uint32_t i = 0; i < s->n_devices; i++) {
		const struct snap_device *d = &s->devices[i];
		int n;

		fputs("  ", stdout);
		n = (int)fmt_text(stdout, d->name);
		printf("%*s  %*zu bytes", width - n, "", digits, d->len);
		if (inspect_is_uart8250(d))
			print_uart8250(d);
		putchar('\n');
	}
}

static void inspect_text(const char *dir, const struct snap_manifest *m,
			 const struct snap_state *s)
{
	print_manifest(dir, m);
	putchar('\n');
	for (uint32_t i = 0; i < s->n_vcpus; i++)
		print_vcpu(&s->vcpus[i]);
	putchar('\n');
	print_vm(s);
	print_devices(s);
}

int inspect_run(const struct snapctl_cmd *cmd, int argc, char **argv)
{
	bool json = false;
	const struct snapctl_opt opts[] = {
		{ .name = "--json", .flag = &json },
	};
	struct snap_state *s = NULL;
	struct snap_manifest m;
	const char *dir;
	int status, ret;

	if (!cli_parse(cmd, argc, argv, opts, ARRAY_SIZE(opts),
		       &dir, 1, &status))
		return status;
	ret = cli_read(cmd, dir, 0, &m, &s);
	if (ret)
		return SNAPCTL_EXIT_FAIL;
	if (json) {
		ret = inspect_json(dir, &m, s);
	} else {
		inspect_text(dir, &m, s);
		ret = cli_flush_stdout();
	}
	if (ret)
		cli_error("%s %s: write error on standard output: %s",
			  cmd->name, dir, strerror(-ret));
	snap_state_free(s);
	snap_manifest_release(&m);
	return ret ? SNAPCTL_EXIT_FAIL : SNAPCTL_EXIT_OK;
}
