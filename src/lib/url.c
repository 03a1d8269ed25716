/*
 * url.c - store URLs.
 *
 *   memory:
 *   sqlite:PATH[?opts]            (sqlite://PATH too)
 *   postgres://user:pass@host:port/db?opts   (postgresql:// too)
 *   mysql://user:pass@host:port/db?opts      (mariadb:// too)
 *   user:pass@tcp(host:port)/db?opts          the Go MySQL driver's DSN
 *   user:pass@unix(/path/to/sock)/db?opts
 *   redis://[user][:pass]@host:port/N?opts    (rediss:// for TLS)
 *   other:... / other://...                    a store registered from outside
 *
 * Hierarchical URLs are parsed by libcurl's URL API; the two forms it does
 * not know (scheme:path and the Go DSN) are split here. The password is
 * kept for the store and registered as a secret so no message shows it;
 * `redacted` is the form to print.
 */
#include "internal.h"
#include "util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct url_impl {
	dura_url pub;
	char *strings[20]; /* everything owned, freed at the end */
	int nstrings;
	char **names;
	char **values;
	int oom; /* an allocation failed on the way */
	ptrdiff_t query_at; /* where the query's '?' is in pub.redacted; 0: its first '?' */
} url_impl;

/* Every string kept in u is allocated just before: NULL means out of memory. */
static const char *keep(url_impl *u, char *s)
{
	if (!s) {
		u->oom = 1;
		return "";
	}
	if (u->nstrings == (int)(sizeof(u->strings) / sizeof(u->strings[0]))) {
		dura_free(s);
		return "";
	}
	u->strings[u->nstrings++] = s;
	return s;
}

void dura_url_free(dura_url *pub)
{
	url_impl *u = (url_impl *)pub;
	if (!u)
		return;
	for (int i = 0; i < u->nstrings; i++)
		dura_free(u->strings[i]);
	for (size_t i = 0; i < u->pub.nparams; i++) {
		dura_free(u->names[i]);
		dura_free(u->values[i]);
	}
	dura_free(u->names);
	dura_free(u->values);
	dura_free(u);
}

const char *dura_url_param(const dura_url *url, const char *name)
{
	if (!url || !name)
		return NULL;
	for (size_t i = 0; i < url->nparams; i++)
		if (strcmp(url->param_names[i], name) == 0)
			return url->param_values[i];
	return NULL;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode n bytes of s into a new string ('+' stays '+'). */
static char *pct_decode(const char *s, size_t n)
{
	char *d = dura_malloc(n + 1), *o = d;
	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return d;
}

static int parse_query(url_impl *u, const char *q)
{
	size_t cap = 0;
	if (!q || !*q)
		return 0;
	for (const char *p = q; *p; p++)
		if (*p == '&')
			cap++;
	cap++;
	u->names = dura_calloc(cap, sizeof(char *));
	u->values = dura_calloc(cap, sizeof(char *));
	if (!u->names || !u->values)
		return dura_error_oom("");
	const char *p = q;
	while (*p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len) {
			const char *eq = memchr(p, '=', len);
			size_t nlen = eq ? (size_t)(eq - p) : len;
			char *name = pct_decode(p, nlen);
			char *val = eq ? pct_decode(eq + 1, len - nlen - 1) : dura_strdup("");
			if (!name || !val) {
				dura_free(name);
				dura_free(val);
				return dura_error_oom("");
			}
			if (!*name) {
				dura_free(name);
				dura_free(val);
				return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "URL query has a parameter without a name");
			}
			for (size_t i = 0; i < u->pub.nparams; i++) {
				if (strcmp(u->names[i], name) == 0) {
					int rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "URL option %.40s is given twice", name);
					dura_free(name);
					dura_free(val);
					return rc;
				}
			}
			u->names[u->pub.nparams] = name;
			u->values[u->pub.nparams] = val;
			u->pub.nparams++;
		}
		if (!amp)
			break;
		p = amp + 1;
	}
	u->pub.param_names = (const char *const *)u->names;
	u->pub.param_values = (const char *const *)u->values;
	return 0;
}

