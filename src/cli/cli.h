/*
 * cli.h - what the `dura` command's files share: the command table types,
 * the option parser's results, and output helpers (tables, times, JSON,
 * errors).
 *
 * Exit codes: 0 success, 1 error, 2 usage error, 3 `runs create` found an
 * active run with the same foreign id (its id is printed anyway), 4 `watch`
 * saw the run end without completing (failed, cancelled, data deleted).
 */
#ifndef DURA_CLI_H
#define DURA_CLI_H

#include <dura.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_OK 0
#define CLI_ERROR 1
#define CLI_USAGE 2
#define CLI_EXISTS 3
#define CLI_ENDED 4 /* `watch`: the run ended without completing */

#define CLI_DEFAULT_URL "sqlite:dura.db"

/* An option of a command: --name VALUE (or a flag when arg is NULL). */
typedef struct cli_opt {
	const char *name;  /* long name, without the dashes */
	int short_name;    /* 'n' for -n, or 0 */
	const char *arg;   /* metavariable ("N") or NULL for a flag */
	const char *help;  /* one line */
} cli_opt;

typedef struct cli cli;
typedef struct cli_args cli_args;
typedef int (*cli_fn)(cli *c, const cli_args *a);

/* How a command needs the store. */
enum { CLI_NO_STORE = 0, CLI_STORE = 1, CLI_STORE_MIGRATE = 2 };

typedef struct cli_command {
	const char *name;
	const char *args;    /* positional synopsis ("RUN", "[RUN]") or NULL */
	const char *summary; /* one line, for the command lists */
	const char *help;    /* more text for --help, or NULL */
	const cli_opt *opts; /* terminated by an entry with a NULL name, or NULL */
	int min_pos, max_pos;
	int store;   /* CLI_NO_STORE, CLI_STORE or CLI_STORE_MIGRATE */
	cli_fn run;  /* NULL: a group that needs one of subs */
	const struct cli_command *const *subs; /* NULL-terminated, or NULL */
} cli_command;

/* The parsed command line of one command. */
struct cli_args {
	const cli_command *cmd;
	const char **values; /* one per cmd->opts entry: the value, "" for a set flag, or NULL */
	int npos;
	char **pos;
};

/* The state of one invocation. */
struct cli {
	const char *url;   /* --store, else $DURA_STORE_URL, else the default */
	int json;          /* --json */
	dura_store *store; /* opened by cli_open, closed by main */
	char *path;        /* "cache ls": the command as typed, for messages */
	const cli_command *cmd;
};

/* ---- the command line (main.c) --------------------------------------------- */

/* What cli_parse returns when a command is to run (exit codes are >= 0). */
#define CLI_PARSED (-1)

/*
 * Parse a whole command line (argv[0] is the program's name): the global
 * options into c (whose url holds the default store URL and path "" on
 * entry), then the command and its arguments. CLI_PARSED when *cmd is to
 * run with *a (then free *a with cli_args_free); otherwise the exit code
 * of what was done instead: help or the version printed, or a usage error
 * reported. Parsing never touches a store.
 */
int cli_parse(cli *c, int argc, char **argv, const cli_command **cmd, cli_args *a);
void cli_args_free(cli_args *a);
/* Run a parsed command (it opens the store if it needs one; closed here). */
int cli_exec(cli *c, const cli_command *cmd, const cli_args *a);
/* The whole `dura` command: parse, run, flush stdout; the exit code. */
int cli_main(int argc, char **argv);

/* Open the store, as the command's `store` field says, once its arguments
 * are checked (so a bad argument is a usage error whatever the store).
 * Returns 0 or CLI_ERROR (the error printed). */
int cli_open(cli *c);

/* ---- options -------------------------------------------------------------- */

/* The value of option `name` (NULL when absent; "" for a set flag). */
const char *cli_opt_get(const cli_args *a, const char *name);
int cli_flag(const cli_args *a, const char *name);

/* Parse numbers and run states given on the command line; on a bad value
 * they print a usage error and return CLI_USAGE. */
int cli_parse_i64(const cli *c, const char *opt, const char *text, int64_t min, int64_t *out);
int cli_parse_size(const cli *c, const char *opt, const char *text, size_t max, size_t *out);
int cli_parse_run_state(const cli *c, const char *opt, const char *text, int *out);

/* ---- errors --------------------------------------------------------------- */

/* Print "dura: <dura_error_last()'s message>" (or the code's name) and
 * return CLI_ERROR. */
int cli_fail(int rc);
/* Print "dura: <message>" and return CLI_ERROR. */
int cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "dura: <message> (try 'dura <path> --help')" and return CLI_USAGE. */
int cli_usagef(const cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- memory: these print "dura: out of memory" and exit(1) on failure ---- */

void *cli_malloc(size_t n);
void *cli_realloc(void *p, size_t n);
char *cli_strdup(const char *s);
char *cli_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- text ----------------------------------------------------------------- */

/* Format a timestamp (UTC, milliseconds) into buf: "-" for 0. */
const char *cli_time(char buf[24], int64_t ms);
/* 1 if the bytes are valid UTF-8 (RFC 3629). */
int cli_utf8_valid(const unsigned char *s, size_t n);
/* The length of the valid UTF-8 sequence at s (at most n bytes), its code
 * point in *cp; 0 when none starts there (overlong forms, surrogates and
 * code points over U+10FFFF are not valid). */
size_t cli_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp);
/* 1 if the bytes are UTF-8 text without NULs or control characters other
 * than tab, newline and carriage return. */
