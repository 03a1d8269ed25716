/*
 * client.c - the Redis store's client (client.h): the pool, the node that
 * serves the store, redirections, retries, scripts and subscriptions.
 *
 * Every key of a store shares one hash tag, so one node serves them all:
 * the client remembers that node (the URL's host until a MOVED names
 * another) and pools connections to it only. A change of node bumps a
 * generation; connections of an older one are closed when they come back.
 *
 * The pool is the SQL stores' (sql/pool.c) in spirit: an idle connection
 * first, a new one while fewer than pool_max are open (the slot reserved
 * under the lock, the connect made outside it), else a wait. A broken
 * connection drains the idle ones: a server that restarted broke them all.
 */
#include "conn.h"

#include "../../util.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REDIRECTS 5

struct dr_client {
	dr_client_config cfg; /* its strings are the client's own copies */
	SSL_CTX *tls;         /* NULL without TLS */
	int cluster;

	pthread_mutex_t mu; /* guards what follows */
	pthread_cond_t cv;  /* a slot or a connection came free; CLOCK_MONOTONIC */
	dr_conn *idle;
	int nopen, nidle;
	uint64_t waits;
	unsigned gen;        /* bumped when the node changes */
	char node_host[256]; /* "" with the URL's unix socket */
	int node_port;
};

static pthread_mutex_t sha_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- the node -------------------------------------------------------------- */