int dura__parse_duration(int64_t *out, const char *store, const char *name, const char *v, int64_t bare_unit_ms)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (end == v || errno || !(x >= 0 && x <= 9.0e15)) /* NaN fails too */
		goto bad;
	int64_t unit = bare_unit_ms;
	if (*end) {
		if (strcmp(end, "ms") == 0)
			unit = 1;
		else if (strcmp(end, "s") == 0)
			unit = 1000;
		else if (strcmp(end, "m") == 0)
			unit = 60000;
		else if (strcmp(end, "h") == 0)
			unit = 3600000;
		else
			goto bad;
	}
	if (!(x * (double)unit <= 9.0e15))
		goto bad;
	*out = (int64_t)(x * (double)unit);
	return 0;
bad:
	return dura_error_set_native(DURA_EINVAL, store, 0, NULL,
	                             "URL option %s='%.40s' is not a duration (like 500ms, 5s, 2m)", name, v);
}

static int parse_duration(int64_t *out, const char *name, const char *v, int64_t bare_unit_ms)
{
	return dura__parse_duration(out, "", name, v, bare_unit_ms);
}

static int parse_int(int *out, const char *name, const char *v, int min, int max)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (end == v || *end || errno || x < min || x > max)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "URL option %s='%.40s' must be a whole number from %d to %d",
		                             name, v, min, max);
	*out = (int)x;
	return 0;
}

int dura_store_prefix_valid(const char *s)
{
	if (!s)
		return 1;
	size_t n = strlen(s);
	if (n > 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':' ))
			return 0;
	return 1;
}

/*
 * The schemes dura knows, and what each asks of its URL (curl's handler
 * table, in small): the form, and the rules checked after parsing. A
 * scheme not in the table is still parsed - scheme://... by libcurl,
 * scheme:rest as a path - so that a store registered from outside
 * (dura_store_register) gets its URL; whether any store serves the scheme
 * is the registry's call at open.
 */
enum {
	U_PATH = 1 << 0,       /* scheme:PATH?query (else scheme://authority/path?query) */
	U_NEED_PATH = 1 << 1,  /* the path is required (a file) */
	U_NO_PATH = 1 << 2,    /* no path allowed */
	U_NEED_HOST = 1 << 3,  /* a host (or ?host=) is required */
	U_DB_NUMBER = 1 << 4,  /* the path is a database number */
	U_TLS = 1 << 5,        /* the scheme itself asks for TLS */
	U_COLON_PREFIX = 1 << 6, /* ':' allowed in ?prefix= (key prefixes) */
	U_DIAL_TIMEOUT = 1 << 7, /* ?timeout= is also the connect timeout (the Go DSN's) */
};

typedef struct scheme_rule {
	const char *name, *canon;
	unsigned flags;
	const char *example; /* for messages */
} scheme_rule;

static const scheme_rule schemes[] = {
	{"memory", "memory", U_PATH | U_NO_PATH, "memory:"},
	{"sqlite", "sqlite", U_PATH | U_NEED_PATH, "sqlite:dura.db"},
	{"sqlite3", "sqlite", U_PATH | U_NEED_PATH, "sqlite:dura.db"},
	{"postgres", "postgres", U_NEED_HOST, "postgres://host/db"},
	{"postgresql", "postgres", U_NEED_HOST, "postgres://host/db"},
	{"mysql", "mysql", U_NEED_HOST | U_DIAL_TIMEOUT, "mysql://host/db"},
	{"mariadb", "mysql", U_NEED_HOST | U_DIAL_TIMEOUT, "mysql://host/db"},
	{"redis", "redis", U_DB_NUMBER | U_COLON_PREFIX, "redis://host:6379/0"},
	{"rediss", "redis", U_DB_NUMBER | U_COLON_PREFIX | U_TLS, "rediss://host:6379/0"},
};

/* The rules of scheme s (n bytes), or NULL for a scheme dura does not know. */
static const scheme_rule *scheme_find(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strlen(schemes[i].name) == n && strncasecmp(s, schemes[i].name, n) == 0)
			return &schemes[i];
	return NULL;
}

/* The rules of a parsed URL's (canonical) scheme; unknown ones have none. */
static unsigned scheme_flags(const char *canon)
{
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strcmp(schemes[i].canon, canon) == 0)
			return schemes[i].flags & ~(unsigned)U_TLS;
	return 0;
}

/* RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), at most 32 bytes */
static int scheme_token(const char *s, size_t n)
{
	if (n == 0 || n > 32 || !isalpha((unsigned char)s[0]))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("+-.", s[i]))
			return 0;
	return 1;
}

/* The options every store understands, validated once here. */
static int common_options(url_impl *u)
{
	dura_url *p = &u->pub;
	const char *v;
	int rc;
	p->pool_idle = -1;
	if ((v = dura_url_param(p, "prefix"))) {
		/* ':' is allowed in key prefixes (Redis) only, never in table names */
		int ok = dura_store_prefix_valid(v) && ((scheme_flags(p->scheme) & U_COLON_PREFIX) || !strchr(v, ':'));
		if (!ok)
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL,
			                             "URL option prefix='%.40s' is not allowed: use at most 32 letters, digits "
			                             "and underscores",
			                             v);
		p->prefix = v;
	}
	if ((v = dura_url_param(p, "pool_max")) && (rc = parse_int(&p->pool_max, "pool_max", v, 1, 10000)))
		return rc;
	if ((v = dura_url_param(p, "pool_idle")) && (rc = parse_int(&p->pool_idle, "pool_idle", v, 0, 10000)))
		return rc;
	if ((v = dura_url_param(p, "conn_lifetime")) &&
	    (rc = parse_duration(&p->conn_lifetime_ms, "conn_lifetime", v, 1000)))
		return rc;
	if ((v = dura_url_param(p, "conn_idle_time")) &&
	    (rc = parse_duration(&p->conn_idle_ms, "conn_idle_time", v, 1000)))
		return rc;
	/* connect_timeout (ours, libpq's) or timeout (the Go DSN's dial timeout) */
	if ((v = dura_url_param(p, "connect_timeout")) &&
	    (rc = parse_duration(&p->connect_timeout_ms, "connect_timeout", v, 1000)))
		return rc;
	if ((v = dura_url_param(p, "timeout"))) {
		int64_t t;
		if ((rc = parse_duration(&t, "timeout", v, 1000)))
			return rc;
		p->timeout_ms = t;
		if (!p->connect_timeout_ms && (scheme_flags(p->scheme) & U_DIAL_TIMEOUT))
			p->connect_timeout_ms = t;
	}
	int bytes = 0;
	if ((v = dura_url_param(p, "max_state"))) {
		if ((rc = parse_int(&bytes, "max_state", v, 1, DURA_LIMIT_MAX_BYTES)))
			return rc;
		p->max_state_bytes = (size_t)bytes;
	}
	if ((v = dura_url_param(p, "max_value"))) {
		if ((rc = parse_int(&bytes, "max_value", v, 1, DURA_LIMIT_MAX_BYTES)))
			return rc;
		p->max_value_bytes = (size_t)bytes;
	}
	if ((v = dura_url_param(p, "tls")) && *v && strcmp(v, "false") != 0)
		p->tls = 1;
	if ((v = dura_url_param(p, "sslmode")) && *v && strcmp(v, "disable") != 0)
		p->tls = 1;
	return 0;
}

/* scheme:path?query: memory:, sqlite:, and other schemes without "//" */
static int parse_path_form(url_impl *u, const char *rest)
{
	const char *q = strchr(rest, '?');
	size_t plen = q ? (size_t)(q - rest) : strlen(rest);
	if (plen >= 2 && rest[0] == '/' && rest[1] == '/') {
		rest += 2;
		plen -= 2;
	}
	char *path = pct_decode(rest, plen);
	if (!path)
		return dura_error_oom("");
	u->pub.database = keep(u, path);
	int rc = parse_query(u, q ? q + 1 : NULL);
	if (rc)
		return rc;
	unsigned f = scheme_flags(u->pub.scheme);
	if ((f & U_NEED_PATH) && !*u->pub.database)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s URL has no file path (like %s:dura.db)", u->pub.scheme,
		                             u->pub.scheme);
	if ((f & U_NO_PATH) && *u->pub.database)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s URL takes no path (write %s:)", u->pub.scheme,
		                             u->pub.scheme);
	u->pub.redacted = keep(u, dura_strdup(u->pub.raw));
	return 0;
}

