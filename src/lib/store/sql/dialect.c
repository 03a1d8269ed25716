/*
 * dialect.c - the dialect table of the SQL stores, and the renderer that
 * turns a statement template into one store's SQL (dialect.h has the
 * template language). Rendering happens once per statement when a store
 * opens, so it favours being obviously right over being fast: one pass
 * into a growing buffer.
 */
#include "dialect.h"

#include "dura/store.h"

#include <stdio.h>
#include <string.h>

const dura_sql_dialect dura_sql_dialect_sqlite = {
	.name = "sqlite",
	.params = DURA_SQL_PARAMS_QMARK,
	.quote = '"',
	.upsert = DURA_SQL_UPSERT_ON_CONFLICT,
	.returning = 1, /* SQLite 3.35 */
	.time_type = "TEXT", /* 'YYYY-MM-DD HH:MM:SS.fff' in UTC: sorts as it compares */
	.json_type = "TEXT",
	.bigint = "INTEGER",
	.bytes_type = "BLOB",
	.lock = "", /* a write transaction holds the whole database */
	.lock_skip = NULL,
};

const dura_sql_dialect dura_sql_dialect_mysql = {
	.name = "mysql",
	.params = DURA_SQL_PARAMS_QMARK,
	.quote = '`',
	.upsert = DURA_SQL_UPSERT_ON_DUPLICATE_KEY,
	.returning = 0, /* MariaDB has DELETE/INSERT ... RETURNING, MySQL none: the store does without */
	.time_type = "DATETIME(3)",
	.json_type = "JSON",
	.bigint = "SIGNED",
	.bytes_type = "BLOB",
	.lock = "FOR UPDATE",
	.lock_skip = "FOR UPDATE SKIP LOCKED", /* MariaDB 10.6, MySQL 8.0 */
};

const dura_sql_dialect dura_sql_dialect_postgres = {
	.name = "postgres",
	.params = DURA_SQL_PARAMS_NUMBERED,
	.quote = '"',
	.upsert = DURA_SQL_UPSERT_ON_CONFLICT,
	.returning = 1,
	.time_type = "TIMESTAMPTZ(3)",
	.json_type = "JSONB",
	.bigint = "BIGINT",
	.bytes_type = "BYTEA",
	.lock = "FOR UPDATE",
	.lock_skip = "FOR UPDATE SKIP LOCKED",
};

typedef struct buf {
	char *p;
	size_t len, cap;
	int oom;
} buf;

static void put(buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (b->len + n + 1 > cap)
			cap *= 2;
		char *p = dura_realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void quoted(buf *b, const dura_sql_dialect *d, const char *name, size_t n)
{
	put(b, &d->quote, 1);
	put(b, name, n);
	put(b, &d->quote, 1);
}

/* The token at t ("{...}"), rendered into b: its length, or 0 when it is
 * no token of ours (and is copied as text). */
static size_t token(buf *b, const dura_sql_dialect *d, const char *t, const char *prefix, int skip_locked,
                    const char *const *vars)
{
	const char *end = strchr(t, '}');
	if (!end)
		return 0;
	size_t n = (size_t)(end - t) + 1;
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(t, lit, n) == 0)
#define STARTS(lit) (n > sizeof(lit) && memcmp(t, lit, sizeof(lit) - 1) == 0)
	if (IS("{p}")) {
		puts_(b, prefix);
	} else if (IS("{key}")) {
		quoted(b, d, "key", 3);
	} else if (IS("{lock}")) {
		puts_(b, skip_locked && d->lock_skip ? d->lock_skip : d->lock);
	} else if (IS("{time}")) {
		puts_(b, d->time_type);
	} else if (IS("{json}")) {
		puts_(b, d->json_type);
	} else if (IS("{bigint}")) {
		puts_(b, d->bigint);
	} else if (STARTS("{upsert:")) {
		const char *col = t + 8;
		size_t cn = n - 9;
		if (d->upsert == DURA_SQL_UPSERT_ON_DUPLICATE_KEY) {
			puts_(b, "ON DUPLICATE KEY UPDATE");
		} else {
			/* a key of several columns is named "{upsert:a,b}" */
			puts_(b, "ON CONFLICT (");
			for (size_t i = 0; i < cn;) {
				size_t k = i;
				while (k < cn && col[k] != ',')
					k++;
				if (i)
					puts_(b, ", ");
				quoted(b, d, col + i, k - i);
				i = k + 1;
			}
			puts_(b, ") DO UPDATE SET");
		}
	} else if (STARTS("{new:")) {
		const char *col = t + 5;
		size_t cn = n - 6;
		if (d->upsert == DURA_SQL_UPSERT_ON_DUPLICATE_KEY) {
			puts_(b, "VALUES(");
			put(b, col, cn);
			puts_(b, ")");
		} else {
			puts_(b, "excluded.");
			put(b, col, cn);
		}
	} else {
		for (const char *const *v = vars; v && v[0]; v += 2)
			if (strlen(v[0]) == n && memcmp(v[0], t, n) == 0) {
				puts_(b, v[1]);
				return n;
			}
		return 0;
	}
#undef IS
#undef STARTS
	return n;
}

/* the SQL type a "?:type" annotation names: text, int, time, json, bytes */
static const char *cast_type(const dura_sql_dialect *d, const char *t, size_t n)
{
	if (n == 3 && memcmp(t, "int", 3) == 0)
		return d->bigint;
	if (n == 4 && memcmp(t, "time", 4) == 0)
		return d->time_type;
	if (n == 4 && memcmp(t, "json", 4) == 0)
		return d->json_type;
	if (n == 5 && memcmp(t, "bytes", 5) == 0)
		return d->bytes_type;
	return "text";
}

char *dura_sql_render(const dura_sql_dialect *d, const char *tmpl, const char *prefix, int skip_locked,
                      const char *const *vars)
{
	buf b = {0};
	int param = 0, in_string = 0;
	put(&b, "", 0);
	for (const char *p = tmpl; *p;) {
		if (*p == '\'') {
			in_string = !in_string; /* '' inside a literal toggles twice */
		} else if (*p == '{') { /* tokens count in literals too: '{p}dura_schema' */
			size_t n = token(&b, d, p, prefix, skip_locked, vars);
			if (n) {
				p += n;
				continue;
			}
		} else if (!in_string && *p == '?' && !(p[1] >= '0' && p[1] <= '9')) {
			/* "?" or "?:type": a typed parameter is cast where the
			 * dialect needs to be told ("$1::text IS NULL") */
			const char *type = NULL;
			size_t tn = 0;
			p++;
			if (*p == ':' && p[1] >= 'a' && p[1] <= 'z') {
				type = ++p;
				while (*p >= 'a' && *p <= 'z')
					p++;
				tn = (size_t)(p - type);
			}
			if (d->params == DURA_SQL_PARAMS_NUMBERED) {
				char num[16];
				snprintf(num, sizeof(num), "$%d", ++param);
				puts_(&b, num);
				if (type) {
					puts_(&b, "::");
					puts_(&b, cast_type(d, type, tn));
				}
			} else {
				put(&b, "?", 1);
			}
			continue;
		}
		put(&b, p, 1);
		p++;
	}
	if (b.oom) {
		dura_free(b.p);
		return NULL;
	}
	return b.p;
}
