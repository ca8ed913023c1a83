/* The end of an event loop's life. */
#ifndef MXS_EVBASE_H
#define MXS_EVBASE_H

struct event_base;

/*
 * Free an event base whose users are all gone. Callbacks still queued on it run first:
 * a bufferevent freed with deferred callbacks pending is only released by them
 * (libevent 2.1 holds a reference per scheduled deferred callback, and event_base_free
 * cancels such callbacks without dropping it), so freeing the base at once would leak
 * the bufferevent, its buffers and its TLS session. NULL is ignored.
 */
void mxs_event_base_close(struct event_base *base);

#endif
