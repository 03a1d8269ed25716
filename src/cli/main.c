/*
 * main.c - `dura`: global options, the command table, the option parser
 * and help.
 *
 *   dura [--store URL] [--json] <command> [args]
 *
 * The store URL comes from --store, else $DURA_STORE_URL, else
 * sqlite:dura.db. It is never printed: only the store's redacted location.
 * Errors are one line on stderr, "dura: <message>"; exit codes are in cli.h.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const cli_command *const commands[] = {
	&cli_cmd_init, &cli_cmd_ping,   &cli_cmd_info,   &cli_cmd_runs,   &cli_cmd_show,   &cli_cmd_commit,
	&cli_cmd_pause, &cli_cmd_resume, &cli_cmd_cancel, &cli_cmd_fork, &cli_cmd_checkpoints, &cli_cmd_cache, &cli_cmd_outbox,
	&cli_cmd_signal, &cli_cmd_schedules, &cli_cmd_workers, &cli_cmd_versions, &cli_cmd_prune, &cli_cmd_export,
	&cli_cmd_import, &cli_cmd_migrate, &cli_cmd_serve, &cli_cmd_watch, &cli_cmd_help, &cli_cmd_version, NULL,
};

/* Options every command takes, after its own. */
static const cli_opt common_opts[] = {
	{"store", 0, "URL", "store URL (default: $DURA_STORE_URL, else " CLI_DEFAULT_URL ")"},
	{"json", 0, NULL, "print JSON instead of text"},
	{"help", 'h', NULL, "show this help"},
	{NULL, 0, NULL, NULL},
};

/* ---- help ------------------------------------------------------------------ */

static size_t opt_label_len(const cli_opt *o)
{
	size_t n = 2 + strlen(o->name) + (o->short_name ? 4 : 0);
	if (o->arg)
		n += 1 + strlen(o->arg);
	return n;
}

static void print_opt(FILE *f, const cli_opt *o, size_t w)
{
	size_t n = opt_label_len(o);
	fputs("  ", f);
	if (o->short_name)
		fprintf(f, "-%c, ", o->short_name);
	fprintf(f, "--%s", o->name);
	if (o->arg)
		fprintf(f, " %s", o->arg);
	for (; n < w + 2; n++)
		fputc(' ', f);
	fprintf(f, "%s\n", o->help);
}

void cli_print_help(FILE *f, const cli_command *cmd, const char *path)
{
	size_t w = 0;
	fprintf(f, "usage: dura %s", path);
	if (cmd->subs && !cmd->run)
		fputs(" <command>", f);
	if (cmd->args)
		fprintf(f, " %s", cmd->args);
	fputs(" [options]\n", f);
	if (cmd->subs && cmd->run)
		fprintf(f, "       dura %s <command> ...\n", path);
	fprintf(f, "\n%s\n", cmd->summary);
	if (cmd->help)
		fprintf(f, "\n%s\n", cmd->help);
	if (cmd->subs) {
		size_t nw = 0;
		fputs("\ncommands:\n", f);
		for (size_t i = 0; cmd->subs[i]; i++)
			if (strlen(cmd->subs[i]->name) > nw)
				nw = strlen(cmd->subs[i]->name);
		for (size_t i = 0; cmd->subs[i]; i++)
			fprintf(f, "  %-*s  %s\n", (int)nw, cmd->subs[i]->name, cmd->subs[i]->summary);
		fprintf(f, "(see 'dura %s <command> --help')\n", path);
	}
	for (size_t i = 0; cmd->opts && cmd->opts[i].name; i++)
		if (opt_label_len(&cmd->opts[i]) > w)
			w = opt_label_len(&cmd->opts[i]);
	for (size_t i = 0; common_opts[i].name; i++)
		if (opt_label_len(&common_opts[i]) > w)
			w = opt_label_len(&common_opts[i]);
	fputs("\noptions:\n", f);
	for (size_t i = 0; cmd->opts && cmd->opts[i].name; i++)
		print_opt(f, &cmd->opts[i], w);
	for (size_t i = 0; common_opts[i].name; i++)
		print_opt(f, &common_opts[i], w);
}

void cli_print_main_help(FILE *f)
{
	fputs("usage: dura [--store URL] [--json] <command> [args]\n"
	      "\n"
	      "Inspect and operate the store of dura, the durable workflow library.\n"
	      "\n"
	      "commands:\n",
	      f);
	for (size_t i = 0; commands[i]; i++)
		fprintf(f, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\n"
	      "global options:\n"
	      "  --store URL   store URL: memory:, sqlite:PATH, postgres://..., mysql://...,\n"
	      "                redis://... (default: $DURA_STORE_URL, else " CLI_DEFAULT_URL ")\n"
	      "  --json        print JSON instead of text\n"
	      "  --version     print the version\n"
	      "  -h, --help    show this help ('dura <command> --help' for a command's)\n"
	      "\n"
	      "environment:\n"
	      "  DURA_STORE_URL   the store URL when --store is not given\n"
	      "\n"
	      "exit status:\n"
	      "  0 success, 1 error, 2 usage error,\n"
	      "  3 'runs create' found an active run with that foreign id (its id is printed),\n"
	      "  4 'watch' saw the run end without completing (failed, cancelled, data deleted)\n",
	      f);
}

