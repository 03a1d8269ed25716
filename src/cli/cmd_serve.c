/*
 * cmd_serve.c - `dura serve`: the web dashboard and /metrics, from the
 * store (src/cli/serve/ has the pages and the HTTP side).
 *
 *   dura serve [--listen ADDR:PORT] [--token-file FILE] [--timeout SECONDS]
 *
 * Binds 127.0.0.1:8080 unless told otherwise (port 0: any free port; the
 * one taken is printed). Reading pages needs nothing; actions need the
 * token: the first line of --token-file, or one made at random and
 * printed once on stderr. Runs until SIGINT or SIGTERM.
 */
#include "cli.h"
#include "serve/serve.h"
#include "serve/serve_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const cli_opt serve_opts[] = {
	{"listen", 'l', "ADDR:PORT", "address to listen on (default 127.0.0.1:8080; [::1]:PORT for IPv6; port 0: any)"},
	{"token-file", 0, "FILE", "the token actions need: the file's first line (default: a random one, printed once)"},
	{"timeout", 0, "SECONDS", "close a connection idle this long (default 10, 1 to 3600)"},
	{NULL, 0, NULL, NULL},
};

static int random_hex(char out[65])
{
	unsigned char raw[32];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++)
		sprintf(out + 2 * i, "%02x", raw[i]);
	return 0;
}

/* The token from the file's first line: 16 to 64 printable ASCII bytes. */
static int read_token(const char *path, char out[65])
{
	FILE *f = fopen(path, "r");
	if (!f)
		return cli_errorf("--token-file %s: %s", path, strerror(errno));
	char line[256];
	char *got = fgets(line, sizeof(line), f);
	fclose(f);
	if (!got)
		return cli_errorf("--token-file %s: the file is empty", path);
	size_t n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n < 16 || n > 64)
		return cli_errorf("--token-file %s: the token must be 16 to 64 characters (it has %zu)", path, n);
	for (size_t i = 0; i < n; i++)
		if (line[i] <= ' ' || line[i] > '~' || strchr(";,\"\\", line[i]))
			return cli_errorf("--token-file %s: the token must be printable ASCII without spaces, quotes, "
			                  "backslashes, ';' or ',' (it is a cookie's value)",
			                  path);
	memcpy(out, line, n + 1);
	return 0;
}

/* "127.0.0.1:8080", "[::1]:0", "localhost:9000" into *ss. */
static int parse_listen(const cli *c, const char *text, struct sockaddr_storage *ss)
{
	char host[128];
	const char *port;
	memset(ss, 0, sizeof(*ss));
	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (!end || end[1] != ':' || (size_t)(end - text - 1) >= sizeof(host))
			return cli_usagef(c, "--listen %s: give [IPV6]:PORT", text);
		memcpy(host, text + 1, (size_t)(end - text - 1));
		host[end - text - 1] = '\0';
		port = end + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (!colon || (size_t)(colon - text) >= sizeof(host))
			return cli_usagef(c, "--listen %s: give ADDR:PORT", text);
		memcpy(host, text, (size_t)(colon - text));
		host[colon - text] = '\0';
		port = colon + 1;
	}
	char *end;
	long p = strtol(port, &end, 10);
	if (!*port || *end || p < 0 || p > 65535)
		return cli_usagef(c, "--listen %s: the port must be from 0 to 65535", text);
	if (strcmp(host, "localhost") == 0 || !*host)
		strcpy(host, "127.0.0.1");
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)p);
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)p);
	} else {
		return cli_usagef(c, "--listen %s: the address must be an IPv4 or IPv6 address, or localhost", text);
	}
	return 0;
}

