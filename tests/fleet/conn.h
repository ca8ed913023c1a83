/* One simulated SMTP session of the fleet, scripted by its behaviour. */
#ifndef FLEET_CONN_H
#define FLEET_CONN_H

#include <event2/util.h>

#include "addr.h"
#include "server.h"

/*
 * Take over the accepted socket fd, whose local address is local, and start serving it
 * with the behaviour of that address. The session frees itself when it ends. Returns 0,
 * or -1 (out of memory; fd is closed).
 */
int fconn_start(struct fleet *fl, evutil_socket_t fd, const struct fleet_addr *local);

/* Close and free every open session (at shutdown). */
void fconn_free_all(struct fleet *fl);

#endif