/* user:pass@tcp(host:port)/db?query and user:pass@unix(/sock)/db?query */
static int parse_go_dsn(url_impl *u, const char *dsn)
{
	dura_url *p = &u->pub;
	p->scheme = "mysql";
	const char *at = NULL;
	const char *proto = strstr(dsn, "tcp(");
	if (!proto)
		proto = strstr(dsn, "unix(");
	if (!proto)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "MySQL DSN has no tcp(...) or unix(...) address");
	if (proto > dsn) {
		at = proto - 1;
		if (*at != '@')
			return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "MySQL DSN: expected '@' before the address");
		const char *colon = memchr(dsn, ':', (size_t)(at - dsn));
		p->user = keep(u, dura_strndup(dsn, colon ? (size_t)(colon - dsn) : (size_t)(at - dsn)));
		if (colon)
			p->password = keep(u, dura_strndup(colon + 1, (size_t)(at - colon - 1)));
	}
	int is_unix = proto[0] == 'u';
	const char *open = strchr(proto, '(');
	const char *close = strchr(open, ')');
	if (!close)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "MySQL DSN: the address has no closing ')'");
	if (is_unix) {
		p->socket = keep(u, dura_strndup(open + 1, (size_t)(close - open - 1)));
	} else {
		const char *hs = open + 1;
		const char *colon = NULL;
		for (const char *c = hs; c < close; c++)
			if (*c == ':')
				colon = c;
		if (hs[0] == '[') { /* [::1]:3306 */
			const char *rb = memchr(hs, ']', (size_t)(close - hs));
			if (!rb)
				return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "MySQL DSN: bad IPv6 host");
			p->host = keep(u, dura_strndup(hs + 1, (size_t)(rb - hs - 1)));
			colon = rb[1] == ':' ? rb + 1 : NULL;
		} else {
			p->host = keep(u, dura_strndup(hs, colon ? (size_t)(colon - hs) : (size_t)(close - hs)));
		}
		if (colon) {
			char port[8] = {0};
			size_t n = (size_t)(close - colon - 1);
			if (n == 0 || n >= sizeof(port))
				return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "MySQL DSN: bad port");
			memcpy(port, colon + 1, n);
			int rc = parse_int(&p->port, "port", port, 1, 65535);
			if (rc)
				return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "MySQL DSN: port '%s' is not a number from 1 to 65535", port);
		}
	}
	const char *rest = close + 1;
	if (*rest != '/')
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "MySQL DSN: expected '/dbname' after the address");
	rest++;
	const char *q = strchr(rest, '?');
	p->database = keep(u, dura_strndup(rest, q ? (size_t)(q - rest) : strlen(rest)));
	int rc = parse_query(u, q ? q + 1 : NULL);
	if (rc)
		return rc;
	/* redacted: the DSN with the password replaced */
	if (p->password && *p->password) {
		size_t ulen = strlen(p->user);
		char *r = dura_malloc(strlen(dsn) + 8);
		if (!r)
			return dura_error_oom("");
		sprintf(r, "%.*s:***%s", (int)ulen, dsn, at);
		p->redacted = keep(u, r);
	} else {
		p->redacted = keep(u, dura_strdup(dsn));
	}
	/* the user and the password may hold a '?' too: say where the query is */
	if (q)
		u->query_at = (q - dsn) + ((ptrdiff_t)strlen(p->redacted) - (ptrdiff_t)strlen(dsn));
	return 0;
}

/*
 * libpq's keyword/value form, "host=db1 port=5432 dbname=app user=dura
 * password='a b\\'c'": whitespace-separated key=value pairs, a value in
 * single quotes with backslash escapes. host (a path: a socket directory),
 * hostaddr, port, dbname, user and password fill the URL's parts; any
 * other keyword is a URL option (sslmode, sslrootcert, application_name,
 * connect_timeout, prefix, ...). The redacted form replaces the password.
 */
