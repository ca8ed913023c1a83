/* The SQL migrations in sql/migrations/, embedded at build time, in version order. */
#ifndef MXS_MIGRATIONS_H
#define MXS_MIGRATIONS_H

#include <stddef.h>

struct mxs_migration {
	int version;       /* NNNN from the file name */
	const char *name;  /* file name without directory */
	const char *sql;   /* the whole file */
	const char *sha256; /* of the file, hex: recorded when applied, checked on every start */
};

extern const struct mxs_migration mxs_migrations[];
extern const size_t mxs_migrations_count;

#endif