/* ---- parsing ---------------------------------------------------------------- */

/* Find an option by long or short name in a table; -1 if absent. */
static int find_opt(const cli_opt *opts, const char *name, size_t len, int short_name)
{
	for (int i = 0; opts && opts[i].name; i++) {
		if (short_name ? opts[i].short_name == short_name
		               : strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
			return i;
	}
	return -1;
}

/* Result of parsing one command's arguments. */
enum { PARSED, HELP, BAD };

/*
 * Options and positional arguments may be mixed; "--" ends the options.
 * --store and --json are accepted here too, so `dura show RUN --json` works.
 */
static int parse_args(cli *c, const cli_command *cmd, int argc, char **argv, cli_args *a, int *rc)
{
	size_t nopts = 0;
	while (cmd->opts && cmd->opts[nopts].name)
		nopts++;
	a->cmd = cmd;
	a->values = cli_malloc((nopts ? nopts : 1) * sizeof(char *));
	for (size_t i = 0; i < nopts; i++)
		a->values[i] = NULL;
	a->pos = cli_malloc(((size_t)argc + 1) * sizeof(char *));
	a->npos = 0;
	int only_pos = 0;
	for (int i = 0; i < argc; i++) {
		char *arg = argv[i];
		if (only_pos || arg[0] != '-' || arg[1] == '\0') {
			a->pos[a->npos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = 1;
			continue;
		}
		const char *name, *inline_val = NULL;
		size_t len;
		int sn = 0;
		if (arg[1] == '-') {
			name = arg + 2;
			const char *eq = strchr(name, '=');
			len = eq ? (size_t)(eq - name) : strlen(name);
			if (eq)
				inline_val = eq + 1;
		} else {
			if (arg[2] != '\0') {
				*rc = cli_usagef(c, "unknown option '%s'", arg);
				return BAD;
			}
			name = arg + 1;
			len = 1;
			sn = arg[1];
		}
		const cli_opt *opt;
		const char **slot = NULL;
		int k = find_opt(cmd->opts, name, len, sn);
		if (k >= 0) {
			opt = &cmd->opts[k];
			slot = &a->values[k];
		} else if ((k = find_opt(common_opts, name, len, sn)) >= 0) {
			opt = &common_opts[k];
		} else {
			*rc = cli_usagef(c, "unknown option '%s'", arg);
			return BAD;
		}
		const char *val = "";
		if (opt->arg) {
			if (inline_val)
				val = inline_val;
			else if (i + 1 < argc)
				val = argv[++i];
			else {
				*rc = cli_usagef(c, "option --%s needs a value (%s)", opt->name, opt->arg);
				return BAD;
			}
		} else if (inline_val) {
			*rc = cli_usagef(c, "option --%s takes no value", opt->name);
			return BAD;
		}
		if (slot) {
			*slot = val;
		} else if (strcmp(opt->name, "help") == 0) {
			cli_print_help(stdout, cmd, c->path);
			*rc = CLI_OK;
			return HELP;
		} else if (strcmp(opt->name, "json") == 0) {
			c->json = 1;
		} else if (strcmp(opt->name, "store") == 0) {
			c->url = val;
		}
	}
	if (a->npos < cmd->min_pos) {
		*rc = cli_usagef(c, "missing argument: dura %s %s", c->path, cmd->args ? cmd->args : "");
		return BAD;
	}
	if (cmd->max_pos >= 0 && a->npos > cmd->max_pos) {
		*rc = cli_usagef(c, "unexpected argument '%s'", a->pos[cmd->max_pos]);
		return BAD;
	}
	return PARSED;
}

static const cli_command *find_sub(const cli_command *const *subs, const char *name)
{
	for (size_t i = 0; subs && subs[i]; i++)
		if (strcmp(subs[i]->name, name) == 0)
			return subs[i];
	return NULL;
}

static void path_append(cli *c, const char *name)
{
	char *p = *c->path ? cli_asprintf("%s %s", c->path, name) : cli_strdup(name);
	free(c->path);
	c->path = p;
}

int cli_open(cli *c)
{
	dura_store_options opts = DURA_STORE_OPTIONS_INIT;
	if (c->store)
		return 0;
	opts.auto_migrate = c->cmd && c->cmd->store == CLI_STORE_MIGRATE;
	int rc = dura_store_open(&c->store, c->url, &opts);
	if (rc)
		return cli_fail(rc);
	return 0;
}

/* Find the (sub)command `cmd` names with its arguments (argv[0] is the
 * first argument after its name) and parse them into *out and *a. */
static int resolve(cli *c, const cli_command *cmd, int argc, char **argv, const cli_command **out, cli_args *a)
{
	if (cmd->subs && argc > 0 && argv[0][0] != '-') {
		const cli_command *sub = find_sub(cmd->subs, argv[0]);
		if (sub) {
			path_append(c, sub->name);
			return resolve(c, sub, argc - 1, argv + 1, out, a);
		}
		if (!cmd->run || cmd->max_pos == 0)
			return cli_usagef(c, "unknown command '%s %s'", c->path, argv[0]);
	}
	if (!cmd->run) {
		if (argc > 0 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
			cli_print_help(stdout, cmd, c->path);
			return CLI_OK;
		}
		if (argc > 0 && argv[0][0] == '-')
			return cli_usagef(c, "'%s' needs a command before options", c->path);
		return cli_usagef(c, "missing command after '%s'", c->path);
	}
	int rc = CLI_OK;
	if (parse_args(c, cmd, argc, argv, a, &rc) == PARSED) {
		*out = cmd;
		return CLI_PARSED;
	}
	cli_args_free(a);
	return rc;
}

void cli_args_free(cli_args *a)
{
	free(a->values);
	free(a->pos);
	a->values = NULL;
	a->pos = NULL;
	a->npos = 0;
}

int cli_parse(cli *c, int argc, char **argv, const cli_command **cmd, cli_args *a)
{
	int i = 1;
	*cmd = NULL;
	memset(a, 0, sizeof(*a));
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		} else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			cli_print_main_help(stdout);
			return CLI_OK;
		} else if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
			printf("dura %s\n", DURA_VERSION_STRING);
			return CLI_OK;
		} else if (strcmp(arg, "--json") == 0) {
			c->json = 1;
		} else if (strcmp(arg, "--store") == 0) {
			if (i + 1 >= argc)
				return cli_usagef(c, "option --store needs a value (URL)");
			c->url = argv[++i];
		} else if (strncmp(arg, "--store=", 8) == 0) {
			c->url = arg + 8;
		} else {
			return cli_usagef(c, "unknown option '%s'", arg);
		}
	}
	if (i >= argc)
		return cli_usagef(c, "missing command");
	const cli_command *top = find_sub(commands, argv[i]);
	if (!top)
		return cli_usagef(c, "unknown command '%s'", argv[i]);
	path_append(c, top->name);
	return resolve(c, top, argc - i - 1, argv + i + 1, cmd, a);
}