static int parse_pg_keywords(url_impl *u, const char *s)
{
	dura_url *p = &u->pub;
	size_t cap = 1;
	for (const char *c = s; *c; c++)
		cap += *c == '=';
	u->names = dura_calloc(cap, sizeof(char *));
	u->values = dura_calloc(cap, sizeof(char *));
	/* the redacted form: each token again, one space before it (a quoted
	 * value may be followed by the next token with no space) and the
	 * password as "***": at most twice the input */
	char *red = dura_malloc(2 * strlen(s) + 16), *r = red;
	if (!u->names || !u->values || !red) {
		dura_free(red);
		return dura_error_oom("");
	}
	p->scheme = "postgres";
	const char *c = s;
	int rc = 0;
	unsigned seen = 0;
	while (rc == 0) {
		while (*c == ' ' || *c == '\t' || *c == '\n')
			c++;
		if (!*c)
			break;
		const char *k = c;
		while (*c && *c != '=' && *c != ' ' && *c != '\t')
			c++;
		size_t kn = (size_t)(c - k);
		while (*c == ' ' || *c == '\t')
			c++;
		if (kn == 0 || *c != '=') {
			rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL,
			                           "PostgreSQL connection string: expected keyword=value at '%.20s'", k);
			break;
		}
		c++;
		while (*c == ' ' || *c == '\t')
			c++;
		char *v = dura_malloc(strlen(c) + 1), *w = v;
		if (!v) {
			rc = dura_error_oom("");
			break;
		}
		if (*c == '\'') {
			c++;
			while (*c && *c != '\'') {
				if (*c == '\\' && c[1])
					c++;
				*w++ = *c++;
			}
			if (*c != '\'') {
				dura_free(v);
				rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL,
				                           "PostgreSQL connection string: a quoted value has no closing quote");
				break;
			}
			c++;
		} else {
			while (*c && *c != ' ' && *c != '\t' && *c != '\n') {
				if (*c == '\\' && c[1])
					c++;
				*w++ = *c++;
			}
		}
		*w = '\0';
		char *key = dura_strndup(k, kn);
		if (!key) {
			dura_free(v);
			rc = dura_error_oom("");
			break;
		}
		int part = 1;
		static const char *const parts[] = {"host", "hostaddr", "port", "dbname", "user", "password"};
		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
			if (strcmp(key, parts[i]) != 0)
				continue;
			unsigned bit = 1u << (i < 2 ? 0 : i); /* host and hostaddr are one part */
			if (seen & bit) {
				rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s is given twice in the connection string",
				                           key);
				dura_free(v);
				dura_free(key);
				key = NULL;
				break;
			}
			seen |= bit;
		}
		if (rc)
			break;
		if (strcmp(key, "host") == 0 || strcmp(key, "hostaddr") == 0) {
			if (v[0] == '/')
				p->socket = keep(u, v);
			else
				p->host = keep(u, v);
		} else if (strcmp(key, "port") == 0) {
			rc = parse_int(&p->port, "port", v, 1, 65535);
			dura_free(v);
		} else if (strcmp(key, "dbname") == 0) {
			p->database = keep(u, v);
		} else if (strcmp(key, "user") == 0) {
			p->user = keep(u, v);
		} else if (strcmp(key, "password") == 0) {
			p->password = keep(u, v);
		} else {
			part = 0;
			for (size_t i = 0; i < p->nparams && rc == 0; i++)
				if (strcmp(u->names[i], key) == 0)
					rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "URL option %.40s is given twice", key);
			if (rc) {
				dura_free(v);
				dura_free(key);
				break;
			} else {
				u->names[p->nparams] = key;
				u->values[p->nparams] = v;
				p->nparams++;
				key = NULL;
			}
		}
		if (strcmp(key ? key : "", "password") == 0) {
			r += sprintf(r, "%spassword=***", r == red ? "" : " ");
		} else {
			size_t n = (size_t)(c - k);
			r += sprintf(r, "%s%.*s", r == red ? "" : " ", (int)n, k);
		}
		if (part)
			dura_free(key);
	}
	*r = '\0';
	p->param_names = (const char *const *)u->names;
	p->param_values = (const char *const *)u->values;
	p->redacted = keep(u, red);
	return rc; /* no host: libpq's default (its socket directory, or PGHOST) */
}

static int curl_part(url_impl *u, CURLU *h, CURLUPart part, const char **dst, unsigned flags)
{
	char *v = NULL;
	CURLUcode c = curl_url_get(h, part, &v, flags);
	if (c == CURLUE_OK && v) {
		*dst = keep(u, dura_strdup(v));
		curl_free(v);
		return 0;
	}
	if (v)
		curl_free(v);
	*dst = "";
	return c == CURLUE_OUT_OF_MEMORY ? dura_error_oom("") : 0;
}