static void node_text(char *buf, size_t size, const char *host, int port, const char *socket)
{
	if (!host[0])
		snprintf(buf, size, "%s", socket);
	else
		snprintf(buf, size, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

static int at_seed(const dr_client *c, const char *host, int port)
{
	return strcmp(host, c->cfg.host) == 0 && port == c->cfg.port;
}

static void close_list(dr_conn *l, int polite)
{
	while (l) {
		dr_conn *next = l->next;
		(polite ? dr_conn_close : dr_conn_drop)(l);
		l = next;
	}
}

/* Move every idle connection to *drop (closed by the caller, unlocked). */
static void drain_locked(dr_client *c, dr_conn **drop)
{
	while (c->idle) {
		dr_conn *x = c->idle;
		c->idle = x->next;
		x->next = *drop;
		*drop = x;
		c->nidle--;
		c->nopen--;
	}
	pthread_cond_broadcast(&c->cv);
}

/* Make host:port the node; from_gen guards against a change another
 * thread made meanwhile (0: unconditional). */
static void set_node(dr_client *c, const char *host, int port, unsigned from_gen)
{
	dr_conn *drop = NULL;
	pthread_mutex_lock(&c->mu);
	if ((!from_gen || c->gen == from_gen) && (strcmp(c->node_host, host) != 0 || c->node_port != port)) {
		snprintf(c->node_host, sizeof(c->node_host), "%s", host);
		c->node_port = port;
		c->gen++;
		drain_locked(c, &drop);
	}
	pthread_mutex_unlock(&c->mu);
	close_list(drop, 1);
}

/* ---- the pool -------------------------------------------------------------- */

/* Open a connection to the node (host NULL: the URL's unix socket). */
static int open_to(dr_client *c, const char *host, int port, dr_conn **out)
{
	return dr_conn_open(out, &c->cfg, c->tls, host[0] ? host : NULL, port);
}

/* Borrow a connection to the node: 0, or the connect's error (DURA_EIO
 * with *connect_failed = 1), or DURA_ETIMEOUT when none came free. */
static int pool_get(dr_client *c, dr_conn **out, int *connect_failed)
{
	dr_conn *drop = NULL, *got = NULL;
	char host[256];
	int port = 0, waited = 0, rc = 0;
	unsigned gen = 0;
	struct timespec until = dura__mono_after_ms(c->cfg.timeout_ms);
	*out = NULL;
	*connect_failed = 0;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (c->idle && !got) {
			dr_conn *x = c->idle;
			c->idle = x->next;
			c->nidle--;
			if (x->gen == c->gen && dr_conn_alive(x)) {
				got = x;
				break;
			}
			/* closed while idle: the server restarted (or it is an old node's) */
			c->nopen--;
			x->next = drop;
			drop = x;
			if (x->gen == c->gen)
				drain_locked(c, &drop);
		}
		if (got)
			break;
		if (c->nopen < c->cfg.pool_max) {
			c->nopen++; /* the slot is ours while we connect outside the lock */
			snprintf(host, sizeof(host), "%s", c->node_host);
			port = c->node_port;
			gen = c->gen;
			break;
		}
		if (!waited++)
			c->waits++;
		if (pthread_cond_timedwait(&c->cv, &c->mu, &until) != 0 && !c->idle && c->nopen >= c->cfg.pool_max) {
			rc = DURA_ETIMEOUT;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	close_list(drop, 0);
	if (got) {
		got->next = NULL;
		*out = got;
		return 0;
	}
	if (rc)
		return dura_error_set_native(rc, DR_STORE, 0, NULL,
		                             "no Redis connection came free within %lld ms (all %d in use): raise pool_max",
		                             (long long)c->cfg.timeout_ms, c->cfg.pool_max);
	dr_conn *conn = NULL;
	rc = open_to(c, host, port, &conn);
	if (rc == DURA_EIO && !at_seed(c, host, port)) {
		/* the node went away (a failover, a resharding): ask the seed anew */
		set_node(c, c->cfg.socket[0] ? "" : c->cfg.host, c->cfg.port, gen);
		pthread_mutex_lock(&c->mu);
		snprintf(host, sizeof(host), "%s", c->node_host);
		port = c->node_port;
		gen = c->gen;
		pthread_mutex_unlock(&c->mu);
		rc = open_to(c, host, port, &conn);
	}
	if (rc) {
		pthread_mutex_lock(&c->mu);
		c->nopen--;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
		*connect_failed = rc == DURA_EIO;
		return rc;
	}
	conn->gen = gen;
	*out = conn;
	return 0;
}

/* Give a connection back; a broken one is closed with every idle one. */
static void pool_put(dr_client *c, dr_conn *conn, int broken)
{
	dr_conn *drop = NULL;
	pthread_mutex_lock(&c->mu);
	if (broken || conn->gen != c->gen || c->nidle >= c->cfg.pool_idle) {
		c->nopen--;
		conn->next = NULL;
		drop = conn;
		if (broken)
			drain_locked(c, &drop);
	} else {
		conn->next = c->idle;
		c->idle = conn;
		c->nidle++;
	}
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	/* no goodbye on a broken one; the drained idle ones may still hear it */
	for (dr_conn *x = drop, *next; x; x = next) {
		next = x->next;
		(x == conn && broken ? dr_conn_drop : dr_conn_close)(x);
	}
}

/* ---- open, close, fork ----------------------------------------------------- */

static char *dup_or_empty(const char *s)
{
	return dura_strdup(s ? s : "");
}

static void free_cfg(dr_client_config *k)
{
	dura_free((char *)k->host);
	dura_free((char *)k->socket);
	dura_free((char *)k->user);
	dura_free((char *)k->password);
	dura_free((char *)k->tls_ca);
	dura_free((char *)k->tls_cert);
	dura_free((char *)k->tls_key);
}

/* A one-off INFO: cluster_enabled, or a refusal that means no password. */
static int learn_cluster(dr_client *c)
{
	redisReply *r = NULL;
	int rc = dr_commandv(c, DR_IDEMPOTENT, &r, "INFO", "cluster", NULL);
	if (rc)
		return rc;
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0)
		rc = dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL,
		                           "the Redis server at %s needs a password: put it in the store URL", dr_client_node(c));
	else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		c->cluster = strstr(r->str, "cluster_enabled:1") != NULL;
	freeReplyObject(r);
	return rc;
}

int dr_client_open(dr_client **out, const dr_client_config *cfg)
{
	*out = NULL;
	dr_client *c = dura_calloc(1, sizeof(*c));
	if (!c)
		return dura_error_oom(DR_STORE);
	c->cfg = *cfg;
	dr_client_config *k = &c->cfg;
	k->host = dup_or_empty(cfg->host);
	k->socket = dup_or_empty(cfg->socket);
	k->user = dup_or_empty(cfg->user);
	k->password = dup_or_empty(cfg->password);
	k->tls_ca = dup_or_empty(cfg->tls_ca);
	k->tls_cert = dup_or_empty(cfg->tls_cert);
	k->tls_key = dup_or_empty(cfg->tls_key);
	if (!k->host || !k->socket || !k->user || !k->password || !k->tls_ca || !k->tls_cert || !k->tls_key) {
		free_cfg(k);
		dura_free(c);
		return dura_error_oom(DR_STORE);
	}
	if (k->port <= 0)
		k->port = 6379;
	if (k->connect_timeout_ms <= 0)
		k->connect_timeout_ms = 10000;
	if (k->timeout_ms <= 0)
		k->timeout_ms = 30000;
	if (k->pool_max <= 0)
		k->pool_max = 16;
	if (k->pool_idle < 0 || k->pool_idle > k->pool_max)
		k->pool_idle = k->pool_max;
	if (k->retry_ms <= 0)
		k->retry_ms = 10000;
	pthread_mutex_init(&c->mu, NULL);
	dura__cond_init_mono(&c->cv);
	c->gen = 1;
	snprintf(c->node_host, sizeof(c->node_host), "%s", k->socket[0] ? "" : k->host);
	c->node_port = k->port;
	int rc = k->tls ? dr_tls_ctx_new(&c->tls, k) : 0;
	dr_conn *first = NULL;
	int connect_failed;
	/* one connect, not retried: a wrong address should fail at open */
	if (rc == 0 && (rc = pool_get(c, &first, &connect_failed)) == 0) {
		pool_put(c, first, 0);
		rc = learn_cluster(c);
	}
	if (rc) {
		dr_client_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void dr_client_close(dr_client *c)
{
	if (!c)
		return;
	close_list(c->idle, 1);
	if (c->tls)
		SSL_CTX_free(c->tls);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free_cfg(&c->cfg);
	dura_free(c);
}

void dr_client_atfork_child(dr_client *c)
{
	/* the fork guard saw to it that none was lent out; the child is alone */
	close_list(c->idle, 0);
	c->idle = NULL;
	c->nopen = c->nidle = 0;
	c->waits = 0;
	pthread_mutex_init(&c->mu, NULL);
	dura__cond_init_mono(&c->cv);
	pthread_mutex_init(&sha_mu, NULL);
}

int dr_client_is_cluster(const dr_client *c)
{
	return c->cluster;
}

const char *dr_client_node(dr_client *c)
{
	static _Thread_local char buf[300];
	pthread_mutex_lock(&c->mu);
	node_text(buf, sizeof(buf), c->node_host, c->node_port, c->cfg.socket);
	pthread_mutex_unlock(&c->mu);
	return buf;
}

void dr_client_stats(dr_client *c, dura_store_stats *out)
{
	pthread_mutex_lock(&c->mu);
	out->open = c->nopen;
	out->idle = c->nidle;
	out->in_use = c->nopen - c->nidle;
	out->max_open = c->cfg.pool_max;
	out->waits = c->waits;
	pthread_mutex_unlock(&c->mu);
}

/* ---- one command, redirected and retried ----------------------------------- */

/* The error reply's first word is w (so "BUSY" is not "BUSYGROUP"). */
static int word_is(const redisReply *r, const char *w)
{
	size_t n = strlen(w);
	return r->type == REDIS_REPLY_ERROR && r->len >= n && strncmp(r->str, w, n) == 0 &&
	       (r->str[n] == ' ' || r->str[n] == '\0');
}

static int transient(const redisReply *r, int flags)
{
	if (word_is(r, "LOADING") || word_is(r, "BUSY") || word_is(r, "TRYAGAIN") || word_is(r, "CLUSTERDOWN") ||
	    word_is(r, "MASTERDOWN") || word_is(r, "READONLY"))
		return 1;
	/* a script that met a key already moved away mid-resharding: the
	 * store's scripts touch every key they write before the first write,
	 * so it stopped having done nothing, and runs again once moved */
	return (flags & DR_NO_ASK) && r->type == REDIS_REPLY_ERROR && strstr(r->str, "non local key") != NULL;
}

/* "MOVED 3999 host:port" / "ASK ...": 0 with host and port (an empty
 * host - the node did not know its address - is the current one's). */
static int parse_redirect(dr_client *c, const redisReply *r, char *host, size_t size, int *port)
{
	const char *sp = strchr(r->str, ' ');
	const char *ep = sp ? strchr(sp + 1, ' ') : NULL;
	const char *colon = ep ? strrchr(ep + 1, ':') : NULL;
	if (!colon || (*port = atoi(colon + 1)) <= 0)
		return -1;
	const char *h = ep + 1;
	size_t n = (size_t)(colon - h);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n == 0) {
		pthread_mutex_lock(&c->mu);
		snprintf(host, size, "%s", c->node_host);
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	if (n >= size)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	return 0;
}

/* Sleep before the next try, or 0 when retry_ms is spent. */
static int backoff(int64_t deadline, int *attempt)
{
	dura_node_options o = DURA_NODE_OPTIONS_INIT;
	o.backoff_initial_ms = 10;
	o.backoff_multiplier = 2.0;
	o.backoff_max_ms = 500;
	o.jitter = 0.5; /* so that many clients do not come back in step */
	int64_t left = deadline - dr_mono_ms();
	if (left <= 0)
		return 0;
	int64_t d = dura__backoff_ms(&o, ++*attempt);
	dura__sleep_ms(d < left ? d : left);
	return 1;
}

int dr_command(dr_client *c, int flags, redisReply **out, int *unsure, int argc, const char **argv, const size_t *lens)
{
	int64_t deadline = dura__add_ms(dr_mono_ms(), c->cfg.retry_ms);
	int attempt = 0, redirects = 0, resent = 0;
	char ask_host[256] = "", where[300];
	int ask_port = 0;
	*out = NULL;
	if (unsure)
		*unsure = 0;
	for (;;) {
		dr_conn *conn = NULL;
		int oneoff = ask_host[0] != '\0', connect_failed = 0, rc;
		if (oneoff) {
			rc = dr_conn_open(&conn, &c->cfg, c->tls, ask_host, ask_port);
			connect_failed = rc == DURA_EIO;
			ask_host[0] = '\0'; /* an ASK is followed once */
		} else {
			rc = pool_get(c, &conn, &connect_failed);
		}
		if (rc) {
			if (connect_failed && backoff(deadline, &attempt))
				continue; /* a restart or a failover: the server may be back soon */
			return rc;
		}
		snprintf(where, sizeof(where), "%s", conn->where);
		static const char *asking[1] = {"ASKING"};
		rc = oneoff ? dr_conn_sendv(conn, 1, asking, NULL) : 0;
		if (rc == 0)
			rc = dr_conn_sendv(conn, argc, argv, lens);
		redisReply *r = NULL;
		if (rc) {
			/* not sent whole: the server cannot have run it */
			oneoff ? dr_conn_drop(conn) : pool_put(c, conn, 1);
			if (rc == DURA_EIO && (!resent++ || backoff(deadline, &attempt)))
				continue;
			return rc;
		}
		if (oneoff && (rc = dr_conn_read(conn, &r, -1)) == 0)
			freeReplyObject(r); /* ASKING's +OK */
		if (rc == 0)
			rc = dr_conn_read(conn, &r, -1);
		if (rc) {
			oneoff ? dr_conn_drop(conn) : pool_put(c, conn, 1);
			if (rc == DURA_EIO && (flags & DR_IDEMPOTENT) && (!resent++ || backoff(deadline, &attempt)))
				continue;
			if (unsure && rc != DURA_ENOMEM)
				*unsure = 1; /* sent, and no answer: it may have run */
			return rc;
		}
		int readonly = word_is(r, "READONLY");
		oneoff ? dr_conn_close(conn) : pool_put(c, conn, readonly);
		if (word_is(r, "MOVED") || word_is(r, "ASK")) {
			char host[256];
			int port, ask = word_is(r, "ASK"), bad = parse_redirect(c, r, host, sizeof(host), &port);
			/* a few hops are a resharding; more mean the cluster's view is
			 * stale (a node down, not yet failed over): wait it out */
			if (bad || (++redirects > MAX_REDIRECTS && !backoff(deadline, &attempt))) {
				rc = dura_error_set_native(DURA_EIO, DR_STORE, 0, NULL, "the Redis cluster at %s %s: %s", where,
				                           bad ? "sent a redirection dura cannot read" : "keeps redirecting", r->str);
				freeReplyObject(r);
				return rc;
			}
			freeReplyObject(r);
			if (ask && (flags & DR_NO_ASK)) {
				/* the slot is half moved: wait until it is whole on one node */
				if (backoff(deadline, &attempt))
					continue;
				return dura_error_set_native(DURA_ETIMEOUT, DR_STORE, 0, NULL,
				                             "the Redis cluster was still moving the store's slot (from %s) after "
				                             "%lld ms (retry_time)",
				                             where, (long long)c->cfg.retry_ms);
			}
			if (ask) {
				snprintf(ask_host, sizeof(ask_host), "%s", host);
				ask_port = port;
			} else {
				set_node(c, host, port, 0);
			}
			continue;
		}
		if (transient(r, flags)) {
			if (readonly) /* a failover made the node a replica: the seed knows the new master */
				set_node(c, c->cfg.socket[0] ? "" : c->cfg.host, c->cfg.port, 0);
			if (backoff(deadline, &attempt)) {
				freeReplyObject(r);
				continue;
			}
			rc = dura_error_set_native(DURA_ETIMEOUT, DR_STORE, 0, NULL,
			                           "the Redis server at %s was still answering \"%s\" after %lld ms (retry_ms)",
			                           where, r->str, (long long)c->cfg.retry_ms);
			freeReplyObject(r);
			return rc;
		}
		*out = r;
		return 0;
	}
}

int dr_commandv(dr_client *c, int flags, redisReply **out, const char *arg0, ...)
{
	const char *argv[64];
	int argc = 0;
	va_list ap;
	va_start(ap, arg0);
	for (const char *a = arg0; a; a = va_arg(ap, const char *)) {
		if (argc == 64) {
			va_end(ap);
			*out = NULL;
			return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "dr_commandv: more than 64 arguments");
		}
		argv[argc++] = a;
	}
	va_end(ap);
	return dr_command(c, flags, out, NULL, argc, argv, NULL);
}

/* ---- scripts --------------------------------------------------------------- */

/* sc->sha, computed once: SHA-1 of the source, lower-case hex, as Redis names it. */
static int script_sha(dr_script *sc, char sha[41])
{
	pthread_mutex_lock(&sha_mu);
	if (!sc->sha[0]) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned n = 0;
		if (EVP_Digest(sc->source, strlen(sc->source), md, &n, EVP_sha1(), NULL) != 1 || n != 20) {
			pthread_mutex_unlock(&sha_mu);
			return dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "cannot compute the SHA-1 of script %s", sc->name);
		}
		for (unsigned i = 0; i < n; i++)
			snprintf(sc->sha + 2 * i, 3, "%02x", md[i]);
	}
	memcpy(sha, sc->sha, 41);
	pthread_mutex_unlock(&sha_mu);
	return 0;
}

