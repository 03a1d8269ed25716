/*
 * raw.h - the baselines the benchmarks measure dura against: the raw
 * sqlite3 driver doing the same transaction as a dura commit, and one
 * INSERT in its own transaction, with prepared statements; and the
 * scaffolding every benchmark shares (errors, the dura side's runs and
 * commits, interleaved latency, rounds of threads, medians). No driver but
 * sqlite3 here: this file is linked into every benchmark.
 */
#ifndef DURA_BENCH_RAW_H
#define DURA_BENCH_RAW_H

#include "dura.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>

typedef struct raw {
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *upd, *step, *outbox, *ins;
	int64_t version, step_no;
	char run_id[DURA_UUID_LEN + 1];
} raw;

extern const char BENCH_STATE[];

/* the program's name for error messages (default "bench_commit") */
extern const char *bench_name;

double now_us(void);
/* this process's CPU time (user + system), us */
double cpu_us(void);
/* p-th percentile (0..1) of v; sorts v */
double pct(double *v, int n, double p);
/* the median of v, v left as it is */
double median(const double *v, int n);
/* "bench_name: what: dura's last error", exit 1 */
void die(const char *what) __attribute__((noreturn));
/* "bench_name: " and the formatted message, exit 1 */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* n doubles, zeroed, or fail */
double *samples_alloc(int n);

/* url with name=value added (? or &) unless it already names name=;
 * returns whether it was added */
int url_option(char *out, size_t size, const char *url, const char *name, const char *value);
/* open the dura store at url and read its info, or die */
dura_store *bench_store_open(const char *url, dura_store_info *info);

/* ---- the dura side ---- */

/* a run in workflow "bench" at node "node" with the given state */
void make_run(dura_store *s, const char *state, char run_id[DURA_UUID_LEN + 1], int64_t *version);

typedef struct drun {
	dura_store *s;
	const char *state; /* what each commit writes; NULL: BENCH_STATE */
	char run_id[DURA_UUID_LEN + 1];
	int64_t version;
} drun;

/* d's run created with d->state */
void drun_make(drun *d, dura_store *s, const char *state);
/* one dura_store_commit() to node "next" at d's version (arg: a drun) */
void commit_dura(void *arg);

typedef struct dcache {
	dura_store *s;
	const char *key;  /* as the caller gives it (dura_cache_do_store) */
	const char *full; /* its scoped form, for dura_store_cache_get */
} dcache;

/* one dura_store_cache_get() of d->full that must hit (arg: a dcache) */
void dura_cache_hit(void *arg);

/* ---- measuring ---- */

typedef void (*bench_op)(void *arg);

typedef struct bench_variant {
	bench_op op;
	void *arg;
	double *v; /* samples in us, filled */
} bench_variant;

/* Interleaved latency: warm rounds, then samples rounds, each round running
 * every variant once, the order rotating (round r runs variant (r + k) % n
 * k-th), so machine noise hits all alike; vs[k].v[i] is sample i of
 * variant k. Returns the wall time of it all, us. */
double interleave(bench_variant *vs, int n, int warm, int samples);

/* "  NAME  p50 X us   p99 Y us", NAME padded to width, the figures to
 * num_width; the p50 and p99 of v (sorted) to *p50 and *p99 */
void latency_line(const char *name, int width, int num_width, double *v, int n, double *p50, double *p99);

/* The head of a thread's struct for run_threads(). */
typedef struct bench_thread {
	pthread_t th;
	pthread_barrier_t *go;
	int mode, n; /* what to do, how many times */
} bench_thread;

/* a thread's start: before this, what is not to be timed */
void thread_ready(bench_thread *t);
/* One round of nth threads, fn(&workers[i]) each with the given mode and n
 * (workers: an array of structs of the given size, each starting with a
 * bench_thread), timed from when all are ready (thread_ready) until all
 * have ended; nth * n ops per second. */
double run_threads(void *workers, size_t size, int nth, void *(*fn)(void *), int mode, int n);
/* Rounds of run_threads() in modes 0 .. nmodes - 1: one warm-up round,
 * then rounds counted ones, the order rotating (round r runs mode
 * (r + 1 + k) % nmodes k-th); rates[m * rounds + r] of the counted rounds,
 * and, if cpu is not NULL, cpu[m] += this process's CPU time (us) in mode
 * m's counted rounds. Returns the wall time of it all, us. */
double thread_rounds(void *workers, size_t size, int nth, void *(*fn)(void *), int nmodes, int n, int rounds,
                     double *rates, double *cpu);
/* " %.0f" for each of v */
void print_rates(const double *v, int n);
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
