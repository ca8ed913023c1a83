/*
 * The embedded PostgreSQL cluster: with no server given, mxsurvey keeps its own under
 * <data dir>/pg (data/, run/ for the private socket, server.log), created with initdb on
 * first use, started with pg_ctl, reused later, stopped by `mxsurvey db stop`.
 *
 * PostgreSQL refuses to run as root, so when we are root the cluster belongs to an
 * unprivileged system user (postgres, from the Debian package) and every initdb/pg_ctl
 * runs in a forked child that has switched to it. That user must be able to reach the
 * directory: root's home is usually closed (0700), and then the cluster lives under
 * /var/lib/mxsurvey instead.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ingest.h"
#include "log.h"
#include "pgutil.h"

#define CLUSTER_USER "mxsurvey"       /* the superuser initdb creates */
#define CLUSTER_DB "mxsurvey"
#define CLUSTER_PORT "5432"           /* only names the socket file in our private dir */
#define ROOT_FALLBACK "/var/lib/mxsurvey"

const char *const mxs_cluster_state_names[MXS_CLUSTER_STATE_LAST] = {
	[MXS_CLUSTER_ABSENT] = "absent",
	[MXS_CLUSTER_STOPPED] = "stopped",
	[MXS_CLUSTER_RUNNING] = "running",
};

/* Who runs the server: ourselves, or when root, the unprivileged owner. */
struct runas {
	uid_t uid;
	gid_t gid;
	int drop;     /* 1: switch to uid/gid in the child */
};

struct cluster {
	char base[1100];   /* <data dir>/pg */
	char data[1200];
	char run[1200];
	char log[1200];
	char bindir[700];
	struct runas who;
};

int mxs_data_dir(char *out, size_t outlen)
{
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	int n;
	if (xdg != NULL && xdg[0] == '/') {
		n = snprintf(out, outlen, "%s/mxsurvey", xdg);
	} else {
		if (home == NULL || home[0] == '\0') {
			struct passwd *pw = getpwuid(getuid());
			home = pw ? pw->pw_dir : NULL;
		}
		if (home == NULL)
			return -1;
		n = snprintf(out, outlen, "%s/.local/share/mxsurvey", home);
	}
	return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* mkdir -p with mode for the directories it creates. */
static int mkdirs(const char *path, mode_t mode)
{
	char tmp[1300];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Can uid/gid search every directory on the way to path (mode bits only)? */
static int can_traverse(const char *path, uid_t uid, gid_t gid)
{
	char tmp[1100];
	struct stat st;
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp;; p++) {
		if (*p == '/' || *p == '\0') {
			char saved = *p;
			*p = '\0';
			if (tmp[0] != '\0' && stat(tmp, &st) == 0) {
				mode_t need = st.st_uid == uid ? S_IXUSR : st.st_gid == gid ? S_IXGRP : S_IXOTH;
				if (!(st.st_mode & need))
					return 0;
			}
			*p = saved;
			if (saved == '\0')
				break;
		}
	}
	return 1;
}

/* Highest-versioned directory with initdb and pg_ctl. */
static int find_bindir(char *out, size_t outlen)
{
	const char *env = getenv("MXS_PG_BINDIR");
	char path[600];
	if (env != NULL && *env) {
		snprintf(out, outlen, "%s", env);
		return 0;
	}
	glob_t g;
	int best = -1;
	if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			int v = atoi(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"));
			if (v > best) {
				best = v;
				snprintf(path, sizeof(path), "%s", g.gl_pathv[i]);
			}
		}
		globfree(&g);
	}
	if (best >= 0) {
		*strrchr(path, '/') = '\0';
		snprintf(out, outlen, "%s", path);
		return 0;
	}
	/* then PATH, then the source-build default */
	const char *pathenv = getenv("PATH");
	char *copy = strdup(pathenv ? pathenv : "/usr/local/bin:/usr/bin");
	if (copy == NULL)
		return -1;
	for (char *save, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof(path), "%s/initdb", d);
		if (access(path, X_OK) == 0) {
			snprintf(out, outlen, "%s", d);
			free(copy);
			return 0;
		}
	}
	free(copy);
	if (access("/usr/local/pgsql/bin/initdb", X_OK) == 0) {
		snprintf(out, outlen, "/usr/local/pgsql/bin");
		return 0;
	}
	return -1;
}

