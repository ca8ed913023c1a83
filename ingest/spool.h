/*
 * The durable spool: lines that could not reach the database yet, in append-only JSONL
 * files under one directory, fsync'd before the caller forgets them. Each file starts
 * with a header line naming the database (mxs_meta.instance_id) and the scan it belongs
 * to, so a spool is only ever replayed into its own database and scan. A writer holds
 * an flock on its file; replay takes the same lock, so a file is never replayed while it
 * is written, and a file left by a killed process is free to replay.
 *
 * File name: <scan>-<pid>-<epoch ms>-<seq>.jsonl
 */
#ifndef MXS_SPOOL_H
#define MXS_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "linevec.h"

struct spool_writer;

/* Open a new spool file for scan in dir (created if missing). NULL with err on failure. */
struct spool_writer *spool_writer_open(const char *dir, const char *instance, int64_t scan,
                                       char *err, size_t errlen);
/* Append lines; with sync, fsync before returning. 0, or -1 with err. */
int spool_writer_append(struct spool_writer *w, const char *data, size_t len, int sync,
                        char *err, size_t errlen);
int spool_writer_sync(struct spool_writer *w);
/* A duplicate of the file's descriptor (to fsync without holding the writer), or -1. */
int spool_writer_dup(const struct spool_writer *w);
/* fsync, unlock and close; the file stays for replay. */
void spool_writer_close(struct spool_writer *w);
uint64_t spool_writer_lines(const struct spool_writer *w);

/* A spool file claimed for replay: locked, header checked. */
struct spool_file {
	char *path;        /* owned */
	int fd;            /* holds the lock */
	FILE *fp;          /* reading position, opened by spool_file_read */
	int64_t scan;
};

/*
 * Claim every file in dir that belongs to instance and is not being written. Returns
 * the number claimed (an array owned by the caller, freed with spool_files_free), or -1.
 */
int spool_claim(const char *dir, const char *instance, struct spool_file **files);
void spool_files_free(struct spool_file *files, int n);
/*
 * Read the next up to max_lines lines of a claimed file into v (the header skipped, a
 * torn last line dropped). Returns how many, 0 at the end, -1 on error.
 */
int spool_file_read(struct spool_file *f, size_t max_lines, struct linevec *v, char *err,
                    size_t errlen);
/* The file's lines are stored: delete it (and make the deletion durable). */
int spool_file_done(struct spool_file *f);
/* Lines waiting in dir for instance (for the count at close). */
uint64_t spool_pending_lines(const char *dir, const char *instance);

#endif
