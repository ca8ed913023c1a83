#include "codes.h"

#include <string.h>

const char *const db_outcome_names[DB_OUTCOME_LAST] = {
	[DB_OUTCOME_UNKNOWN] = "unknown",
	[DB_OUTCOME_SUCCESS] = "success",
	[DB_OUTCOME_NO_STARTTLS] = "no-starttls",
	[DB_OUTCOME_STARTTLS_REFUSED] = "starttls-refused",
	[DB_OUTCOME_HANDSHAKE_ERROR] = "handshake-error",
	[DB_OUTCOME_HANDSHAKE_TIMEOUT] = "handshake-timeout",
	[DB_OUTCOME_CONNECTION_REFUSED] = "connection-refused",
	[DB_OUTCOME_CONNECTION_TIMEOUT] = "connection-timeout",
	[DB_OUTCOME_UNREACHABLE] = "unreachable",
	[DB_OUTCOME_GREETING_TIMEOUT] = "greeting-timeout",
	[DB_OUTCOME_GREETING_REJECTED] = "greeting-rejected",
	[DB_OUTCOME_EHLO_REJECTED] = "ehlo-rejected",
	[DB_OUTCOME_EHLO_TIMEOUT] = "ehlo-timeout",
	[DB_OUTCOME_STARTTLS_TIMEOUT] = "starttls-timeout",
	[DB_OUTCOME_PEER_CLOSED] = "peer-closed",
	[DB_OUTCOME_PROTOCOL_ERROR] = "protocol-error",
	[DB_OUTCOME_DEADLINE] = "deadline",
	[DB_OUTCOME_BLOCKED] = "blocked",
	[DB_OUTCOME_BAD_TARGET] = "bad-target",
	[DB_OUTCOME_INTERRUPTED] = "interrupted",
	[DB_OUTCOME_LOCAL_ERROR] = "local-error",
};

const char *const db_phase_names[DB_PHASE_LAST] = {
	[DB_PHASE_UNKNOWN] = "unknown",
	[DB_PHASE_CONNECT] = "connect",
	[DB_PHASE_GREETING] = "greeting",
	[DB_PHASE_EHLO] = "ehlo",
	[DB_PHASE_HELO] = "helo",
	[DB_PHASE_STARTTLS] = "starttls",
	[DB_PHASE_HANDSHAKE] = "handshake",
	[DB_PHASE_EHLO_TLS] = "ehlo_tls",
	[DB_PHASE_QUIT] = "quit",
	[DB_PHASE_DONE] = "done",
	[DB_PHASE_NONE] = "none",
};

static int lookup(const char *const *names, int count, const char *name)
{
	/* code 0 is "unknown" itself and never matches a record value */
	for (int i = 1; i < count; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return 0;
}

int db_outcome_code(const char *name)
{
	return lookup(db_outcome_names, DB_OUTCOME_LAST, name);
}

int db_phase_code(const char *name)
{
	return lookup(db_phase_names, DB_PHASE_LAST, name);
}

int mxs_tls_version_code(const char *name)
{
	static const struct { const char *name; int code; } versions[] = {
		{ "SSLv3", 0x0300 }, { "TLSv1", 0x0301 }, { "TLSv1.1", 0x0302 },
		{ "TLSv1.2", 0x0303 }, { "TLSv1.3", 0x0304 },
	};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if (strcmp(versions[i].name, name) == 0)
			return versions[i].code;
	return 0;
}