/* Run argv (argv[0] a program in the cluster's bindir) as the cluster owner. */
static int run_tool(const struct cluster *cl, char *const argv[], int quiet)
{
	char prog[800];
	snprintf(prog, sizeof(prog), "%s/%s", cl->bindir, argv[0]);
	/* argv[0] by its full path: initdb finds its sibling 'postgres' through argv[0], and
	 * through PATH when argv[0] has no '/', which under systemd or 'env -i' does not
	 * name the PostgreSQL bindir */
	char *args[32];
	size_t n = 1;
	args[0] = prog;
	for (; argv[n] != NULL; n++) {
		if (n + 1 >= sizeof(args) / sizeof(args[0]))
			return -1;
		args[n] = argv[n];
	}
	args[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (cl->who.drop &&
		    (setgroups(0, NULL) != 0 || setgid(cl->who.gid) != 0 || setuid(cl->who.uid) != 0))
			_exit(126);
		int fd = open(quiet ? "/dev/null" : cl->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0) {
			dup2(nul, STDIN_FILENO);
			close(nul);
		}
		/* our environment must not point the tools at another cluster */
		unsetenv("PGDATA");
		unsetenv("PGPORT");
		unsetenv("PGHOST");
		setenv("LC_ALL", "C", 1);
		if (chdir(cl->base) != 0)
			_exit(126);
		execv(prog, args);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* chown -R path to the owner (root only). */
static void chown_tree(const char *path, uid_t uid, gid_t gid)
{
	if (lchown(path, uid, gid) != 0)
		return;
	DIR *d = opendir(path);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char sub[1400];
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (e->d_type == DT_DIR)
			chown_tree(sub, uid, gid);
		else
			(void)!lchown(sub, uid, gid);
	}
	closedir(d);
}

static int cluster_init(struct cluster *cl, const char *base_in, char *err, size_t errlen)
{
	char base[1024];
	memset(cl, 0, sizeof(*cl));
	if (base_in != NULL)
		snprintf(base, sizeof(base), "%s", base_in);
	else if (mxs_data_dir(base, sizeof(base)) != 0) {
		snprintf(err, errlen, "no data directory: set XDG_DATA_HOME or HOME");
		return -1;
	}
	cl->who.uid = getuid();
	cl->who.gid = getgid();
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("postgres");
		if (pw == NULL) {
			snprintf(err, errlen,
			         "running as root, and PostgreSQL will not: no 'postgres' user to run it as");
			return -1;
		}
		cl->who.uid = pw->pw_uid;
		cl->who.gid = pw->pw_gid;
		cl->who.drop = 1;
		if (!can_traverse(base, cl->who.uid, cl->who.gid)) {
			mxs_info("db", "cluster dir=%s unreachable for user=postgres, using %s", base,
			         ROOT_FALLBACK);
			snprintf(base, sizeof(base), "%s", ROOT_FALLBACK);
		}
	}
	snprintf(cl->base, sizeof(cl->base), "%s/pg", base);
	snprintf(cl->data, sizeof(cl->data), "%s/data", cl->base);
	snprintf(cl->run, sizeof(cl->run), "%s/run", cl->base);
	snprintf(cl->log, sizeof(cl->log), "%s/server.log", cl->base);
	if (find_bindir(cl->bindir, sizeof(cl->bindir)) != 0) {
		snprintf(err, errlen, "PostgreSQL server programs (initdb, pg_ctl) not found; "
		                      "install postgresql or set MXS_PG_BINDIR");
		return -1;
	}
	return 0;
}

static enum mxs_cluster_state state_of(const struct cluster *cl)
{
	char pgv[1300];
	snprintf(pgv, sizeof(pgv), "%s/PG_VERSION", cl->data);
	if (access(pgv, F_OK) != 0)
		return MXS_CLUSTER_ABSENT;
	char *const argv[] = { "pg_ctl", "status", "-D", (char *)cl->data, NULL };
	return run_tool(cl, argv, 1) == 0 ? MXS_CLUSTER_RUNNING : MXS_CLUSTER_STOPPED;
}

enum mxs_cluster_state mxs_cluster_status(const char *base)
{
	struct cluster cl;
	char err[256];
	if (cluster_init(&cl, base, err, sizeof(err)) != 0)
		return MXS_CLUSTER_ABSENT;
	return state_of(&cl);
}

/*
 * Who may connect: nothing listens on TCP, so pg_hba.conf has one local line, peer
 * authentication mapped (pg_ident.conf) from the operating-system user running mxsurvey,
 * and root, to the cluster's superuser. No "trust" anywhere.
 */
