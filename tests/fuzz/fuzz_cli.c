/*
 * fuzz_cli.c - the `dura` command's argument parser (cli_parse in
 * src/cli/main.c) and its commands.
 *
 * The input, cut at its NUL bytes, is the argument vector after "dura"
 * (at most MAX_ARGS arguments). It is parsed as `dura` parses it; a
 * command that parses is then run, always against a new memory: store
 * whatever --store says, with stdin and stdout on /dev/null. The exit
 * code must be one of the CLI's (0 to 3). Run it with -close_fd_mask=2
 * to silence the commands' messages on stderr.
 */
#include "cli.h"
#include "fuzz.h"

#define MAX_ARGS 24

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!freopen("/dev/null", "r", stdin) || !freopen("/dev/null", "w", stdout))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parts p;
	fuzz_split(&p, data, size, MAX_ARGS);
	char *argv[MAX_ARGS + 2];
	int argc = 0;
	argv[argc++] = "dura";
	for (size_t i = 0; i < p.n; i++)
		argv[argc++] = (char *)p.part[i];
	argv[argc] = NULL;
	if (size == 0)
		argc = 1; /* plain `dura` */

	cli c = {0};
	c.url = "memory:";
	c.path = cli_strdup("");
	const cli_command *cmd = NULL;
	cli_args a;
	int rc = cli_parse(&c, argc, argv, &cmd, &a);
	if (rc == CLI_PARSED) {
		FUZZ_CHECK(cmd != NULL && cmd->run != NULL);
		FUZZ_CHECK(a.cmd == cmd && a.npos >= cmd->min_pos && (cmd->max_pos < 0 || a.npos <= cmd->max_pos));
		for (int i = 0; i < a.npos; i++)
			FUZZ_CHECK(a.pos[i] != NULL);
		FUZZ_CHECK(c.path && *c.path);
		c.url = "memory:"; /* never a file or a server */
		/* parsed, not run: serve runs until a signal, watch until its run ends */
		rc = cmd == &cli_cmd_serve || cmd == &cli_cmd_watch ? CLI_OK : cli_exec(&c, cmd, &a);
		FUZZ_CHECK(c.store == NULL);
		cli_args_free(&a);
	} else {
		FUZZ_CHECK(a.values == NULL && a.pos == NULL);
	}
	FUZZ_CHECK(rc == CLI_OK || rc == CLI_ERROR || rc == CLI_USAGE || rc == CLI_EXISTS);
	fflush(stdout);
	clearerr(stdout);
	free(c.path);
	fuzz_parts_free(&p);
	return 0;
}