int cli_printable(const unsigned char *s, size_t n);
/* A copy fit for one table cell: NULL/"" become "-", invalid UTF-8 and
 * control characters become '?'. */
char *cli_cell(const char *s);
/* Lowercase hex SHA-256 of the bytes, allocated. */
char *cli_sha256_hex(const void *data, size_t n);
/* Pretty-print JSON text with the given indent; the text as is if it does
 * not parse. Ends with a newline. */
void cli_print_json_text(FILE *f, const char *text, int indent);
/* JSON text on one line (compact), allocated; a copy of the text if it
 * does not parse; NULL for NULL. */
char *cli_json_oneline(const char *text);
/* Read all of a stream into an allocated buffer. 0 or -1 (errno set). */
int cli_read_all(FILE *f, unsigned char **out, size_t *len);

/* ---- tables --------------------------------------------------------------- */

typedef struct cli_table cli_table;
cli_table *cli_table_new(size_t ncols, const char *const *headers);
/* Add a row of ncols cells (NULL or "" print as "-"). */
void cli_table_add(cli_table *t, const char *const *cells);
/* Columns aligned (two spaces apart, the last not padded). */
void cli_table_print(cli_table *t, FILE *f);
void cli_table_free(cli_table *t);

/* "name   value" lines, names padded to `width`. */
void cli_kv(FILE *f, int width, const char *name, const char *value);

/* ---- JSON ----------------------------------------------------------------- */

/* Set obj[key] = val (stealing val); exits on out of memory. */
void cli_jset(json_t *obj, const char *key, json_t *val);
/* Append val (stolen) to arr; exits on out of memory. */
void cli_jappend(json_t *arr, json_t *val);
json_t *cli_jobject(void);
json_t *cli_jarray(void);
/* A JSON string from C text, made valid UTF-8; null for NULL. */
json_t *cli_jstr(const char *s);
/* Like cli_jstr, but null for NULL and "". */
json_t *cli_jstr_opt(const char *s);
json_t *cli_jint(int64_t v);
/* A formatted timestamp, or null for 0. */
json_t *cli_jtime(int64_t ms);
/* Parsed JSON text; the text as a string if it does not parse; null for NULL and "". */
json_t *cli_jparse(const char *text);
/* Print the value (indented, newline-terminated) to stdout and free it. */
int cli_jprint(json_t *v);

json_t *cli_json_record(const dura_record *r);
json_t *cli_json_step(const dura_step *s, int with_state);

/* What a waiting run waits for, for people: "sleep until T", "signal NAME,
 * deadline T" (or ", no deadline"), "child ID"; allocated, NULL when the
 * run waits for nothing. */
char *cli_wait_text(const dura_record *r);
/* The same as JSON: {"kind": "sleep", "until": T}, {"kind": "signal",
 * "name": N, "deadline": T or null}, {"kind": "child", "run_id": ID}, or
 * null when the run waits for nothing. */
json_t *cli_json_wait(const dura_record *r);

/* Report that `what` was done to `id`: {"<key>": id} with --json, else
 * "<what> <id>" on stdout. Returns CLI_OK or CLI_ERROR. */
int cli_done(const cli *c, const char *key, const char *what, const char *id);

/* ---- the shared bits of pause, resume and cancel --------------------------- */

int cli_transition(cli *c, const cli_args *a, int to);

/* ---- what live workers serve (cmd_versions.c) ------------------------------- */

/* The workflow versions the live workers of the registry serve. */
typedef struct cli_served cli_served;
cli_served *cli_served_load(cli *c);
/* 1 when a live worker serves wf at version ("": any version of wf), 0
 * when none does, -1 when the store keeps no registry (nothing known). */
int cli_served_has(const cli_served *s, const char *wf, const char *version);
/* How many live workers serve wf at version. */
size_t cli_served_workers(const cli_served *s, const char *wf, const char *version);
void cli_served_free(cli_served *s);
/* 1 for the run states in which a run needs a worker some day (running,
 * initiated, paused): those of an unserved version are stranded. */
int cli_run_waits_for_a_worker(int run_state);

/* A duration: N with a unit ms, s, m, h or d (a bare N is ms); a usage
 * error (CLI_USAGE) when it is not one. */
int cli_parse_duration(const cli *c, const char *opt, const char *text, int64_t *ms);

/* ---- the commands ------------------------------------------------------------ */

extern const cli_command cli_cmd_init, cli_cmd_ping, cli_cmd_info, cli_cmd_runs, cli_cmd_show,
	cli_cmd_checkpoints, cli_cmd_cache, cli_cmd_outbox, cli_cmd_commit, cli_cmd_pause, cli_cmd_resume,
	cli_cmd_cancel, cli_cmd_fork, cli_cmd_help, cli_cmd_version, cli_cmd_workers, cli_cmd_signal,
	cli_cmd_schedules, cli_cmd_versions, cli_cmd_prune, cli_cmd_export, cli_cmd_import, cli_cmd_migrate, cli_cmd_serve, cli_cmd_watch;

/* main.c: help text of a command; `path` is how it is typed ("cache ls"). */
void cli_print_help(FILE *f, const cli_command *cmd, const char *path);
void cli_print_main_help(FILE *f);

#endif
