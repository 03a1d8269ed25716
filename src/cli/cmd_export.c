/*
 * cmd_export.c - moving a deployment between stores: `dura export` writes
 * the store as JSON lines to stdout, `dura import` reads them from stdin
 * into the store, `dura migrate --from URL --to URL` does both in one
 * streaming pass (docs/export.md). On a terminal each shows its progress
 * on stderr (records, bytes, rate); piped, nothing but the counts at the
 * end, and only those on stderr, so stdout stays the data.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- progress ------------------------------------------------------------------------ */

typedef struct progress {
	int tty;
	const char *verb;
	struct timespec t0;
	double shown;
} progress;

static double since(const progress *p)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - p->t0.tv_sec) + (double)(t.tv_nsec - p->t0.tv_nsec) / 1e9;
}

static void progress_init(progress *p, const cli *c, const char *verb)
{
	p->tty = !c->json && isatty(STDERR_FILENO);
	p->verb = verb;
	p->shown = -1;
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
}

static void progress_show(const dura_transfer_stats *st, void *payload)
{
	progress *p = payload;
	if (!p->tty)
		return;
	double s = since(p);
	if (p->shown >= 0 && s - p->shown < 0.2)
		return;
	p->shown = s;
	fprintf(stderr, "\r%s %" PRId64 " records, %.1f MB, %.0f records/s ", p->verb, st->lines,
	        (double)st->bytes / 1e6, s > 0 ? (double)st->lines / s : 0.0);
	fflush(stderr);
}

/* What was moved, on stderr (stdout may be the data), or as JSON. */
static void report(const cli *c, const progress *p, const dura_transfer_stats *st, int rc)
{
	if (p->tty)
		fputc('\n', stderr);
	if (c->json) {
		json_t *o = cli_jobject();
		cli_jset(o, "ok", json_boolean(rc == 0));
		cli_jset(o, "lines", cli_jint(st->lines));
		cli_jset(o, "bytes", cli_jint(st->bytes));
		cli_jset(o, "runs", cli_jint(st->runs));
		cli_jset(o, "steps", cli_jint(st->steps));
		cli_jset(o, "checkpoints", cli_jint(st->checkpoints));
		cli_jset(o, "signals", cli_jint(st->signals));
		cli_jset(o, "events", cli_jint(st->events));
		cli_jset(o, "schedules", cli_jint(st->schedules));
		cli_jset(o, "cache_entries", cli_jint(st->cache_entries));
		cli_jset(o, "workflows", cli_jint(st->workflows));
		cli_jset(o, "unchanged", cli_jint(st->unchanged));
		cli_jset(o, "expired", cli_jint(st->skipped));
		cli_jset(o, "failed_line", st->line ? cli_jint(st->line) : json_null());
		char *text = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		fprintf(stderr, "%s\n", text ? text : "{}");
		free(text);
		return;
	}
	if (rc)
		return;
	fprintf(stderr,
	        "%s %" PRId64 " runs (%" PRId64 " steps, %" PRId64 " checkpoints, %" PRId64 " signals), %" PRId64
	        " events, %" PRId64 " schedules, %" PRId64 " cache entries, %" PRId64 " workflow versions",
	        p->verb, st->runs, st->steps, st->checkpoints, st->signals, st->events, st->schedules, st->cache_entries,
	        st->workflows);
	if (st->unchanged)
		fprintf(stderr, "; %" PRId64 " already there, unchanged", st->unchanged);
	if (st->skipped)
		fprintf(stderr, "; %" PRId64 " cache entries expired on the way", st->skipped);
	fprintf(stderr, " (%" PRId64 " lines, %.1f s)\n", st->lines, since(p));
}

/* --since: a time (ms since the epoch, or an age like 7d before now). */
static int parse_since(const cli *c, const char *v, int64_t *out)
{
	size_t n = strlen(v);
	if (n && (v[n - 1] < '0' || v[n - 1] > '9')) {
		int64_t age;
		int rc = cli_parse_duration(c, "since", v, &age);
		if (rc)
			return rc;
		*out = dura_now_ms() - age;
		return *out > 0 ? 0 : cli_usagef(c, "--since: %s goes back before 1970", v);
	}
	return cli_parse_i64(c, "since", v, 0, out);
}

/* ---- dura export --------------------------------------------------------------------- */

static int write_line(const char *line, size_t len, void *payload)
{
	FILE *f = payload;
	if (fwrite(line, 1, len, f) != len || fputc('\n', f) == EOF)
		return dura_error_set(DURA_EIO, "writing the export: %s", strerror(errno));
	return 0;
}

static const cli_opt export_opts[] = {
	{"workflow", 'w', "W", "only workflow W: its versions, schedules, runs and their events (no cache)"},
	{"since", 0, "T", "only runs created (and events written) at or after T: ms since the epoch, or an age (7d, 12h)"},
	{NULL, 0, NULL, NULL},
};

static int run_export(cli *c, const cli_args *a)
{
	dura_export_options o = DURA_EXPORT_OPTIONS_INIT;
	const char *v;
	int rc;
	o.workflow = cli_opt_get(a, "workflow");
	if ((v = cli_opt_get(a, "since")) && (rc = parse_since(c, v, &o.since)))
		return rc;
	if (cli_open(c))
		return CLI_ERROR;
	progress p;
	progress_init(&p, c, "exported");
	o.progress = progress_show;
	o.progress_payload = &p;
	dura_transfer_stats st;
	rc = dura_export(c->store, &o, write_line, stdout, &st);
	if (rc == 0 && fflush(stdout) != 0)
		rc = dura_error_set(DURA_EIO, "writing the export: %s", strerror(errno));
	report(c, &p, &st, rc);
	return rc ? cli_fail(rc) : CLI_OK;
}

