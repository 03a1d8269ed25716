/*
 * schema.h - dura_schema and the migration runner the SQL stores share.
 *
 * Every SQL store keeps <prefix>dura_schema (version, applied_at,
 * description), one row per migration applied, and numbers its
 * migrations from 1. What is the same everywhere is here: reading the
 * recorded version and refusing one this library does not know, refusing
 * to write to an older schema unless the caller asked for migration, and
 * running the missing migrations in order, each recorded once its
 * statements went through, serialised across processes. What is a
 * driver's own (the DDL, how to read the version, how to serialise: a
 * transaction in SQLite and PostgreSQL, GET_LOCK in MySQL whose DDL is not
 * transactional, how a refused privilege is worded) comes in through
 * dura_sql_schema's callbacks. No driver header here.
 */
#ifndef DURA_SQL_SCHEMA_H
#define DURA_SQL_SCHEMA_H

typedef struct dura_sql_migration {
	const char *description;     /* recorded in dura_schema */
	const char *const *sql;      /* templates run in order; NULL-terminated */
	const char *const *optional; /* may be refused for want of a privilege; NULL or NULL-terminated */
} dura_sql_migration;

typedef struct dura_sql_schema {
	const char *store;                     /* the store's name in errors */
	const char *where;                     /* the database in messages: "database 'x'", a file's path */
	const char *prefix;                    /* the table prefix, for messages */
	const char *table;                     /* the template creating dura_schema IF NOT EXISTS */
	const dura_sql_migration *migrations;  /* migrations[i] takes the schema from i to i + 1 */
	int version;                           /* how many: the schema this library writes */
	int transactional;                     /* 1: a failed run undoes every migration it applied */
	void *drv;                             /* the driver's connection, passed to each callback */

	/* the version dura_schema records; 0 when the table is absent */
	int (*read_version)(void *drv, int *out);
	/* serialise migrators before reading the version again; 0 or an error */
	int (*lock)(void *drv);
	/* undo lock(): commit (ok 1) or roll back (ok 0); the runner keeps
	 * the thread's error across it when ok is 0 */
	int (*unlock)(void *drv, int ok);
	/* Run template tmpl (render it first) as part of migration `version`
	 * (0: creating dura_schema itself).
	 * optional 1: a refusal for want of a privilege returns 1 and sets no
	 * error (the runner records the migration as partly skipped). */
	int (*exec)(void *drv, const char *tmpl, int version, int optional);
	/* record migration `version` as applied, with description */
	int (*record)(void *drv, int version, const char *description);
} dura_sql_schema;

/*
 * Before a store writes anything: the recorded version in *version, or an
 * error when it is newer than sc->version (DURA_EVERSION), or older and
 * auto_migrate is 0 (DURA_ENOTFOUND for no tables, DURA_EVERSION for an
 * older schema, both saying to run `dura init`).
 */
int dura_sql_schema_check(const dura_sql_schema *sc, int auto_migrate, int *version);

/* Apply the migrations the database lacks: *from the version found,
 * *to the version reached (with transactional 0 also after a failure). */
int dura_sql_schema_migrate(const dura_sql_schema *sc, int *from, int *to);

#endif
