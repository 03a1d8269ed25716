/*
 * dialect.h - what tells one SQL store's SQL from another's, as data.
 *
 * The statement catalog (catalog.h) and each driver's own statements are
 * written once as templates; dura_sql_render() turns a template into the
 * text one store prepares, once, when the store opens. A template is SQL
 * with these tokens:
 *
 *   ?               a parameter, bound in the order it appears (rendered as
 *                   "?" or, for a numbered dialect, "$1", "$2", ...)
 *   ?:TYPE          the same, where the server cannot infer its type from
 *                   the context ("? IS NULL"): TYPE is text, int, time,
 *                   json or bytes, and a dialect that types its parameters
 *                   from the statement casts it ("$1::text")
 *   {p}             the table prefix (validated at open)
 *   {key}           the step cache's key column, a reserved word, quoted
 *   {upsert:COL}    the start of an upsert's update list on conflict with
 *                   the unique column COL: ON CONFLICT ("COL") DO UPDATE SET,
 *                   or ON DUPLICATE KEY UPDATE; a key of several columns
 *                   is {upsert:COL1,COL2} (no spaces)
 *   {new:COL}       in that list, the value the insert proposed for COL:
 *                   excluded.COL, or VALUES(COL)
 *   {lock}          a claim's row-locking clause (FOR UPDATE, with SKIP
 *                   LOCKED where the server and the store's options allow),
 *                   nothing where the store locks the whole database
 *   {time} {json}   in DDL, the column type of a time and of a JSON document
 *   {bigint}        the type a 64-bit integer is CAST to
 *
 * plus any {name} the driver passes in vars (MySQL's {coll}). Tokens are
 * rendered inside '...' string literals too ('{p}dura_schema'); a "?"
 * there is text, not a parameter. Anything else in braces (the literal
 * '{}' of an empty JSON object) is copied as it is.
 *
 * The dialect table names what the renderer does not: whether UPDATE ...
 * RETURNING exists, which a driver needs to choose its commit path. No
 * driver header here.
 */
#ifndef DURA_SQL_DIALECT_H
#define DURA_SQL_DIALECT_H

typedef enum dura_sql_placeholders {
	DURA_SQL_PARAMS_QMARK,   /* ?           (SQLite, MySQL) */
	DURA_SQL_PARAMS_NUMBERED /* $1, $2, ... (PostgreSQL) */
} dura_sql_placeholders;

typedef enum dura_sql_upsert {
	DURA_SQL_UPSERT_ON_CONFLICT,     /* INSERT ... ON CONFLICT (c) DO UPDATE SET x = excluded.x */
	DURA_SQL_UPSERT_ON_DUPLICATE_KEY /* INSERT ... ON DUPLICATE KEY UPDATE x = VALUES(x) */
} dura_sql_upsert;

typedef struct dura_sql_dialect {
	const char *name;       /* the store's name, as errors carry it */
	dura_sql_placeholders params; /* how a parameter is written */
	char quote;             /* the identifier quote: '"' or '`' */
	dura_sql_upsert upsert;
	int returning;          /* 1: UPDATE/INSERT ... RETURNING exists */
	const char *time_type;  /* {time} */
	const char *json_type;  /* {json} */
	const char *bigint;     /* {bigint}, and ?:int */
	const char *bytes_type; /* ?:bytes */
	const char *lock;       /* {lock}, when SKIP LOCKED is not to be used */
	const char *lock_skip;  /* {lock} with SKIP LOCKED; NULL: the dialect has none */
} dura_sql_dialect;

extern const dura_sql_dialect dura_sql_dialect_sqlite;
extern const dura_sql_dialect dura_sql_dialect_mysql;
extern const dura_sql_dialect dura_sql_dialect_postgres;

/*
 * Render tmpl for dialect d: prefix for {p}, the locking clause with SKIP
 * LOCKED when skip_locked is 1 (and the dialect has it), and vars, an
 * array of {"{name}", value} pairs ending with NULL (or NULL itself). A
 * new string to dura_free(), or NULL when out of memory.
 */
char *dura_sql_render(const dura_sql_dialect *d, const char *tmpl, const char *prefix, int skip_locked,
                      const char *const *vars);

#endif
