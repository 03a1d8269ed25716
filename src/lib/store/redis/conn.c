/*
 * conn.c - one connection to a Redis server (conn.h).
 *
 * The socket is non-blocking from the start and every wait is a poll()
 * with a deadline, so that neither a dead host nor a silent server holds a
 * caller past connect_timeout or timeout. hiredis only parses replies and
 * formats commands: its own connect has no TLS in the 0.14 Debian ships.
 *
 * OpenSSL writes with write(), which raises SIGPIPE on a socket the peer
 * closed; the TLS calls run with SIGPIPE blocked in this thread, and a
 * SIGPIPE they caused is taken off the pending set (as libpq does), so the
 * process's own handling of the signal is left alone.
 */
#include "conn.h"

#include "../../util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int64_t dr_mono_ms(void)
{
	struct timespec t = dura__mono_after_ms(0);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- SIGPIPE around OpenSSL ----------------------------------------------- */

typedef struct sigpipe_guard {
	sigset_t old;
	int was_pending;
} sigpipe_guard;

static void sigpipe_block(sigpipe_guard *g)
{
	sigset_t set, pend;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
	sigpending(&pend);
	g->was_pending = sigismember(&pend, SIGPIPE);
}

static void sigpipe_unblock(sigpipe_guard *g)
{
	sigset_t set, pend;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	if (!g->was_pending && sigismember(&pend, SIGPIPE)) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- waiting --------------------------------------------------------------- */

/* 0 when fd is ready for ev, DURA_ETIMEOUT at the deadline, DURA_EIO on a
 * poll error. A hang-up counts as ready: the read or write that follows
 * reports it. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - dr_mono_ms();
		if (left < 0)
			left = 0;
		struct pollfd p = {fd, ev, 0};
		int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n == 0 && left == 0)
			return DURA_ETIMEOUT;
		if (n < 0 && errno != EINTR)
			return DURA_EIO;
	}
}

/* The latest OpenSSL error as text ("" when none). */
static const char *ssl_why(char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();
	buf[0] = '\0';
	if (e)
		ERR_error_string_n(e, buf, size);
	return buf;
}

/* ---- TLS context ----------------------------------------------------------- */

int dr_tls_ctx_new(SSL_CTX **out, const dr_client_config *cfg)
{
	char why[256];
	*out = NULL;
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return dura_error_oom(DR_STORE);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (cfg->tls_skip_verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		int ok = cfg->tls_ca[0] ? SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL)
		                        : SSL_CTX_set_default_verify_paths(ctx);
		if (ok != 1) {
			SSL_CTX_free(ctx);
			return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "cannot load the TLS CA file '%s': %s",
			                             cfg->tls_ca[0] ? cfg->tls_ca : "(system default)", ssl_why(why, sizeof(why)));
		}
	}
	if (cfg->tls_cert[0]) {
		/* a key left out is looked for in the certificate's file (one PEM with both) */
		const char *key = cfg->tls_key[0] ? cfg->tls_key : cfg->tls_cert;
		if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
			SSL_CTX_free(ctx);
			return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "cannot load the TLS client certificate '%s': %s",
			                             cfg->tls_cert, ssl_why(why, sizeof(why)));
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
			SSL_CTX_free(ctx);
			return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "cannot load the TLS client key '%s': %s", key,
			                             ssl_why(why, sizeof(why)));
		}
	}
	*out = ctx;
	return 0;
}

/* ---- the socket ------------------------------------------------------------ */

