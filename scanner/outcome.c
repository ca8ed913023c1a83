#include "outcome.h"

const char *const mxs_outcome_names[MXS_OUT_LAST] = {
	[MXS_OUT_NONE] = "none",
	[MXS_OUT_SUCCESS] = "success",
	[MXS_OUT_NO_STARTTLS] = "no-starttls",
	[MXS_OUT_STARTTLS_REFUSED] = "starttls-refused",
	[MXS_OUT_HANDSHAKE_ERROR] = "handshake-error",
	[MXS_OUT_HANDSHAKE_TIMEOUT] = "handshake-timeout",
	[MXS_OUT_CONNECTION_REFUSED] = "connection-refused",
	[MXS_OUT_CONNECTION_TIMEOUT] = "connection-timeout",
	[MXS_OUT_UNREACHABLE] = "unreachable",
	[MXS_OUT_GREETING_TIMEOUT] = "greeting-timeout",
	[MXS_OUT_GREETING_REJECTED] = "greeting-rejected",
	[MXS_OUT_EHLO_REJECTED] = "ehlo-rejected",
	[MXS_OUT_EHLO_TIMEOUT] = "ehlo-timeout",
	[MXS_OUT_STARTTLS_TIMEOUT] = "starttls-timeout",
	[MXS_OUT_PEER_CLOSED] = "peer-closed",
	[MXS_OUT_PROTOCOL_ERROR] = "protocol-error",
	[MXS_OUT_DEADLINE] = "deadline",
	[MXS_OUT_BLOCKED] = "blocked",
	[MXS_OUT_BAD_TARGET] = "bad-target",
	[MXS_OUT_DUPLICATE] = "duplicate",
	[MXS_OUT_INTERRUPTED] = "interrupted",
	[MXS_OUT_LOCAL_ERROR] = "local-error",
};

const char *const mxs_phase_names[MXS_PHASE_LAST] = {
	[MXS_PHASE_NONE] = "none",
	[MXS_PHASE_CONNECT] = "connect",
	[MXS_PHASE_GREETING] = "greeting",
	[MXS_PHASE_EHLO] = "ehlo",
	[MXS_PHASE_HELO] = "helo",
	[MXS_PHASE_STARTTLS] = "starttls",
	[MXS_PHASE_HANDSHAKE] = "handshake",
	[MXS_PHASE_EHLO_TLS] = "ehlo_tls",
	[MXS_PHASE_QUIT] = "quit",
	[MXS_PHASE_DONE] = "done",
};