static int parse_hier(url_impl *u, const char *url, const char *scheme_as_given)
{
	dura_url *p = &u->pub;
	CURLU *h = curl_url();
	if (!h)
		return dura_error_oom("");
	int rc = 0;
	CURLUcode c = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (c != CURLUE_OK) {
		/* libcurl names the part; never echo the URL itself */
		rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s URL is malformed: %s", p->scheme, curl_url_strerror(c));
		goto out;
	}
	const char *port = "", *path = "", *query = "";
	if ((rc = curl_part(u, h, CURLUPART_USER, &p->user, CURLU_URLDECODE)) ||
	    (rc = curl_part(u, h, CURLUPART_PASSWORD, &p->password, CURLU_URLDECODE)) ||
	    (rc = curl_part(u, h, CURLUPART_HOST, &p->host, CURLU_URLDECODE)) ||
	    (rc = curl_part(u, h, CURLUPART_PORT, &port, 0)) ||
	    (rc = curl_part(u, h, CURLUPART_PATH, &path, CURLU_URLDECODE)) ||
	    (rc = curl_part(u, h, CURLUPART_QUERY, &query, 0)))
		goto out;
	if (p->host[0] == '[') { /* libcurl keeps the brackets of an IPv6 host */
		size_t n = strlen(p->host);
		p->host = keep(u, dura_strndup(p->host + 1, n > 2 ? n - 2 : 0));
	}
	if (*port && (rc = parse_int(&p->port, "port", port, 1, 65535)))
		goto out;
	p->database = path[0] == '/' ? path + 1 : path;
	if ((rc = parse_query(u, query)))
		goto out;
	const scheme_rule *given = scheme_find(scheme_as_given, strlen(scheme_as_given));
	unsigned f = scheme_flags(p->scheme);
	if (given && (given->flags & U_TLS))
		p->tls = 1;
	if ((f & U_DB_NUMBER) && *p->database) {
		int db;
		if (parse_int(&db, "database", p->database, 0, 1000000)) {
			rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s URL database '%.40s' is not a number", p->scheme,
			                           p->database);
			goto out;
		}
	}
	if (!*p->host && (f & U_NEED_HOST) && !dura_url_param(p, "host")) {
		rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s URL has no host", p->scheme);
		goto out;
	}
	/* the printable form */
	if (*p->password) {
		c = curl_url_set(h, CURLUPART_PASSWORD, "***", 0);
		char *r = NULL;
		if (c == CURLUE_OK && curl_url_get(h, CURLUPART_URL, &r, 0) == CURLUE_OK && r) {
			p->redacted = keep(u, dura_strdup(r));
			curl_free(r);
		} else {
			if (r)
				curl_free(r);
			p->redacted = keep(u, dura_strdup("(URL with password)"));
		}
	} else {
		p->redacted = keep(u, dura_strdup(url));
	}
out:
	curl_url_cleanup(h);
	return rc;
}

/* A password can also come as a query option (libpq accepts ?password=):
 * it is a secret, and the printable form shows "***" for the value of every
 * option whose decoded name is "password". The printable form is rebuilt
 * from the raw query; a fragment is dropped. */
static int redact_query_password(url_impl *u)
{
	dura__secret_add(dura_url_param(&u->pub, "password"));
	const char *r = u->pub.redacted;
	const char *q = strchr(r, '?');
	if (u->query_at > 0 && (size_t)u->query_at < strlen(r) && r[u->query_at] == '?')
		q = r + u->query_at;
	if (!q)
		return 0;
	size_t n = strlen(r);
	char *out = dura_malloc(2 * n + 16), *o = out; /* "=***" grows a segment by 4 at most */
	if (!out)
		return dura_error_oom("");
	memcpy(o, r, (size_t)(q - r) + 1);
	o += q - r + 1;
	const char *p = q + 1;
	while (*p && *p != '#') {
		size_t len = strcspn(p, "&#");
		const char *eq = memchr(p, '=', len);
		size_t nlen = eq ? (size_t)(eq - p) : len;
		char *name = pct_decode(p, nlen);
		if (!name) {
			dura_free(out);
			return dura_error_oom("");
		}
		memcpy(o, p, nlen);
		o += nlen;
		if (strcmp(name, "password") == 0) {
			memcpy(o, "=***", 4);
			o += 4;
		} else if (eq) {
			memcpy(o, eq, len - nlen);
			o += len - nlen;
		}
		dura_free(name);
		p += len;
		if (*p == '&')
			*o++ = *p++;
	}
	*o = '\0';
	u->pub.redacted = keep(u, out);
	return u->oom ? dura_error_oom("") : 0;
}

