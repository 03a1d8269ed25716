/*
 * fuzz_state.c - JSON state, metadata and event data through
 * dura_store_create_run and dura_store_commit.
 *
 * The input is cut at its NUL bytes into up to eight strings:
 *
 *   0 initial state   1 state of the commit   2 event data ("" or absent: the summary)
 *   3 status          4 node id ("": "node")  5 event type (absent: "step")
 *   6 run metadata    7 error text
 *
 * A run is created with them and one step committed; then the run, its
 * step and its outbox event are read back and must hold what went in (as
 * JSON values). Invalid JSON and over-long ids must be DURA_EINVAL and
 * write nothing. A stale version must be DURA_ECONFLICT.
 *
 * The store is opened once and replaced every RESET_EVERY inputs, so it
 * stays small. Built twice: on memory: (fuzz_state) and, with
 * FUZZ_STATE_SQLITE, on a SQLite file in a temporary directory
 * (fuzz_state_sqlite).
 */
#include "fuzz.h"

#include <jansson.h>
#include <unistd.h>

#define RESET_EVERY 1000

static dura_store *store;
static unsigned uses;
#ifdef FUZZ_STATE_SQLITE
static char dir[512], db[600], url[700];

static void remove_db(void)
{
	static const char *const ends[] = {"", "-wal", "-shm", "-journal"};
	char path[640];
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", db, ends[i]);
		unlink(path);
	}
}

static void cleanup(void)
{
	dura_store_close(store);
	store = NULL;
	remove_db();
	rmdir(dir);
}
#endif

static dura_store *get_store(void)
{
	if (store && ++uses < RESET_EVERY)
		return store;
	dura_store_close(store);
	store = NULL;
	uses = 0;
#ifdef FUZZ_STATE_SQLITE
	if (!dir[0]) {
		const char *tmp = getenv("TMPDIR");
		int n = snprintf(dir, sizeof(dir), "%s/dura-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		FUZZ_CHECK(n > 0 && (size_t)n < sizeof(dir));
		FUZZ_CHECK(mkdtemp(dir) != NULL);
		snprintf(db, sizeof(db), "%s/state.db", dir);
		snprintf(url, sizeof(url), "sqlite:%s?synchronous=off", db);
		atexit(cleanup);
	}
	remove_db();
	FUZZ_CHECK(dura_store_open(&store, url, NULL) == DURA_OK);
#else
	FUZZ_CHECK(dura_store_open(&store, "memory:", NULL) == DURA_OK);
#endif
	return store;
}

/* What the library accepts as JSON text. */
static int json_ok(const char *text)
{
	json_t *j = text ? json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL) : NULL;
	json_decref(j);
	return j != NULL;
}

static int id_ok(const char *id) /* required: non-empty, at most DURA_MAX_ID_LEN bytes */
{
	return id && *id && strlen(id) <= DURA_MAX_ID_LEN;
}

static int opt_id_ok(const char *id)
{
	return !id || !*id || strlen(id) <= DURA_MAX_ID_LEN;
}

static int utf8_ok(const char *s)
{
	json_t *j = json_string(s ? s : "");
	json_decref(j);
	return j != NULL;
}

/* The stored text and the given text are the same JSON value. */
static void check_same_json(const char *stored, const char *given)
{
	FUZZ_CHECK(stored != NULL);
	json_t *a = json_loads(stored, JSON_DECODE_ANY, NULL);
	json_t *b = json_loads(given, JSON_DECODE_ANY, NULL);
	FUZZ_CHECK(a != NULL && b != NULL);
	FUZZ_CHECK(json_equal(a, b));
	json_decref(a);
	json_decref(b);
}

static void check_str(const char *got, const char *want)
{
	FUZZ_CHECK(got != NULL);
	FUZZ_CHECK(strcmp(got, want ? want : "") == 0);
}

/* The default event data names the run, step, node, status and run state. */
static void check_summary(const char *data, const char *run_id, const char *node, const char *status)
{
	json_t *j = json_loads(data, 0, NULL);
	FUZZ_CHECK(j != NULL && json_is_object(j));
	FUZZ_CHECK(json_is_string(json_object_get(j, "run_id")) &&
	           strcmp(json_string_value(json_object_get(j, "run_id")), run_id) == 0);
	FUZZ_CHECK(json_is_string(json_object_get(j, "node_id")) &&
	           strcmp(json_string_value(json_object_get(j, "node_id")), node) == 0);
	FUZZ_CHECK(json_is_string(json_object_get(j, "status")) &&
	           strcmp(json_string_value(json_object_get(j, "status")), status ? status : "") == 0);
	FUZZ_CHECK(json_integer_value(json_object_get(j, "step")) == 0);
	FUZZ_CHECK(json_is_integer(json_object_get(j, "run_state")));
	json_decref(j);
}

/* Ack every pending event, so the outbox does not grow. */
static void drain_outbox(dura_store *s)
{
	dura_event_list evs;
	for (;;) {
		FUZZ_CHECK(dura_store_outbox_poll(s, 100, &evs) == DURA_OK);
		size_t n = evs.count;
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(dura_store_outbox_ack(s, evs.items[i].id) == DURA_OK);
		dura_event_list_free(&evs);
		if (n == 0)
			return;
	}
}

