#include "codes.h"

#include <string.h>

const char *const mxs_outcome_names[MXS_OUTCOME_LAST] = {
	[MXS_OUTCOME_UNKNOWN] = "unknown",
	[MXS_OUTCOME_SUCCESS] = "success",
	[MXS_OUTCOME_NO_STARTTLS] = "no-starttls",
	[MXS_OUTCOME_STARTTLS_REFUSED] = "starttls-refused",
	[MXS_OUTCOME_HANDSHAKE_ERROR] = "handshake-error",
	[MXS_OUTCOME_HANDSHAKE_TIMEOUT] = "handshake-timeout",
	[MXS_OUTCOME_CONNECTION_REFUSED] = "connection-refused",
	[MXS_OUTCOME_CONNECTION_TIMEOUT] = "connection-timeout",
	[MXS_OUTCOME_UNREACHABLE] = "unreachable",
	[MXS_OUTCOME_GREETING_TIMEOUT] = "greeting-timeout",
	[MXS_OUTCOME_GREETING_REJECTED] = "greeting-rejected",
	[MXS_OUTCOME_EHLO_REJECTED] = "ehlo-rejected",
	[MXS_OUTCOME_EHLO_TIMEOUT] = "ehlo-timeout",
	[MXS_OUTCOME_STARTTLS_TIMEOUT] = "starttls-timeout",
	[MXS_OUTCOME_PEER_CLOSED] = "peer-closed",
	[MXS_OUTCOME_PROTOCOL_ERROR] = "protocol-error",
	[MXS_OUTCOME_DEADLINE] = "deadline",
	[MXS_OUTCOME_BLOCKED] = "blocked",
	[MXS_OUTCOME_BAD_TARGET] = "bad-target",
	[MXS_OUTCOME_INTERRUPTED] = "interrupted",
	[MXS_OUTCOME_LOCAL_ERROR] = "local-error",
};

const char *const mxs_phase_names[MXS_PHASE_LAST] = {
	[MXS_PHASE_UNKNOWN] = "unknown",
	[MXS_PHASE_CONNECT] = "connect",
	[MXS_PHASE_GREETING] = "greeting",
	[MXS_PHASE_EHLO] = "ehlo",
	[MXS_PHASE_HELO] = "helo",
	[MXS_PHASE_STARTTLS] = "starttls",
	[MXS_PHASE_HANDSHAKE] = "handshake",
	[MXS_PHASE_EHLO_TLS] = "ehlo_tls",
	[MXS_PHASE_QUIT] = "quit",
	[MXS_PHASE_DONE] = "done",
	[MXS_PHASE_NONE] = "none",
};

static int lookup(const char *const *names, int count, const char *name)
{
	/* code 0 is "unknown" itself and never matches a record value */
	for (int i = 1; i < count; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return 0;
}

int mxs_outcome_code(const char *name)
{
	return lookup(mxs_outcome_names, MXS_OUTCOME_LAST, name);
}

int mxs_phase_code(const char *name)
{
	return lookup(mxs_phase_names, MXS_PHASE_LAST, name);
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