int dr_eval(dr_client *c, dr_script *sc, int flags, redisReply **out, int *unsure, int nkeys, int argc,
            const char **argv, const size_t *lens)
{
	char sha[41], nk[16];
	*out = NULL;
	if (unsure)
		*unsure = 0;
	int rc = script_sha(sc, sha);
	if (rc)
		return rc;
	snprintf(nk, sizeof(nk), "%d", nkeys);
	const char **av = dura_malloc(sizeof(*av) * (size_t)(argc + 3));
	size_t *al = dura_malloc(sizeof(*al) * (size_t)(argc + 3));
	if (!av || !al) {
		dura_free(av);
		dura_free(al);
		return dura_error_oom(DR_STORE);
	}
	av[0] = "EVALSHA", av[1] = sha, av[2] = nk;
	al[0] = 7, al[1] = 40, al[2] = strlen(nk);
	for (int i = 0; i < argc; i++) {
		av[i + 3] = argv[i];
		al[i + 3] = lens ? lens[i] : strlen(argv[i]);
	}
	redisReply *r = NULL;
	/* a NOSCRIPT can come again if the node changes between load and call */
	for (int loads = 0;; loads++) {
		rc = dr_command(c, flags | DR_NO_ASK, &r, unsure, argc + 3, av, al);
		if (rc || !word_is(r, "NOSCRIPT") || loads == 3)
			break;
		freeReplyObject(r);
		r = NULL;
		rc = dr_commandv(c, DR_IDEMPOTENT, &r, "SCRIPT", "LOAD", sc->source, NULL);
		if (rc)
			break;
		if (r->type == REDIS_REPLY_ERROR) {
			rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "the Redis script %s did not load: %s", sc->name,
			                           r->str);
			break;
		}
		freeReplyObject(r);
		r = NULL;
	}
	dura_free(av);
	dura_free(al);
	if (rc == 0 && r->type == REDIS_REPLY_ERROR)
		rc = dura_error_set_native(DURA_ERROR, DR_STORE, 0, NULL, "the Redis script %s failed: %s", sc->name, r->str);
	if (rc) {
		if (r)
			freeReplyObject(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* ---- pub/sub --------------------------------------------------------------- */

struct dr_sub {
	dr_conn *conn;
	int broken;
	char channel[200]; /* for messages */
};

int dr_sub_open(dr_client *c, const char *channel, dr_sub **out)
{
	*out = NULL;
	dr_sub *s = dura_calloc(1, sizeof(*s));
	if (!s)
		return dura_error_oom(DR_STORE);
	snprintf(s->channel, sizeof(s->channel), "%s", channel);
	char host[256];
	pthread_mutex_lock(&c->mu);
	snprintf(host, sizeof(host), "%s", c->node_host);
	int port = c->node_port;
	pthread_mutex_unlock(&c->mu);
	int rc = open_to(c, host, port, &s->conn);
	if (rc == DURA_EIO && !at_seed(c, host, port))
		rc = open_to(c, c->cfg.socket[0] ? "" : c->cfg.host, c->cfg.port, &s->conn);
	const char *argv[2] = {"SUBSCRIBE", channel};
	if (rc == 0)
		rc = dr_conn_sendv(s->conn, 2, argv, NULL);
	redisReply *r = NULL;
	if (rc == 0 && (rc = dr_conn_read(s->conn, &r, -1)) == 0) {
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING ||
		    strcmp(r->element[0]->str, "subscribe") != 0)
			rc = dura_error_set_native(DURA_EIO, DR_STORE, 0, NULL, "the Redis server at %s refused SUBSCRIBE %s: %s",
			                           s->conn->where, channel, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		freeReplyObject(r);
	}
	if (rc) {
		dr_sub_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

int dr_sub_wait(dr_sub *s, int64_t timeout_ms)
{
	if (s->broken)
		return dura_error_set_native(DURA_EIO, DR_STORE, 0, NULL, "the subscription to %s was lost", s->channel);
	int64_t deadline = dura__add_ms(dr_mono_ms(), timeout_ms < 0 ? 0 : timeout_ms);
	for (;;) {
		int64_t left = deadline - dr_mono_ms();
		redisReply *r = NULL;
		int rc = dr_conn_read(s->conn, &r, left < 0 ? 0 : left);
		if (rc == DURA_ETIMEOUT)
			return dura_error_set_native(DURA_ETIMEOUT, DR_STORE, 0, NULL, "no message on %s within %lld ms", s->channel,
			                             (long long)timeout_ms);
		if (rc) {
			s->broken = 1;
			return rc;
		}
		/* a "message" push is the news; anything else (a confirmation) is not */
		int msg = r->type == REDIS_REPLY_ARRAY && r->elements >= 3 && r->element[0]->type == REDIS_REPLY_STRING &&
		          strcmp(r->element[0]->str, "message") == 0;
		freeReplyObject(r);
		if (msg)
			return 0;
	}
}

void dr_sub_close(dr_sub *s)
{
	if (!s)
		return;
	if (s->broken)
		dr_conn_drop(s->conn);
	else
		dr_conn_close(s->conn);
	dura_free(s);
}