int cli_exec(cli *c, const cli_command *cmd, const cli_args *a)
{
	c->cmd = cmd;
	int rc = cmd->run(c, a);
	dura_store_close(c->store);
	c->store = NULL;
	return rc;
}

/* ---- help and version commands ------------------------------------------ */

static int run_help(cli *c, const cli_args *a)
{
	if (a->npos == 0) {
		cli_print_main_help(stdout);
		return CLI_OK;
	}
	const cli_command *cmd = NULL;
	const cli_command *const *table = commands;
	char *path = NULL;
	for (int i = 0; i < a->npos; i++) {
		const cli_command *next = NULL;
		for (size_t k = 0; table && table[k]; k++)
			if (strcmp(table[k]->name, a->pos[i]) == 0)
				next = table[k];
		if (!next) {
			free(c->path); /* point at the main help */
			c->path = cli_strdup("");
			int rc = cli_usagef(c, "unknown command '%s%s%s'", path ? path : "", path ? " " : "", a->pos[i]);
			free(path);
			return rc;
		}
		char *p = path ? cli_asprintf("%s %s", path, next->name) : cli_strdup(next->name);
		free(path);
		path = p;
		cmd = next;
		table = cmd->subs;
	}
	cli_print_help(stdout, cmd, path);
	free(path);
	return CLI_OK;
}

const cli_command cli_cmd_help = {
	.name = "help",
	.args = "[COMMAND [SUBCOMMAND]]",
	.summary = "show help for dura or a command",
	.min_pos = 0,
	.max_pos = 2,
	.run = run_help,
};

static int run_version(cli *c, const cli_args *a)
{
	(void)a;
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "version", cli_jstr(DURA_VERSION_STRING));
		return cli_jprint(o);
	}
	printf("dura %s\n", DURA_VERSION_STRING);
	return CLI_OK;
}

const cli_command cli_cmd_version = {
	.name = "version",
	.summary = "print the version",
	.min_pos = 0,
	.max_pos = 0,
	.run = run_version,
};

/* ---- main ------------------------------------------------------------------- */

static int finish(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (rc == CLI_OK)
			fprintf(stderr, "dura: cannot write the output: %s\n", strerror(errno));
		return rc == CLI_OK ? CLI_ERROR : rc;
	}
	return rc;
}

int cli_main(int argc, char **argv)
{
	cli c = {0};
	const char *env = getenv("DURA_STORE_URL");
	c.url = env && *env ? env : CLI_DEFAULT_URL;
	c.path = cli_strdup("");
	const cli_command *cmd;
	cli_args a;
	int rc = cli_parse(&c, argc, argv, &cmd, &a);
	if (rc == CLI_PARSED) {
		rc = cli_exec(&c, cmd, &a);
		cli_args_free(&a);
	}
	free(c.path);
	return finish(rc);
}

/* The fuzz harness of the parser (tests/fuzz/fuzz_cli.c) links this file
 * without main. */
#ifndef DURA_CLI_NO_MAIN
int main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
#endif
