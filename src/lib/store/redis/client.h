/*
 * client.h - the Redis store's client: connections, the pool, cluster
 * redirection, retries and scripts. The store's operations (redis.h and
 * the files beside it) talk to the server through this header only.
 *
 * Protocol: Debian's hiredis (0.14) parses replies (redisReader) and
 * formats commands (redisFormatCommandArgv); the socket - TCP, a unix
 * socket, or TLS through OpenSSL, which hiredis 0.14 lacks - is ours
 * (conn.c). A reply is hiredis's redisReply, freed with freeReplyObject.
 *
 * Thread-safety: a dr_client is shared by every thread of the process
 * (its pool has a lock); a dr_sub is one thread's.
 * Fork: dr_client_atfork_child drops the inherited connections without a
 * word on them (no QUIT, no TLS close_notify): the child opens its own.
 */
#ifndef DURA_REDIS_CLIENT_H
#define DURA_REDIS_CLIENT_H

#include "dura/store.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define DR_STORE "redis"

/* What a client is opened with (from the URL, redis.h parses it). */
typedef struct dr_client_config {
	const char *host;      /* "" with a unix socket */
	int port;              /* 6379 when 0 */
	const char *socket;    /* unix socket path, or "" */
	const char *user;      /* Redis 6 ACL user, or "" (then AUTH password alone) */
	const char *password;  /* "" for none; never printed */
	int db;                /* SELECT db when not 0 (a cluster has only 0) */
	int tls;               /* rediss:// */
	const char *tls_ca;    /* CA file, or "" for the system's */
	const char *tls_cert;  /* client certificate, or "" */
	const char *tls_key;   /* its key, or "" */
	int tls_skip_verify;   /* 1: no certificate or host name check at all */
	int64_t connect_timeout_ms; /* 0: 10000 */
	int64_t timeout_ms;         /* a reply's deadline; 0: 30000 */
	int pool_max;               /* 0: 16 */
	int pool_idle;              /* -1: pool_max */
	int64_t retry_ms;           /* how long transient errors are retried; 0: 10000 */
} dr_client_config;

typedef struct dr_client dr_client;

/* Connect once (checks the address, the password, the database and TLS) and
 * learn whether the server is a cluster node. Errors: DURA_EIO (cannot
 * connect), DURA_EINVAL (refused password, bad TLS files, wrong CA), with a
 * message that never contains the password. */
int dr_client_open(dr_client **out, const dr_client_config *cfg);
void dr_client_close(dr_client *c);
void dr_client_atfork_child(dr_client *c);

/* 1 when the server answered cluster_enabled:1 at open. */
int dr_client_is_cluster(const dr_client *c);
/* "host:port" (or the socket path) of the node that serves the store's
 * slot now; borrowed until the next call on c from this thread. */
const char *dr_client_node(dr_client *c);
/* Pool figures for dura_store_stats. */
void dr_client_stats(dr_client *c, dura_store_stats *out);

/*
 * One command (argv, lens: binary-safe). *out gets the reply, which may be
 * an error reply (REDIS_REPLY_ERROR) the caller decides about; transient
 * errors never reach the caller: MOVED and ASK are followed, LOADING, BUSY,
 * TRYAGAIN, CLUSTERDOWN, MASTERDOWN and READONLY are retried with backoff
 * (a new connection for READONLY) for up to retry_ms. A lost connection is
 * retried on a new one when the command was not sent yet, or when
 * flags has DR_IDEMPOTENT; otherwise DURA_EIO with *unsure (when not NULL)
 * set to 1: the server may have run it.
 * Returns 0 (reply in *out) or DURA_EIO / DURA_ETIMEOUT / DURA_ENOMEM.
 */
#define DR_IDEMPOTENT 1
/* A script over many keys of the slot (dr_eval sets it): an ASK means the
 * slot is half moved, and running on the importing node would miss the
 * keys still on the other one, so it waits (with backoff, up to
 * retry_ms) until the slot is whole on one node and MOVED points there;
 * a script stopped by a key already moved away ("non local key") is run
 * again the same way. Every store script touches the keys it writes
 * before its first write, which makes that safe. */
#define DR_NO_ASK 2
int dr_command(dr_client *c, int flags, redisReply **out, int *unsure, int argc, const char **argv, const size_t *lens);
/* The same with printf-free convenience: NULL-terminated C strings. */
int dr_commandv(dr_client *c, int flags, redisReply **out, const char *arg0, ...);

/*
 * A Lua script, loaded once per server (SCRIPT LOAD) and called by SHA
 * (EVALSHA); NOSCRIPT - a restart, a failover, SCRIPT FLUSH, a new node
 * after MOVED - loads it again and calls once more, transparently. source
 * is the whole text (static storage). sha is filled on first use.
 */
typedef struct dr_script {
	const char *name;   /* for messages: "commit", "claim" */
	const char *source;
	char sha[41];       /* "" until computed (SHA-1 of source, hex) */
} dr_script;
#define DR_SCRIPT(name, src) {name, src, ""}

/* EVALSHA sc nkeys argv...: as dr_command (flags, unsure). An error reply
 * that is the script's own (a bug, a wrong type) is returned as DURA_ERROR
 * naming the script with the server's message; *out is then NULL. */
int dr_eval(dr_client *c, dr_script *sc, int flags, redisReply **out, int *unsure, int nkeys, int argc,
            const char **argv, const size_t *lens);

/*
 * Pub/sub for wait_change and wait_ready: a connection of its own to the
 * node (not from the pool), subscribed to one channel. dr_sub_wait: 0 when
 * a message came, DURA_ETIMEOUT after timeout_ms, DURA_EIO when the
 * connection broke (the caller re-checks and may subscribe again).
 */
typedef struct dr_sub dr_sub;
int dr_sub_open(dr_client *c, const char *channel, dr_sub **out);
int dr_sub_wait(dr_sub *s, int64_t timeout_ms);
void dr_sub_close(dr_sub *s);

#endif /* DURA_REDIS_CLIENT_H */
