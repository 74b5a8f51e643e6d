/* SPDX-License-Identifier: MIT */
/*
 * snapctl verify: the offline checker. Everything snap_read() checks
 * (checksums, every field, required features, file sizes) plus, unless
 * --quick, the digest of memory.bin when the manifest records one.
 */
#include "tools/snapctl/snapctl.h"

#include "snapshot/format/snapdir.h"

int verify_run(const struct snapctl_cmd *cmd, int argc, char **argv)
{
	bool quick = false;
	const struct snapctl_opt opts[] = {
		{ .name = "--quick", .flag = &quick },
	};
	char size[FMT_SIZE_LEN];
	struct snap_manifest m;
	const char *dir, *memory;
	int status;

	if (!cli_parse(cmd, argc, argv, opts, ARRAY_SIZE(opts),
		       &dir, 1, &status))
		return status;
	if (cli_read(cmd, dir, quick ? 0 : SNAP_MEMORY_DIGEST, &m, NULL))
		return SNAPCTL_EXIT_FAIL;
	if (!m.has_memory_sha256)
		memory = "not recorded";
	else
		memory = quick ? "skipped" : "checked";
	printf("%s: ok (%u vcpu%s, %s memory, memory digest %s)\n", dir,
	       m.vcpu_count, m.vcpu_count == 1 ? "" : "s",
	       fmt_size(m.memory_size, size), memory);
	snap_manifest_release(&m);
	return SNAPCTL_EXIT_OK;
}