static void tune_tcp(int fd)
{
	int one = 1, idle = 60, intvl = 10, cnt = 3;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* a peer that vanished (power loss, a partition) is noticed within minutes */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* A non-blocking connect finished by the deadline: 0 or an errno value. */
static int connect_by(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline)
{
	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return errno;
	if (wait_fd(fd, POLLOUT, deadline) != 0)
		return ETIMEDOUT;
	int err = 0;
	socklen_t el = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
		return errno;
	return err;
}

static int open_socket(dr_conn *c, const dr_client_config *cfg, const char *host, int port, int64_t deadline)
{
	int err = 0;
	if (!host) {
		struct sockaddr_un sun;
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(cfg->socket) >= sizeof(sun.sun_path))
			return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "the unix socket path '%s' is too long",
			                             cfg->socket);
		strcpy(sun.sun_path, cfg->socket);
		c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			err = errno;
		else
			err = connect_by(c->fd, (struct sockaddr *)&sun, sizeof(sun), deadline);
	} else {
		char ps[16];
		snprintf(ps, sizeof(ps), "%d", port);
		struct addrinfo hints, *ai = NULL;
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		int g = getaddrinfo(host, ps, &hints, &ai);
		if (g != 0)
			return dura_error_set_native(DURA_EIO, DR_STORE, g, NULL, "cannot resolve the Redis server's host %s: %s",
			                             c->where, gai_strerror(g));
		err = ENOENT;
		for (struct addrinfo *a = ai; a; a = a->ai_next) {
			c->fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
			if (c->fd < 0) {
				err = errno;
				continue;
			}
			if ((err = connect_by(c->fd, a->ai_addr, a->ai_addrlen, deadline)) == 0)
				break;
			close(c->fd);
			c->fd = -1;
			if (err == ETIMEDOUT)
				break; /* the time is spent; the next address would not get any */
		}
		freeaddrinfo(ai);
		if (err == 0)
			tune_tcp(c->fd);
	}
	if (err == 0)
		return 0;
	return dura_error_set_native(DURA_EIO, DR_STORE, err, NULL, "cannot connect to the Redis server at %s: %s",
	                             c->where, err == ETIMEDOUT ? "timed out" : strerror(err));
}

static int is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int open_tls(dr_conn *c, const dr_client_config *cfg, SSL_CTX *ctx, const char *host, int64_t deadline)
{
	char why[256];
	ERR_clear_error();
	c->ssl = SSL_new(ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
		return dura_error_oom(DR_STORE);
	if (host && !cfg->tls_skip_verify) {
		int ok = is_ip_literal(host) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host)
		                             : SSL_set1_host(c->ssl, host);
		if (ok != 1)
			return dura_error_oom(DR_STORE);
	}
	if (host && !is_ip_literal(host))
		SSL_set_tlsext_host_name(c->ssl, host); /* SNI is for names only (RFC 6066) */
	for (;;) {
		sigpipe_guard g;
		sigpipe_block(&g);
		int r = SSL_connect(c->ssl);
		int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
		sigpipe_unblock(&g);
		if (r == 1)
			return 0;
		int w = 0;
		if (e == SSL_ERROR_WANT_READ)
			w = wait_fd(c->fd, POLLIN, deadline);
		else if (e == SSL_ERROR_WANT_WRITE)
			w = wait_fd(c->fd, POLLOUT, deadline);
		else
			break;
		if (w)
			return dura_error_set_native(DURA_EIO, DR_STORE, 0, NULL, "the TLS handshake with the Redis server at %s timed out (is it a TLS port?)",
			                             c->where);
	}
	long v = SSL_get_verify_result(c->ssl);
	if (v != X509_V_OK)
		return dura_error_set_native(DURA_EINVAL, DR_STORE, (int)v, NULL,
		                             "TLS to the Redis server at %s failed: certificate verify failed (%s): check tls_ca "
		                             "and the server's certificate names",
		                             c->where, X509_verify_cert_error_string(v));
	ssl_why(why, sizeof(why));
	return dura_error_set_native(DURA_EIO, DR_STORE, 0, NULL, "the TLS handshake with the Redis server at %s failed: %s",
	                             c->where, why[0] ? why : "the server closed the connection (is it a TLS port?)");
}

/* ---- sending and reading --------------------------------------------------- */

static int lost(dr_conn *c, const char *what, int err)
{
	return dura_error_set_native(DURA_EIO, DR_STORE, err, NULL, "the connection to the Redis server at %s was lost (%s): %s",
	                             c->where, what, err ? strerror(err) : "closed by the server");
}