static void commit_and_check(dura_store *s, const dura_record *rec, const char *const *part)
{
	const char *state = part[1] ? part[1] : part[0];
	const char *data = part[2] && *part[2] ? part[2] : NULL;
	const char *status = part[3];
	const char *node = part[4] && *part[4] ? part[4] : "node";
	const char *type = part[5];

	dura_commit c = DURA_COMMIT_INIT;
	c.run_id = rec->run_id;
	c.expect_version = rec->version;
	c.node_id = node;
	c.state = state;
	c.status = status;
	c.error = part[7];
	c.event_type = type;
	c.event_data = data;
	dura_commit_result res;
	int rc = dura_store_commit(s, &c, &res);
	fuzz_check_rc(rc);
	int valid = json_ok(state) && id_ok(node) && opt_id_ok(status) && (!type || id_ok(type)) && (!data || json_ok(data));
	if (!valid) {
		FUZZ_CHECK(rc == DURA_EINVAL);
	} else if (rc == DURA_EINVAL) {
		/* the default event data is JSON: its strings must be UTF-8 */
		FUZZ_CHECK(!data && !(utf8_ok(node) && utf8_ok(status)));
	} else {
		FUZZ_CHECK(rc == DURA_OK);
	}

	dura_record *now = NULL;
	FUZZ_CHECK(dura_store_get_run(s, rec->run_id, &now) == DURA_OK);
	if (rc != DURA_OK) {
		/* nothing was written */
		FUZZ_CHECK(now->version == rec->version && now->step_no == rec->step_no);
		FUZZ_CHECK(strcmp(now->state, rec->state) == 0);
		dura_record_free(now);
		return;
	}
	FUZZ_CHECK(res.code == 0 && res.step == 0 && res.new_version > rec->version);
	FUZZ_CHECK(now->version == res.new_version && now->step_no == 1);
	check_same_json(now->state, state);
	check_str(now->status, status);
	check_str(now->error, part[7]);

	dura_step *st = NULL;
	FUZZ_CHECK(dura_store_get_step(s, rec->run_id, 0, &st) == DURA_OK);
	check_same_json(st->state, state);
	check_str(st->node_id, node);
	dura_step_free(st);

	dura_event_list evs;
	FUZZ_CHECK(dura_store_outbox_poll(s, 100, &evs) == DURA_OK);
	FUZZ_CHECK(evs.count == 1);
	check_str(evs.items[0].run_id, rec->run_id);
	check_str(evs.items[0].type, type ? type : "step");
	if (data)
		check_same_json(evs.items[0].data, data);
	else
		check_summary(evs.items[0].data, rec->run_id, node, status);
	dura_event_list_free(&evs);

	/* the old version is stale now */
	rc = dura_store_commit(s, &c, NULL);
	FUZZ_CHECK(rc == DURA_ECONFLICT);

	/* a record-only commit back to the initial state */
	c.expect_version = now->version;
	c.state = part[0] ? part[0] : "{}";
	c.flags = DURA_COMMIT_NO_STEP | DURA_COMMIT_NO_EVENT;
	c.event_data = NULL;
	c.event_type = NULL;
	FUZZ_CHECK(dura_store_commit(s, &c, &res) == DURA_OK);
	FUZZ_CHECK(res.step == -1);
	dura_record *back = NULL;
	FUZZ_CHECK(dura_store_get_run(s, rec->run_id, &back) == DURA_OK);
	FUZZ_CHECK(back->step_no == 1 && back->version == res.new_version);
	check_same_json(back->state, c.state);
	dura_record_free(back);
	dura_record_free(now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dura_store *s = get_store();
	fuzz_parts p;
	fuzz_split(&p, data, size, 8);
	const char *meta = p.part[6];

	dura_run_create req = DURA_RUN_CREATE_INIT;
	req.workflow_name = "fuzz";
	req.state = p.part[0];
	req.status = p.part[3];
	req.meta = meta;
	dura_record *rec = NULL;
	int rc = dura_store_create_run(s, &req, &rec);
	fuzz_check_rc(rc);
	int valid = (!p.part[0] || json_ok(p.part[0])) && opt_id_ok(p.part[3]) && (!meta || !*meta || json_ok(meta));
	if (!valid) {
		FUZZ_CHECK(rc == DURA_EINVAL && rec == NULL);
	} else {
		FUZZ_CHECK(rc == DURA_OK && rec != NULL);
		check_same_json(rec->state, p.part[0] ? p.part[0] : "{}");
		check_str(rec->status, p.part[3]);
		if (meta && *meta)
			check_same_json(rec->meta, meta);
		FUZZ_CHECK(rec->step_no == 0 && rec->run_state == DURA_RUN_RUNNING);
		dura_record *again = NULL;
		FUZZ_CHECK(dura_store_get_run(s, rec->run_id, &again) == DURA_OK);
		FUZZ_CHECK(strcmp(again->state, rec->state) == 0 && again->version == rec->version);
		dura_record_free(again);
		commit_and_check(s, rec, p.part);
		dura_record_free(rec);
	}
	drain_outbox(s);
	fuzz_parts_free(&p);
	return 0;
}