static int run_serve(cli *c, const cli_args *a)
{
	const char *listen = cli_opt_get(a, "listen");
	const char *token_file = cli_opt_get(a, "token-file");
	const char *timeout = cli_opt_get(a, "timeout");
	struct sockaddr_storage ss;
	int64_t tmo = 10;
	int rc;
	if ((rc = parse_listen(c, listen ? listen : "127.0.0.1:8080", &ss)) != 0)
		return rc;
	if (timeout && (rc = cli_parse_i64(c, "--timeout", timeout, 1, &tmo)) != 0)
		return rc;
	if (tmo > 3600)
		return cli_usagef(c, "--timeout %s: at most 3600 seconds", timeout);
	serve_ctx ctx;
	memset(&ctx, 0, sizeof(ctx));
	if (token_file ? read_token(token_file, ctx.token) != 0 : random_hex(ctx.token) != 0)
		return token_file ? CLI_ERROR : cli_errorf("no random bytes for a token");
	if (random_hex(ctx.csrf) != 0 || random_hex(ctx.login_csrf) != 0)
		return cli_errorf("no random bytes for a CSRF token");
	if (cli_open(c))
		return CLI_ERROR;
	dura_store_info info;
	if ((rc = dura_store_info_get(c->store, &info)) != 0)
		return cli_fail(rc);
	if ((rc = dura_engine_open(&ctx.engine, c->store, NULL)) != 0)
		return cli_fail(rc);
	ctx.store = c->store;
	ctx.store_url = info.location;

	/* SIGINT and SIGTERM are taken by sigwait below, in this thread only:
	 * block them before the daemon's threads start, so none of those gets them */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	serve_http *h = NULL;
	char host[INET6_ADDRSTRLEN] = "";
	if (ss.ss_family == AF_INET6) {
		struct in6_addr *a6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		inet_ntop(AF_INET6, a6, host, sizeof(host));
		ctx.loopback = IN6_IS_ADDR_LOOPBACK(a6);
		snprintf(ctx.listen_host, sizeof(ctx.listen_host), "[%s]", host);
	} else {
		struct in_addr *a4 = &((struct sockaddr_in *)&ss)->sin_addr;
		inet_ntop(AF_INET, a4, host, sizeof(host));
		ctx.loopback = (ntohl(a4->s_addr) >> 24) == 127;
		snprintf(ctx.listen_host, sizeof(ctx.listen_host), "%s", host);
	}
	/* the Host check needs the port: the one asked for, or (port 0) the
	 * one taken, which no client knows before it is printed */
	ctx.port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                          : ((struct sockaddr_in *)&ss)->sin_port);
	if (serve_http_start(&h, &ctx, (struct sockaddr *)&ss, (unsigned)tmo, &ctx.port) != 0) {
		dura_engine_close(ctx.engine);
		return cli_errorf("cannot listen on %s (in use, or not an address of this host)",
		                  listen ? listen : "127.0.0.1:8080");
	}
	fprintf(stderr, "dura serve: http://%s%s%s:%d/ on %s\n", ss.ss_family == AF_INET6 ? "[" : "", host,
	        ss.ss_family == AF_INET6 ? "]" : "", ctx.port, info.location);
	if (!token_file)
		fprintf(stderr, "dura serve: token for actions (shown once): %s\n", ctx.token);
	fflush(stderr);
	int sig = 0;
	sigwait(&set, &sig);
	fprintf(stderr, "dura serve: stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	serve_http_stop(h);
	dura_engine_close(ctx.engine);
	explicit_bzero(ctx.token, sizeof(ctx.token));
	return CLI_OK;
}

const cli_command cli_cmd_serve = {
	.name = "serve",
	.summary = "serve the web dashboard and Prometheus /metrics",
	.help = "Pages: / (runs, with filters), /runs/RUN, /workers, /cache, /schedules, /metrics, /login.\n"
	        "Reading needs nothing; actions (pause, resume, cancel, fork, signal) are POSTs that need the\n"
	        "token (sign in at /login, or send 'Authorization: Bearer TOKEN') and the page's CSRF token.\n"
	        "Stops on SIGINT or SIGTERM.",
	.opts = serve_opts,
	.min_pos = 0,
	.max_pos = 0,
	.store = CLI_STORE,
	.run = run_serve,
};
