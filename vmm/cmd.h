/* SPDX-License-Identifier: MIT */
#ifndef SNAPVM_CMD_H
#define SNAPVM_CMD_H

/*
 * snapvm's subcommands, listed in main.c's command table. Each takes its
 * own argv (argv[0] is the subcommand's name) and returns the exit status:
 * 0, 1 on an error (one line on stderr), 2 on bad usage.
 */

#define SNAPVM_VERSION "0.1"

int cmd_run(int argc, char **argv);	/* run.c */
int cmd_ctl(int argc, char **argv);	/* ctl.c */
int cmd_restore(int argc, char **argv);	/* restore.c */

#endif
