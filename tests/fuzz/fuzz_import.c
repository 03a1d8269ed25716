/*
 * fuzz_import.c - import files (docs/export.md) through dura_import_line
 * and dura_import_finish, on the memory store.
 *
 * The input is a file: cut at its newlines, each line goes to the
 * importer. A failure must name its line ("line N: ..." with N from 1 to
 * one past the last line, and stats.line the same N), and every run the
 * store then holds must be whole - as many steps as its step_no, or none
 * - because a run is written in one go once all of its lines were read.
 * When the import succeeds, what the store exports must import again into
 * another store without a failure: what an import wrote is always a valid
 * export.
 *
 * The store is replaced every RESET_EVERY inputs, so it stays small.
 */
#include "fuzz.h"

#include <dura/store.h>

#define RESET_EVERY 200

static dura_store *store;
static unsigned uses;

static int feed(const char *line, size_t len, void *payload)
{
	return dura_import_line(payload, line, len);
}

/* Every run is whole: all its steps, or none. */
static void check_whole(dura_store *s)
{
	dura_run_filter f = DURA_RUN_FILTER_INIT;
	f.limit = 10000;
	dura_record_list l;
	FUZZ_CHECK(dura_store_list_runs(s, &f, &l) == 0);
	for (size_t i = 0; i < l.count; i++) {
		dura_step_list h;
		FUZZ_CHECK(dura_store_history(s, l.items[i].run_id, 0, 0, &h) == 0);
		FUZZ_CHECK(h.count == 0 || (int64_t)h.count == l.items[i].step_no);
		dura_step_list_free(&h);
	}
	dura_record_list_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!store || ++uses % RESET_EVERY == 0) {
		dura_store_close(store);
		store = NULL;
		if (dura_store_open(&store, "memory:", NULL) != 0)
			abort();
	}
	dura_importer *im = NULL;
	FUZZ_CHECK(dura_import_new(&im, store, NULL) == 0);
	const char *p = (const char *)data, *end = p + size;
	int rc = 0;
	int64_t lines = 0;
	while (rc == 0 && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		lines++;
		rc = dura_import_line(im, p, len);
		p += len + (nl != NULL);
	}
	if (rc == 0)
		rc = dura_import_finish(im);
	fuzz_check_rc(rc);
	dura_transfer_stats st;
	dura_import_stats(im, &st);
	dura_import_free(im);
	if (rc) {
		char want[40];
		FUZZ_CHECK(st.line >= 1 && st.line <= lines + 1);
		snprintf(want, sizeof(want), "line %lld: ", (long long)st.line);
		FUZZ_CHECK(strncmp(dura_error_last()->message, want, strlen(want)) == 0);
	}
	check_whole(store);
	if (rc == 0) {
		/* what went in comes out as an export that imports again */
		dura_store *again = NULL;
		FUZZ_CHECK(dura_store_open(&again, "memory:", NULL) == 0);
		FUZZ_CHECK(dura_import_new(&im, again, NULL) == 0);
		int erc = dura_export(store, NULL, feed, im, NULL);
		if (erc == 0)
			erc = dura_import_finish(im);
		if (erc)
			fprintf(stderr, "re-import: %s\n", dura_error_last()->message);
		FUZZ_CHECK(erc == 0);
		dura_import_free(im);
		dura_store_close(again);
	}
	return 0;
}
