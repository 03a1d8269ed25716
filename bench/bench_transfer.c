/*
 * bench_transfer.c - what moving a deployment costs: RUNS runs of STEPS
 * steps each in a SQLite file, exported (dura_export to a file) and
 * imported into the target store (dura_import), in records a second,
 * against in the same run:
 *   - the export: `sqlite3 FILE .dump` of the same database to /dev/null,
 *     SQLite's own way of writing its rows out;
 *   - the import into MySQL/MariaDB: the server's bulk load of the same
 *     rows, the `mariadb` client reading multi-row INSERTs (1000 rows a
 *     statement) of the runs and steps into tables of the same columns;
 *     into SQLite: `sqlite3 NEW .read` of the .dump.
 *
 * Usage: bench_transfer TMPDIR TARGET_URL [RUNS [STEPS]] (defaults 100000
 * and 10). Give the target a fresh database or ?prefix=. Not a test: it
 * prints figures and asserts nothing.
 */
#include "dura.h"
#include "dura/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	const dura_error *e = dura_error_last();
	fprintf(stderr, "bench_transfer: %s: %s\n", what, e && e->message ? e->message : "?");
	exit(1);
}

#define CHUNK 500

/* RUNS runs of STEPS steps, STEPS rounds of commit_batch over CHUNK runs. */
static void populate(const char *url, long runs, int steps)
{
	dura_store *s = NULL;
	if (dura_store_open(&s, url, NULL))
		die("opening the source");
	char (*ids)[DURA_UUID_LEN + 1] = malloc(CHUNK * sizeof(*ids));
	int64_t *vers = malloc(CHUNK * sizeof(*vers));
	dura_commit *cs = malloc(CHUNK * sizeof(*cs));
	dura_commit_result *res = malloc(CHUNK * sizeof(*res));
	for (long base = 0; base < runs; base += CHUNK) {
		size_t k = 0;
		for (; k < CHUNK && base + (long)k < runs; k++) {
			dura_run_create req = DURA_RUN_CREATE_INIT;
			req.workflow_name = "bench-move";
			req.status = "n0";
			dura_record *r = NULL;
			if (dura_store_create_run(s, &req, &r))
				die("creating runs");
			snprintf(ids[k], sizeof(ids[k]), "%s", r->run_id);
			vers[k] = r->version;
			dura_record_free(r);
		}
		for (int st = 0; st < steps; st++) {
			char node[16], next[16], state[64];
			snprintf(node, sizeof(node), "n%d", st);
			snprintf(next, sizeof(next), "n%d", st + 1);
			snprintf(state, sizeof(state), "{\"step\":%d,\"total\":%d,\"ok\":true}", st, st * 10);
			for (size_t j = 0; j < k; j++) {
				dura_commit c = DURA_COMMIT_INIT;
				c.run_id = ids[j];
				c.expect_version = vers[j];
				c.node_id = node;
				c.state = state;
				c.status = st + 1 == steps ? "" : next;
				c.run_state = st + 1 == steps ? DURA_RUN_COMPLETED : 0;
				c.flags = DURA_COMMIT_NO_EVENT;
				cs[j] = c;
			}
			if (dura_store_commit_batch(s, cs, k, res))
				die("committing steps");
			for (size_t j = 0; j < k; j++)
				vers[j] = res[j].new_version;
		}
	}
	free(ids);
	free(vers);
	free(cs);
	free(res);
	dura_store_close(s);
}

static int to_file(const char *line, size_t len, void *payload)
{
	FILE *f = payload;
	return fwrite(line, 1, len, f) == len && fputc('\n', f) != EOF ? 0 : DURA_EIO;
}

static double run_cmd(const char *cmd)
{
	double t0 = now_s();
	if (system(cmd) != 0) {
		fprintf(stderr, "bench_transfer: failed: %s\n", cmd);
		exit(1);
	}
	return now_s() - t0;
}