const cli_command cli_cmd_export = {
	.name = "export",
	.summary = "write the store's runs, steps, checkpoints, signals, events, schedules and cache as JSON lines",
	.help = "Writes the store to stdout as JSON lines (docs/export.md): a header, the workflow versions,\n"
	        "the schedules, each run followed by its steps, checkpoints and signals, the outbox events,\n"
	        "the live cache entries (with their expiry), and an end line that counts the records. A run\n"
	        "is read whole, so a store in use exports each run as it was at one moment. The counts go to\n"
	        "stderr at the end, and on a terminal the progress too. 'dura import' reads the file.",
	.opts = export_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_export,
};

/* ---- dura import --------------------------------------------------------------------- */

static int import_stream(cli *c, dura_importer *im, FILE *in)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;
	while (rc == 0 && (n = getline(&line, &cap, in)) >= 0) {
		size_t len = (size_t)n;
		if (len && line[len - 1] == '\n')
			len--;
		rc = dura_import_line(im, line, len);
	}
	if (rc == 0 && ferror(in))
		rc = dura_error_set(DURA_EIO, "reading the import: %s", strerror(errno));
	free(line);
	(void)c;
	return rc ? rc : dura_import_finish(im);
}

static const cli_opt import_opts[] = {
	{"resume", 0, NULL, "continue an import that stopped: a record already there is skipped by its id, not compared"},
	{NULL, 0, NULL, NULL},
};

static int run_import(cli *c, const cli_args *a)
{
	if (cli_open(c))
		return CLI_ERROR;
	dura_import_options o = DURA_IMPORT_OPTIONS_INIT;
	progress p;
	progress_init(&p, c, "imported");
	o.resume = cli_flag(a, "resume");
	o.progress = progress_show;
	o.progress_payload = &p;
	dura_importer *im = NULL;
	int rc = dura_import_new(&im, c->store, &o);
	if (rc)
		return cli_fail(rc);
	rc = import_stream(c, im, stdin);
	dura_transfer_stats st;
	dura_import_stats(im, &st);
	report(c, &p, &st, rc);
	if (rc)
		rc = cli_fail(rc);
	dura_import_free(im);
	return rc;
}

const cli_command cli_cmd_import = {
	.name = "import",
	.summary = "read an export (JSON lines on stdin) into the store",
	.help = "Reads what 'dura export' wrote. A run goes in whole, in one transaction, once all its lines\n"
	        "are read: a file cut short or bad at some line is refused there (exit 1, the line number in\n"
	        "the message), and everything before that line is in the store whole, the run the line is\n"
	        "in not at all. Importing the same file again changes nothing (a record already there and\n"
	        "the same is skipped); a record that differs from the one there is refused. --resume\n"
	        "continues an import that stopped, skipping what is there by id. Cache entries keep their\n"
	        "expiry; one that expired on the way is left out.",
	.opts = import_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE_MIGRATE,
	.run = run_import,
};

/* ---- dura migrate -------------------------------------------------------------------- */

static int feed(const char *line, size_t len, void *payload)
{
	return dura_import_line(payload, line, len);
}

static const cli_opt migrate_opts[] = {
	{"from", 0, "URL", "the store to read (default: --store)"},
	{"to", 0, "URL", "the store to write (required; migrated first)"},
	{"workflow", 'w', "W", "only workflow W (as dura export --workflow)"},
	{"since", 0, "T", "only runs created at or after T (as dura export --since)"},
	{"resume", 0, NULL, "as dura import --resume"},
	{NULL, 0, NULL, NULL},
};

static int run_migrate(cli *c, const cli_args *a)
{
	const char *to = cli_opt_get(a, "to"), *from = cli_opt_get(a, "from"), *v;
	dura_export_options eo = DURA_EXPORT_OPTIONS_INIT;
	int rc;
	if (!to)
		return cli_usagef(c, "--to URL is required");
	eo.workflow = cli_opt_get(a, "workflow");
	if ((v = cli_opt_get(a, "since")) && (rc = parse_since(c, v, &eo.since)))
		return rc;
	if (from)
		c->url = from;
	if (cli_open(c))
		return CLI_ERROR;
	dura_store *dst = NULL;
	dura_store_options so = DURA_STORE_OPTIONS_INIT;
	so.auto_migrate = 1;
	if ((rc = dura_store_open(&dst, to, &so)) != 0)
		return cli_fail(rc);
	dura_import_options io = DURA_IMPORT_OPTIONS_INIT;
	progress p;
	progress_init(&p, c, "migrated");
	io.resume = cli_flag(a, "resume");
	io.progress = progress_show;
	io.progress_payload = &p;
	dura_importer *im = NULL;
	if ((rc = dura_import_new(&im, dst, &io)) == 0) {
		rc = dura_export(c->store, &eo, feed, im, NULL);
		if (rc == 0)
			rc = dura_import_finish(im);
	}
	dura_transfer_stats st;
	dura_import_stats(im, &st);
	report(c, &p, &st, rc);
	if (rc)
		rc = cli_fail(rc);
	dura_import_free(im);
	dura_store_close(dst);
	return rc;
}

const cli_command cli_cmd_migrate = {
	.name = "migrate",
	.summary = "move runs and everything else from one store to another in one streaming pass",
	.help = "dura export from --from (or --store) piped into dura import to --to, without a file: the\n"
	        "same records, the same guarantees (a run goes in whole; repeating it changes nothing).\n"
	        "Stop the workers of the old store first, or move by workflow, so that no run changes\n"
	        "after it was moved.",
	.opts = migrate_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_migrate,
};
