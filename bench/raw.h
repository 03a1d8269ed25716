/*
 * raw.h - the baselines the benchmarks measure dura against: the raw
 * sqlite3 driver doing the same transaction as a dura commit, and one
 * INSERT in its own transaction, with prepared statements.
 */
#ifndef DURA_BENCH_RAW_H
#define DURA_BENCH_RAW_H

#include "dura.h"

#include <sqlite3.h>

typedef struct raw {
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *upd, *step, *outbox, *ins;
	int64_t version, step_no;
	char run_id[DURA_UUID_LEN + 1];
} raw;

extern const char BENCH_STATE[];

double now_us(void);
/* p-th percentile (0..1) of v; sorts v */
double pct(double *v, int n, double p);
void die(const char *what);
/* Make a file with dura's schema, one run, and a plain raw_steps table,
 * and open it for the raw baselines (journal WAL, the given synchronous). */
void raw_setup(raw *r, const char *path, const char *sync);
void raw_close(raw *r);
/* dura's commit transaction by hand */
void raw_tx(raw *r);
/* one INSERT of a step row in its own transaction */
void raw_insert(raw *r, int64_t i);
/* remove a database file and its -wal and -shm */
void remove_db(const char *path);

#endif
