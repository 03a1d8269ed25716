/*
 * server_extra.c - the helpers of server_extra.h.
 */
#include "server_extra.h"

#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct first {
	int rows;
	char value[256];
};

void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

void unique(char *out, size_t size, const char *base)
{
	char id[DURA_UUID_LEN + 1];
	dura_uuid7(id);
	snprintf(out, size, "%s-%s", base, id);
}

/* url + "?opt" or "&opt" */
void url_with(char *out, size_t size, const char *url, const char *opt)
{
	int n = snprintf(out, size, "%s%s%s", url, strchr(url, '?') ? "&" : "?", opt);
	if (n < 0 || (size_t)n >= size)
		fprintf(stderr, "    URL too long\n");
}

const char *last_message(void)
{
	const dura_error *e = dura_error_last();
	return e && e->message ? e->message : "";
}

/* The message of the last error has `want` in it (printed when not). */
int message_has(const char *want)
{
	const char *m = last_message();
	if (strstr(m, want))
		return 1;
	fprintf(stderr, "    message \"%s\" lacks \"%s\"\n", m, want);
	return 0;
}

static int first_cb(int ncols, char **values, char **names, void *payload)
{
	struct first *f = payload;
	(void)names;
	if (f->rows++ == 0 && ncols > 0)
		snprintf(f->value, sizeof(f->value), "%s", values[0] ? values[0] : "NULL");
	return 0;
}

/* Run SQL; the number of rows (-1 on failure) and the first value. */
long sql_rows(dura_store *s, const char *sql, char *first, size_t size)
{
	struct first f;
	memset(&f, 0, sizeof(f));
	int rc = dura_store_exec_sql(s, sql, first_cb, &f);
	if (rc != 0) {
		fprintf(stderr, "    SQL failed (%d): %s\n      %s\n", rc, last_message(), sql);
		return -1;
	}
	if (first)
		snprintf(first, size, "%s", f.value);
	return f.rows;
}

long long sql_int(dura_store *s, const char *sql)
{
	char v[256] = "";
	if (sql_rows(s, sql, v, sizeof(v)) < 1)
		return -1;
	return strtoll(v, NULL, 10);
}

int need_env(const char *value, const char *name)
{
	if (value && *value)
		return 1;
	fprintf(stderr, "    %s is not set: start the servers with tests/servers start DIR\n", name);
	test__failed_now = 1;
	return 0;
}

int create_run(dura_store *s, const char *wf, dura_record **out)
{
	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = wf;
	req.state = "{\"n\":0}";
	return dura_store_create_run(s, &req, out);
}

int commit(dura_store *s, const char *run_id, int64_t expect, const char *node, const char *state,
                  unsigned flags, dura_commit_result *res)
{
	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = run_id;
	c.expect_version = expect;
	c.node_id = node;
	c.state = state;
	c.status = node;
	c.flags = flags;
	return dura_store_commit(s, &c, res);
}

/* Outbox events of a run (counted in SQL: the outbox of a shared test
 * database may hold more than one poll returns), then acknowledged. */
int events_of(dura_store *s, const char *run_id)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM workflow_outbox WHERE run_id = '%s'", run_id);
	int n = (int)sql_int(s, sql);
	snprintf(sql, sizeof(sql), "DELETE FROM workflow_outbox WHERE run_id = '%s'", run_id);
	dura_store_exec_sql(s, sql, NULL, NULL);
	return n;
}

long steps_of(dura_store *s, const char *run_id)
{
	dura_step_list l;
	memset(&l, 0, sizeof(l));
	if (dura_store_history(s, run_id, 0, 0, &l) != 0)
		return -1;
	long n = (long)l.count;
	for (size_t i = 0; i < l.count; i++)
		if (l.items[i].step != (int64_t)i)
			n = -2;
	dura_step_list_free(&l);
	return n;
}

/* A handle used in a forked child opens its own connections: the parent's
 * sessions go on undisturbed (a run committed by the child, then by the
 * parent, each step once). */
void extra_forked_child(const char *app_url)
{
	char url[1024];
	url_with(url, sizeof(url), app_url, "pool_max=2");
	dura_store *s = NULL;
	REQUIRE_RC(dura_store_open(&s, url, NULL), 0);
	char wf[96];
	unique(wf, sizeof(wf), "extra-fork");
	dura_record *r = NULL;
	REQUIRE_RC(create_run(s, wf, &r), 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		dura_commit_result res;
		int rc = commit(s, r->run_id, r->version, "child", "{\"by\":\"child\"}", DURA_COMMIT_NO_EVENT, &res);
		dura_store_close(s);
		_exit(rc == 0 && res.step == 0 ? 0 : 1);
	}
	REQUIRE(pid > 0);
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	dura_record *got = NULL;
	CHECK_RC(dura_store_get_run(s, r->run_id, &got), 0);
	if (got) {
		CHECK(got->version == r->version + 1);
		CHECK_STR(got->status, "child");
		dura_record_free(got);
	}
	dura_commit_result res;
	CHECK_RC(commit(s, r->run_id, r->version + 1, "parent", "{\"by\":\"parent\"}", DURA_COMMIT_NO_EVENT, &res), 0);
	CHECK(res.step == 1);
	CHECK(steps_of(s, r->run_id) == 2);
	dura_record_free(r);
	dura_store_close(s);
}