static int write_auth(const struct cluster *cl, char *err, size_t errlen)
{
	char path[1300];
	struct passwd *pw = getpwuid(geteuid());
	FILE *f;

	snprintf(path, sizeof(path), "%s/pg_hba.conf", cl->data);
	if ((f = fopen(path, "w")) == NULL)
		goto fail;
	fprintf(f, "# mxsurvey's embedded cluster: no TCP listener (listen_addresses = ''), one\n"
	           "# socket in a directory only its owner can enter; the users of pg_ident.conf\n"
	           "# map 'mxsurvey' may connect as the superuser, by peer authentication.\n"
	           "local all " CLUSTER_USER " peer map=mxsurvey\n");
	if (fclose(f) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/pg_ident.conf", cl->data);
	if ((f = fopen(path, "a")) == NULL)
		goto fail;
	fprintf(f, "mxsurvey root " CLUSTER_USER "\n");
	if (pw != NULL && strcmp(pw->pw_name, "root") != 0)
		fprintf(f, "mxsurvey %s " CLUSTER_USER "\n", pw->pw_name);
	if (fclose(f) != 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	return -1;
}

/* Make sure the database exists; the cluster only has "postgres" after initdb. */
static int ensure_database(const struct cluster *cl, char *err, size_t errlen)
{
	char ci[1500];
	snprintf(ci, sizeof(ci), "host=%s port=" CLUSTER_PORT " user=" CLUSTER_USER " dbname=postgres",
	         cl->run);
	PGconn *c = pg_connect(ci, "mxsurvey", err, errlen);
	if (c == NULL)
		return -1;
	char *have = pg_query_string(c, "SELECT count(*) FROM pg_database WHERE datname = '" CLUSTER_DB "'",
	                             err, errlen);
	int rc = have == NULL ? -1 : 0;
	if (have != NULL && strcmp(have, "0") == 0)
		rc = pg_exec(c, "CREATE DATABASE " CLUSTER_DB " ENCODING 'UTF8' TEMPLATE template0", err,
		             errlen);
	free(have);
	PQfinish(c);
	return rc;
}

int mxs_cluster_ensure(const char *base, char *conninfo, size_t conninfo_len, char *err,
                       size_t errlen)
{
	struct cluster cl;
	char lockpath[1300];
	int lock = -1, rc = -1;

	if (cluster_init(&cl, base, err, errlen) != 0)
		return -1;
	/*
	 * The directories above the cluster's own must let its owner pass through when it
	 * is not us (search only, 0711); the cluster directory itself is private to it.
	 */
	char parent[1100];
	snprintf(parent, sizeof(parent), "%s", cl.base);
	*strrchr(parent, '/') = '\0';
	if (mkdirs(parent, cl.who.drop ? 0711 : 0700) != 0 || mkdirs(cl.base, 0700) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", cl.base, strerror(errno));
		return -1;
	}
	if (cl.who.drop && !can_traverse(parent, cl.who.uid, cl.who.gid)) {
		snprintf(err, errlen, "user postgres cannot reach %s; choose another --data-dir", cl.base);
		return -1;
	}
	/* one process at a time creates or starts the cluster */
	snprintf(lockpath, sizeof(lockpath), "%s/lock", cl.base);
	lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX) != 0) {
		snprintf(err, errlen, "cannot lock %s: %s", lockpath, strerror(errno));
		goto out;
	}
	if (cl.who.drop)
		chown_tree(cl.base, cl.who.uid, cl.who.gid);

	enum mxs_cluster_state st = state_of(&cl);
	if (st == MXS_CLUSTER_ABSENT) {
		mxs_info("db", "cluster create dir=%s bindir=%s", cl.data, cl.bindir);
		char *const argv[] = { "initdb", "-D", cl.data, "-U", CLUSTER_USER, "--auth-local=peer",
			"--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync", NULL };
		if (run_tool(&cl, argv, 0) != 0) {
			snprintf(err, errlen, "initdb failed; see %s", cl.log);
			goto out;
		}
		/* private socket only: no TCP listener, socket in a directory only we can enter */
		char conf[1300];
		snprintf(conf, sizeof(conf), "%s/postgresql.auto.conf", cl.data);
		FILE *f = fopen(conf, "a");
		if (f == NULL) {
			snprintf(err, errlen, "cannot write %s: %s", conf, strerror(errno));
			goto out;
		}
		fprintf(f, "listen_addresses = ''\nunix_socket_directories = '%s'\n"
		           "port = " CLUSTER_PORT "\nunix_socket_permissions = 0700\n"
		           "max_wal_size = '2GB'\n", cl.run);
		fclose(f);
		if (write_auth(&cl, err, errlen) != 0)
			goto out;
		if (cl.who.drop)
			chown_tree(cl.base, cl.who.uid, cl.who.gid);
		st = MXS_CLUSTER_STOPPED;
	}
	if (mkdirs(cl.run, 0700) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", cl.run, strerror(errno));
		goto out;
	}
	if (cl.who.drop)
		(void)!chown(cl.run, cl.who.uid, cl.who.gid);
	if (st == MXS_CLUSTER_STOPPED) {
		mxs_info("db", "cluster start dir=%s", cl.data);
		char *const argv[] = { "pg_ctl", "start", "-D", cl.data, "-l", cl.log, "-w", "-t", "60",
			"-s", NULL };
		if (run_tool(&cl, argv, 0) != 0) {
			snprintf(err, errlen, "pg_ctl start failed; see %s", cl.log);
			goto out;
		}
	}
	if (ensure_database(&cl, err, errlen) != 0)
		goto out;
	snprintf(conninfo, conninfo_len,
	         "host=%s port=" CLUSTER_PORT " user=" CLUSTER_USER " dbname=" CLUSTER_DB, cl.run);
	rc = 0;
out:
	if (lock >= 0)
		close(lock);
	return rc;
}

int mxs_cluster_stop(const char *base, char *err, size_t errlen)
{
	struct cluster cl;
	if (cluster_init(&cl, base, err, errlen) != 0)
		return -1;
	if (state_of(&cl) != MXS_CLUSTER_RUNNING)
		return 0;
	char *const argv[] = { "pg_ctl", "stop", "-D", cl.data, "-m", "fast", "-w", "-s", NULL };
	if (run_tool(&cl, argv, 0) != 0) {
		snprintf(err, errlen, "pg_ctl stop failed; see %s", cl.log);
		return -1;
	}
	return 0;
}