int dura_url_parse(dura_url **out, const char *url)
{
	if (!out)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "dura_url_parse: out is NULL");
	*out = NULL;
	if (!url || !*url)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "store URL is empty");
	if (strlen(url) > 4096)
		return dura_error_set_native(DURA_EINVAL, "", 0, NULL, "store URL is longer than 4096 bytes");
	url_impl *u = dura_calloc(1, sizeof(*u));
	if (!u)
		return dura_error_oom("");
	u->pub.raw = keep(u, dura_strdup(url));
	int rc;
	const char *colon = strchr(url, ':');
	size_t slen = colon ? (size_t)(colon - url) : 0;
	const scheme_rule *rule = colon ? scheme_find(url, slen) : NULL;
	/* a known scheme wins: a SQLite path may well contain "@tcp(". Else
	 * user:pass@tcp(...) is the Go DSN - its user looks like a scheme -
	 * unless the URL starts scheme:// ("://" later on, in a query value,
	 * changes nothing) */
	int looks_dsn = !rule &&
	                (strstr(url, "@tcp(") || strstr(url, "@unix(") || strncmp(url, "tcp(", 4) == 0 ||
	                 strncmp(url, "unix(", 5) == 0) &&
	                !(colon && strncmp(colon, "://", 3) == 0);
	char given[40];
	snprintf(given, sizeof(given), "%.*s", (int)(slen < 32 ? slen : 32), url);
	/* "host=... dbname=...": libpq's keyword/value form (no scheme, '='
	 * before any ':') */
	const char *eq = strchr(url, '=');
	int looks_pg = !rule && !looks_dsn && eq && (!colon || eq < colon) && !(colon && strncmp(colon, "://", 3) == 0);
	if (looks_dsn) {
		rc = parse_go_dsn(u, url);
	} else if (looks_pg) {
		rc = parse_pg_keywords(u, url);
	} else if (!colon || !scheme_token(url, slen)) {
		rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL,
		                           "store URL has no scheme (like sqlite:dura.db or postgres://host/db)");
	} else if (rule) {
		u->pub.scheme = rule->canon;
		if (rule->flags & U_PATH)
			rc = parse_path_form(u, colon + 1);
		else if (strncmp(colon, "://", 3) != 0)
			rc = dura_error_set_native(DURA_EINVAL, "", 0, NULL, "%s URL must start with %s:// (like %s)", rule->canon,
			                           given, rule->example);
		else
			rc = parse_hier(u, url, given);
	} else {
		/* a scheme for a store registered from outside: its name in lower
		 * case, the URL in whichever form it was written */
		char *lower = dura_strndup(url, slen);
		for (char *c = lower; c && *c; c++)
			*c = (char)tolower((unsigned char)*c);
		u->pub.scheme = keep(u, lower);
		rc = !lower ? dura_error_oom("") : strncmp(colon, "://", 3) == 0 ? parse_hier(u, url, given)
		                                                           : parse_path_form(u, colon + 1);
	}
	if (rc == 0 && u->oom)
		rc = dura_error_oom("");
	if (rc == 0) {
		dura__secret_add(u->pub.password);
		rc = common_options(u);
	}
	if (rc == 0 && dura_url_param(&u->pub, "password"))
		rc = redact_query_password(u);
	if (rc) {
		dura_url_free(&u->pub);
		return rc;
	}
	/* the contract: every string is set, "" when absent (memory:, sqlite:
	 * and a DSN without a user have no user, password or host) */
	const char **absent[] = {&u->pub.user, &u->pub.password, &u->pub.host, &u->pub.socket, &u->pub.database,
	                         &u->pub.prefix};
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		if (!*absent[i])
			*absent[i] = "";
	*out = &u->pub;
	return 0;
}