int dr_conn_send(dr_conn *c, const char *buf, size_t len)
{
	int64_t deadline = dura__add_ms(dr_mono_ms(), c->timeout_ms);
	while (len > 0) {
		ssize_t n;
		short ev = POLLOUT;
		if (c->ssl) {
			sigpipe_guard g;
			ERR_clear_error();
			sigpipe_block(&g);
			int r = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
			int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
			int saved = errno;
			sigpipe_unblock(&g);
			n = r;
			if (r <= 0) {
				if (e == SSL_ERROR_WANT_READ)
					ev = POLLIN;
				else if (e != SSL_ERROR_WANT_WRITE)
					return lost(c, "sending", e == SSL_ERROR_SYSCALL ? saved : 0);
				n = -1;
				errno = EAGAIN;
			}
		} else {
			n = send(c->fd, buf, len, MSG_NOSIGNAL);
		}
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return lost(c, "sending", errno);
		if (wait_fd(c->fd, ev, deadline) != 0)
			return dura_error_set_native(DURA_ETIMEOUT, DR_STORE, 0, NULL,
			                             "the Redis server at %s took no data for %lld ms", c->where,
			                             (long long)c->timeout_ms);
	}
	return 0;
}

int dr_conn_sendv(dr_conn *c, int argc, const char **argv, const size_t *lens)
{
	char *cmd = NULL;
	int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
	if (len < 0)
		return dura_error_oom(DR_STORE);
	int rc = dr_conn_send(c, cmd, (size_t)len);
	free(cmd);
	return rc;
}

/* Read what is there into the reader: 0, 1 (nothing yet: wait for ev),
 * or DURA_EIO. */
static int read_some(dr_conn *c, short *ev)
{
	char buf[16384];
	ssize_t n;
	if (c->ssl) {
		sigpipe_guard g;
		ERR_clear_error();
		sigpipe_block(&g); /* a read may write too (a TLS 1.3 key update) */
		int r = SSL_read(c->ssl, buf, sizeof(buf));
		int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
		int saved = errno;
		sigpipe_unblock(&g);
		if (r <= 0) {
			errno = saved;
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				*ev = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
				return 1;
			}
			return lost(c, "reading", e == SSL_ERROR_SYSCALL ? errno : 0);
		}
		n = r;
	} else {
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			*ev = POLLIN;
			return 1;
		}
		if (n <= 0)
			return lost(c, "reading", n < 0 ? errno : 0);
	}
	if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK)
		return dura_error_oom(DR_STORE);
	return 0;
}

int dr_conn_read(dr_conn *c, redisReply **out, int64_t timeout_ms)
{
	*out = NULL;
	if (timeout_ms < 0)
		timeout_ms = c->timeout_ms;
	int64_t deadline = dura__add_ms(dr_mono_ms(), timeout_ms);
	for (;;) {
		void *r = NULL;
		if (redisReaderGetReply(c->reader, &r) != REDIS_OK)
			return dura_error_set_native(DURA_EIO, DR_STORE, 0, NULL, "a malformed reply from the Redis server at %s: %s",
			                             c->where, c->reader->errstr);
		if (r) {
			*out = r;
			return 0;
		}
		short ev = POLLIN;
		int rc = read_some(c, &ev);
		if (rc < 0)
			return rc;
		if (rc == 1 && wait_fd(c->fd, ev, deadline) != 0)
			return dura_error_set_native(DURA_ETIMEOUT, DR_STORE, 0, NULL,
			                             "no reply from the Redis server at %s within %lld ms", c->where,
			                             (long long)timeout_ms);
	}
}

