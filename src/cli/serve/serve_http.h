/*
 * serve_http.h - starting and stopping the HTTP daemon (http.c), for the
 * command (cmd_serve.c), which need not see libmicrohttpd.
 */
#ifndef DURA_SERVE_HTTP_H
#define DURA_SERVE_HTTP_H

#include "serve.h"

struct sockaddr;
typedef struct serve_http serve_http;

/* Listen on addr (port 0: any free one, written to *port_out) and answer
 * from ctx until serve_http_stop; timeout_s closes idle connections. 0,
 * or -1 when the daemon could not start (the reason is on stderr). */
int serve_http_start(serve_http **out, serve_ctx *ctx, const struct sockaddr *addr, unsigned timeout_s,
                     int *port_out);
void serve_http_stop(serve_http *h);

#endif
