/* The ready file of the fleet's servers: how a test harness learns the port, and when. */
#ifndef FLEET_READYFILE_H
#define FLEET_READYFILE_H

/*
 * Write port and a newline to path through a rename, so a waiter polling for the file
 * never reads it half-written. Returns 0, or -1 (errno set).
 */
int fleet_ready_file_write(const char *path, int port);

#endif