/* The runs and steps of the export as multi-row INSERTs into bench tables. */
static void bulk_sql(const char *jsonl, const char *sql_path, long *rows)
{
	FILE *in = fopen(jsonl, "r"), *out = fopen(sql_path, "w");
	if (!in || !out)
		exit(1);
	fprintf(out, "DROP TABLE IF EXISTS bulk_runs; DROP TABLE IF EXISTS bulk_steps;\n"
	             "CREATE TABLE bulk_runs (run_id VARCHAR(255) PRIMARY KEY, workflow_name VARCHAR(255), state JSON, "
	             "version BIGINT, step_no BIGINT, created_at BIGINT, updated_at BIGINT) ENGINE=InnoDB;\n"
	             "CREATE TABLE bulk_steps (run_id VARCHAR(255), step BIGINT, node_id VARCHAR(255), state JSON, "
	             "created_at BIGINT, PRIMARY KEY (run_id, step)) ENGINE=InnoDB;\nSET autocommit=0;\n");
	char *line = NULL;
	size_t cap = 0;
	int nr = 0, ns = 0;
	*rows = 0;
	while (getline(&line, &cap, in) > 0) {
		json_t *o = json_loads(line, 0, NULL);
		const char *k = json_string_value(json_object_get(o, "kind"));
		char *st = k ? json_dumps(json_object_get(o, "state"), JSON_COMPACT) : NULL;
		if (k && strcmp(k, "run") == 0) {
			if (ns) {
				fputs(";\n", out);
				ns = 0;
			}
			fprintf(out, "%s('%s','%s','%s',%lld,%lld,%lld,%lld)", nr ? "," : "INSERT INTO bulk_runs VALUES ",
			        json_string_value(json_object_get(o, "run_id")), json_string_value(json_object_get(o, "workflow_name")),
			        st, (long long)json_integer_value(json_object_get(o, "version")),
			        (long long)json_integer_value(json_object_get(o, "step_no")),
			        (long long)json_integer_value(json_object_get(o, "created_at")),
			        (long long)json_integer_value(json_object_get(o, "updated_at")));
			if (++nr == 1000) {
				fputs(";\n", out);
				nr = 0;
			}
			++*rows;
		} else if (k && strcmp(k, "step") == 0) {
			if (nr) {
				fputs(";\n", out);
				nr = 0;
			}
			fprintf(out, "%s('%s',%lld,'%s','%s',%lld)", ns ? "," : "INSERT INTO bulk_steps VALUES ",
			        json_string_value(json_object_get(o, "run_id")),
			        (long long)json_integer_value(json_object_get(o, "step")),
			        json_string_value(json_object_get(o, "node_id")), st,
			        (long long)json_integer_value(json_object_get(o, "created_at")));
			if (++ns == 1000) {
				fputs(";\n", out);
				ns = 0;
			}
			++*rows;
		} else if (ns) {
			fputs(";\n", out);
			ns = 0;
		}
		free(st);
		json_decref(o);
	}
	fprintf(out, "%sCOMMIT; DROP TABLE bulk_runs; DROP TABLE bulk_steps;\n", nr || ns ? ";\n" : "");
	free(line);
	fclose(in);
	fclose(out);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_transfer TMPDIR TARGET_URL [RUNS [STEPS]]\n");
		return 2;
	}
	const char *tmp = argv[1], *target = argv[2];
	long runs = argc > 3 ? atol(argv[3]) : 100000;
	int steps = argc > 4 ? atoi(argv[4]) : 10;
	char db[800], url[900], dump[900], file[900], cmd[4096];
	snprintf(db, sizeof(db), "%s/bench-transfer-src.db", tmp);
	snprintf(url, sizeof(url), "sqlite:%s?synchronous=off", db);
	snprintf(dump, sizeof(dump), "%s/bench-transfer.dump", tmp);
	snprintf(file, sizeof(file), "%s/bench-transfer.jsonl", tmp);
	unlink(db);
	double t0 = now_s();
	populate(url, runs, steps);
	printf("bench_transfer: %ld runs of %d steps in SQLite, made in %.1f s\n", runs, steps, now_s() - t0);

	/* export, and sqlite3 .dump of the same file */
	dura_store *src = NULL;
	if (dura_store_open(&src, url, NULL))
		die("opening the source");
	FILE *f = fopen(file, "w");
	dura_transfer_stats st;
	t0 = now_s();
	if (!f || dura_export(src, NULL, to_file, f, &st))
		die("exporting");
	fclose(f);
	double export_s = now_s() - t0;
	dura_store_close(src);
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' .dump > '%s'", db, dump);
	double dump_s = run_cmd(cmd);
	struct stat sb;
	stat(dump, &sb);
	printf("  export:        %8.0f records/s (%lld records, %.1f MB in %.2f s)\n", (double)st.lines / export_s,
	       (long long)st.lines, (double)st.bytes / 1e6, export_s);
	printf("  sqlite3 .dump: %8.0f records/s (%.1f MB in %.2f s) -> export takes %.2fx the time of .dump\n",
	       (double)st.lines / dump_s, (double)sb.st_size / 1e6, dump_s, export_s / dump_s);

	/* import into the target */
	dura_store *dst = NULL;
	if (dura_store_open(&dst, target, NULL))
		die("opening the target");
	dura_importer *im = NULL;
	if (dura_import_new(&im, dst, NULL))
		die("importing");
	FILE *in = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	t0 = now_s();
	while ((n = getline(&line, &cap, in)) > 0)
		if (dura_import_line(im, line, (size_t)n - (line[n - 1] == '\n')))
			die("importing");
	if (dura_import_finish(im))
		die("importing");
	double import_s = now_s() - t0;
	fclose(in);
	free(line);
	dura_import_free(im);
	dura_store_close(dst);
	printf("  import into %.*s: %8.0f records/s (%.2f s)\n", (int)strcspn(target, ":"), target,
	       (double)st.lines / import_s, import_s);

	/* the baseline of the target: its own bulk load of the same rows */
	dura_url *u = NULL;
	if (dura_url_parse(&u, target))
		die("parsing the target URL");
	if (strcmp(u->scheme, "mysql") == 0) {
		char sql[900];
		long rows = 0;
		snprintf(sql, sizeof(sql), "%s/bench-transfer.sql", tmp);
		bulk_sql(file, sql, &rows);
		setenv("MYSQL_PWD", u->password, 1); /* not on the command line */
		snprintf(cmd, sizeof(cmd), "mariadb -h '%s' -P %d -u '%s' '%s' < '%s'", *u->host ? u->host : "127.0.0.1",
		         u->port ? u->port : 3306, u->user, u->database, sql);
		double bulk_s = run_cmd(cmd);
		printf("  mariadb bulk load of the %ld run and step rows (multi-row INSERTs): %8.0f rows/s (%.2f s) -> import "
		       "takes %.2fx the time\n",
		       rows, (double)rows / bulk_s, bulk_s, import_s / bulk_s);
		unlink(sql);
	} else if (strcmp(u->scheme, "sqlite") == 0) {
		char fresh[900];
		snprintf(fresh, sizeof(fresh), "%s/bench-transfer-read.db", tmp);
		unlink(fresh);
		snprintf(cmd, sizeof(cmd), "sqlite3 '%s' '.read %s'", fresh, dump);
		double read_s = run_cmd(cmd);
		printf("  sqlite3 .read of the .dump: %.2f s -> import takes %.2fx the time\n", read_s, import_s / read_s);
		unlink(fresh);
	}
	dura_url_free(u);
	unlink(dump);
	unlink(file);
	return 0;
}
