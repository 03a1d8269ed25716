/*
 * conn.h - one connection to one Redis server (conn.c): the socket (TCP,
 * a unix socket, or TLS through OpenSSL), the handshake (AUTH, SELECT),
 * and blocking sends and reads with poll() deadlines. client.c builds the
 * pool, redirections and retries on top of it. Not thread-safe: a
 * connection is one thread's at a time.
 */
#ifndef DURA_REDIS_CONN_H
#define DURA_REDIS_CONN_H

#include "client.h"

#include <openssl/ssl.h>
#include <stdint.h>

typedef struct dr_conn {
	int fd;
	SSL *ssl;             /* NULL without TLS */
	redisReader *reader;  /* what has been read and not yet parsed */
	char where[300];      /* "host:port" or the socket path, for messages */
	int64_t timeout_ms;   /* a reply's deadline */
	/* the pool's (client.c) */
	struct dr_conn *next; /* in the idle stack */
	unsigned gen;         /* the client's node generation when opened */
} dr_conn;

/* Milliseconds on CLOCK_MONOTONIC, for deadlines. */
int64_t dr_mono_ms(void);

/* The TLS context a client's connections share: CA (cfg->tls_ca or the
 * system's), client certificate and key. 0, or DURA_EINVAL naming the
 * file OpenSSL refused. */
int dr_tls_ctx_new(SSL_CTX **out, const dr_client_config *cfg);

/* Connect to host:port (or cfg->socket when host is NULL), TLS when ctx
 * is not NULL, then AUTH and SELECT as cfg says. 0, or DURA_EIO (cannot
 * connect), DURA_ETIMEOUT, DURA_EINVAL (password refused, certificate
 * refused), DURA_ENOMEM, with the error set. */
int dr_conn_open(dr_conn **out, const dr_client_config *cfg, SSL_CTX *ctx, const char *host, int port);

/* Send len bytes. 0 or DURA_EIO / DURA_ETIMEOUT (error set): the
 * connection is then unusable. */
int dr_conn_send(dr_conn *c, const char *buf, size_t len);

/* Format argv (binary-safe) and send it: as dr_conn_send, or DURA_ENOMEM. */
int dr_conn_sendv(dr_conn *c, int argc, const char **argv, const size_t *lens);

/* The next reply within timeout_ms (< 0: c->timeout_ms). 0 with *out, or
 * DURA_ETIMEOUT (nothing complete came; the connection stays usable only
 * when no reply was owed, as on a subscription), DURA_EIO (lost or a
 * protocol error), DURA_ENOMEM. The error is set. */
int dr_conn_read(dr_conn *c, redisReply **out, int64_t timeout_ms);

/* 1 when an idle connection still looks alive: nothing to read, no hang
 * up (a server that restarted closed it while it sat in the pool). */
int dr_conn_alive(dr_conn *c);

/* Close politely (TLS close_notify) and free. NULL is ignored. */
void dr_conn_close(dr_conn *c);

/* A forked child's copy: close the fd and free, without a byte on the
 * wire (no TLS shutdown), so the parent's session is untouched. */
void dr_conn_drop(dr_conn *c);

#endif /* DURA_REDIS_CONN_H */
