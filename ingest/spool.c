#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "timeutil.h"

struct spool_writer {
	int fd;
	char *path;       /* owned */
	uint64_t lines;
};

static int mkdir_p(const char *path)
{
	char tmp[1200];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* fsync a directory so a created or removed entry survives a crash. */
static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

struct spool_writer *spool_writer_open(const char *dir, const char *instance, int64_t scan,
                                       char *err, size_t errlen)
{
	char path[1400], header[256];
	struct spool_writer *w;
	int fd = -1;

	if (mkdir_p(dir) != 0) {
		snprintf(err, errlen, "spool dir %s: %s", dir, strerror(errno));
		return NULL;
	}
	/* several writers of one process may open a file in the same millisecond */
	for (unsigned seq = 0; fd < 0 && seq < 1000; seq++) {
		snprintf(path, sizeof(path), "%s/%" PRId64 "-%d-%" PRId64 "-%u.jsonl", dir, scan,
		         (int)getpid(), mxs_wall_ms(), seq);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		snprintf(err, errlen, "spool file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen, "spool file %s: lock: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return NULL;
	}
	int n = snprintf(header, sizeof(header),
	                 "{\"type\":\"spool\",\"v\":1,\"db\":\"%s\",\"scan\":%" PRId64 "}\n",
	                 instance, scan);
	if (write_all(fd, header, (size_t)n) != 0 || fsync(fd) != 0) {
		snprintf(err, errlen, "spool file %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return NULL;
	}
	sync_dir(dir);
	w = calloc(1, sizeof(*w));
	if (w == NULL || (w->path = strdup(path)) == NULL) {
		free(w);
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->fd = fd;
	mxs_info("spool", "open file=%s scan=%" PRId64, path, scan);
	return w;
}

int spool_writer_append(struct spool_writer *w, const char *data, size_t len, int sync,
                        char *err, size_t errlen)
{
	if (write_all(w->fd, data, len) != 0 || (sync && fsync(w->fd) != 0)) {
		snprintf(err, errlen, "spool write %s: %s", w->path, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		w->lines += data[i] == '\n';
	return 0;
}

int spool_writer_sync(struct spool_writer *w)
{
	return fsync(w->fd);
}

int spool_writer_dup(const struct spool_writer *w)
{
	return fcntl(w->fd, F_DUPFD_CLOEXEC, 0);
}

uint64_t spool_writer_lines(const struct spool_writer *w)
{
	return w->lines;
}

void spool_writer_close(struct spool_writer *w)
{
	if (w == NULL)
		return;
	(void)fsync(w->fd);
	close(w->fd);   /* releases the lock */
	free(w->path);
	free(w);
}

/* Read the header line: 1 if it names instance (scan in *scan), 0 if not, -1 on error. */
static int read_header(int fd, const char *instance, int64_t *scan)
{
	char buf[512];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *nl = strchr(buf, '\n');
	if (nl == NULL)
		return -1;
	*nl = '\0';
	char want[128];
	snprintf(want, sizeof(want), "\"db\":\"%s\"", instance);
	const char *s = strstr(buf, "\"scan\":");
	if (strncmp(buf, "{\"type\":\"spool\"", 15) != 0 || s == NULL)
		return -1;
	if (strstr(buf, want) == NULL)
		return 0;
	*scan = strtoll(s + 7, NULL, 10);
	return 1;
}

int spool_claim(const char *dir, const char *instance, struct spool_file **files)
{
	DIR *d = opendir(dir);
	struct spool_file *arr = NULL;
	int n = 0, cap = 0;
	struct dirent *e;

	*files = NULL;
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len < 7 || strcmp(e->d_name + len - 6, ".jsonl") != 0)
			continue;
		char path[1400];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		int64_t scan = 0;
		if (flock(fd, LOCK_EX | LOCK_NB) != 0 || read_header(fd, instance, &scan) != 1) {
			close(fd);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			struct spool_file *a = realloc(arr, (size_t)cap * sizeof(*a));
			if (a == NULL) {
				close(fd);
				break;
			}
			arr = a;
		}
		arr[n].path = strdup(path);
		if (arr[n].path == NULL) {
			close(fd);
			break;
		}
		arr[n].fd = fd;
		arr[n].fp = NULL;
		arr[n].scan = scan;
		n++;
	}
	closedir(d);
	*files = arr;
	return n;
}

void spool_files_free(struct spool_file *files, int n)
{
	for (int i = 0; i < n; i++) {
		if (files[i].fp != NULL)
			fclose(files[i].fp);
		if (files[i].fd >= 0)
			close(files[i].fd);
		free(files[i].path);
	}
	free(files);
}

int spool_file_read(struct spool_file *f, size_t max_lines, struct linevec *v, char *err,
                    size_t errlen)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lines = 0;

	if (f->fp == NULL) {
		/* a stream of our own over the locked descriptor; the lock stays with fd */
		int dupfd = dup(f->fd);
		if (dupfd < 0 || (f->fp = fdopen(dupfd, "r")) == NULL) {
			if (dupfd >= 0)
				close(dupfd);
			snprintf(err, errlen, "%s: %s", f->path, strerror(errno));
			return -1;
		}
		n = getline(&line, &cap, f->fp);   /* the header */
		if (n <= 0 || line[n - 1] != '\n') {
			free(line);
			return 0;
		}
	}
	while ((size_t)lines < max_lines && (n = getline(&line, &cap, f->fp)) > 0) {
		if (line[n - 1] != '\n') {
			/* a line cut by a crash mid-write was never acknowledged to anyone */
			mxs_warn("spool", "torn last line dropped file=%s bytes=%zd", f->path, n);
			break;
		}
		if (linevec_add(v, line, (size_t)n) != 0) {
			free(line);
			snprintf(err, errlen, "out of memory reading %s", f->path);
			return -1;
		}
		lines++;
	}
	free(line);
	return lines;
}

int spool_file_done(struct spool_file *f)
{
	int rc = unlink(f->path);
	char *slash = strrchr(f->path, '/');
	if (slash != NULL) {
		*slash = '\0';
		sync_dir(f->path);
		*slash = '/';
	}
	if (f->fp != NULL)
		fclose(f->fp);
	f->fp = NULL;
	close(f->fd);
	f->fd = -1;
	return rc;
}

uint64_t spool_pending_lines(const char *dir, const char *instance)
{
	struct spool_file *files;
	uint64_t lines = 0;
	int n = spool_claim(dir, instance, &files);
	for (int i = 0; i < n; i++) {
		char buf[65536];
		ssize_t r;
		off_t off = 0;
		while ((r = pread(files[i].fd, buf, sizeof(buf), off)) > 0) {
			for (ssize_t k = 0; k < r; k++)
				lines += buf[k] == '\n';
			off += r;
		}
		lines--;   /* the header */
	}
	if (n > 0)
		spool_files_free(files, n);
	return lines;
}