int dr_conn_alive(dr_conn *c)
{
	if (c->ssl) {
		/* TLS 1.3 session tickets may sit unread: SSL_peek takes them and
		 * says whether any application data (there should be none) came */
		char b;
		ERR_clear_error();
		int r = SSL_peek(c->ssl, &b, 1);
		return r <= 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ;
	}
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* ---- the handshake --------------------------------------------------------- */

static int handshake(dr_conn *c, const dr_client_config *cfg)
{
	const char *auth[3] = {"AUTH", cfg->user, cfg->password};
	char db[16];
	snprintf(db, sizeof(db), "%d", cfg->db);
	const char *sel[2] = {"SELECT", db};
	int want_auth = cfg->password[0] != '\0', want_sel = cfg->db != 0, rc = 0;
	/* both at once: one round trip */
	if (want_auth) {
		if (cfg->user[0])
			rc = dr_conn_sendv(c, 3, auth, NULL);
		else {
			auth[1] = cfg->password;
			rc = dr_conn_sendv(c, 2, auth, NULL);
		}
	}
	if (rc == 0 && want_sel)
		rc = dr_conn_sendv(c, 2, sel, NULL);
	redisReply *r = NULL;
	if (rc == 0 && want_auth && (rc = dr_conn_read(c, &r, -1)) == 0) {
		int bad = r->type == REDIS_REPLY_ERROR;
		int nopass = bad && strstr(r->str, "without any password configured") != NULL;
		freeReplyObject(r);
		/* the server's words are not repeated: some versions echo arguments */
		if (nopass)
			return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL,
			                             "the Redis server at %s has no password set, but the URL gives one", c->where);
		if (bad)
			return dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL,
			                             "the Redis server at %s refused the password for user %s", c->where,
			                             cfg->user[0] ? cfg->user : "default");
	}
	if (rc == 0 && want_sel && (rc = dr_conn_read(c, &r, -1)) == 0) {
		if (r->type == REDIS_REPLY_ERROR)
			rc = dura_error_set_native(DURA_EINVAL, DR_STORE, 0, NULL, "the Redis server at %s refused SELECT %d: %s",
			                           c->where, cfg->db, r->str);
		freeReplyObject(r);
	}
	return rc;
}

int dr_conn_open(dr_conn **out, const dr_client_config *cfg, SSL_CTX *ctx, const char *host, int port)
{
	*out = NULL;
	dr_conn *c = dura_calloc(1, sizeof(*c));
	if (!c)
		return dura_error_oom(DR_STORE);
	c->fd = -1;
	c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
	if (host && strchr(host, ':'))
		snprintf(c->where, sizeof(c->where), "[%s]:%d", host, port);
	else if (host)
		snprintf(c->where, sizeof(c->where), "%s:%d", host, port);
	else
		snprintf(c->where, sizeof(c->where), "%s", cfg->socket);
	int64_t deadline = dura__add_ms(dr_mono_ms(), cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000);
	int rc = (c->reader = redisReaderCreate()) ? 0 : dura_error_oom(DR_STORE);
	if (rc == 0)
		rc = open_socket(c, cfg, host, port, deadline);
	if (rc == 0 && ctx)
		rc = open_tls(c, cfg, ctx, host, deadline);
	if (rc == 0)
		rc = handshake(c, cfg);
	if (rc) {
		dr_conn_drop(c); /* nothing worth a goodbye was set up */
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- closing --------------------------------------------------------------- */

void dr_conn_close(dr_conn *c)
{
	if (!c)
		return;
	if (c->ssl) {
		/* one close_notify, not waiting for the server's */
		sigpipe_guard g;
		sigpipe_block(&g);
		ERR_clear_error();
		SSL_shutdown(c->ssl);
		sigpipe_unblock(&g);
	}
	dr_conn_drop(c);
}

void dr_conn_drop(dr_conn *c)
{
	if (!c)
		return;
	if (c->ssl)
		SSL_free(c->ssl); /* frees no socket: SSL_set_fd's BIO does not own it */
	if (c->fd >= 0)
		close(c->fd);
	if (c->reader)
		redisReaderFree(c->reader);
	ERR_clear_error();
	dura_free(c);
}
