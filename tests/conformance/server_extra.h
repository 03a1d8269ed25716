/*
 * server_extra.h - helpers the server stores' own suites share
 * (tests/conformance/mysql_extra.c, pg_extra.c): unique names, URLs with
 * an option, the last error's text, raw SQL through dura_store_exec_sql,
 * and a run created and committed to in one call each.
 */
#ifndef DURA_TEST_SERVER_EXTRA_H
#define DURA_TEST_SERVER_EXTRA_H

#include <dura.h>
#include <dura/store.h>

#include <stddef.h>
#include <stdint.h>

void sleep_ms(int64_t ms);
void unique(char *out, size_t size, const char *base);
void url_with(char *out, size_t size, const char *url, const char *opt);
const char *last_message(void);
int message_has(const char *want);
long sql_rows(dura_store *s, const char *sql, char *first, size_t size);
long long sql_int(dura_store *s, const char *sql);
int need_env(const char *value, const char *name);
int create_run(dura_store *s, const char *wf, dura_record **out);
int commit(dura_store *s, const char *run_id, int64_t expect, const char *node, const char *state,
           unsigned flags, dura_commit_result *res);
int events_of(dura_store *s, const char *run_id);
long steps_of(dura_store *s, const char *run_id);
/* The forked-child test both server suites run, on app_url. */
void extra_forked_child(const char *app_url);

#endif
