/* The module table and the helpers every protocol module uses (no sockets here). */
#include "proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "timeutil.h"

const struct mxs_proto *const mxs_protos[] = {
	&mxs_proto_smtp, &mxs_proto_submission, &mxs_proto_submissions,
	&mxs_proto_imap, &mxs_proto_imaps, &mxs_proto_pop3, &mxs_proto_pop3s, NULL,
};

const struct mxs_proto *mxs_proto_find(const char *name)
{
	for (size_t i = 0; mxs_protos[i] != NULL; i++)
		if (strcmp(mxs_protos[i]->name, name) == 0)
			return mxs_protos[i];
	return NULL;
}

const struct mxs_proto *mxs_proto_for_port(int port)
{
	for (size_t i = 0; mxs_protos[i] != NULL; i++)
		if (mxs_protos[i]->default_port == port)
			return mxs_protos[i];
	return NULL;
}

int64_t mxs_conv_since_attempt(const struct mxs_conv *c)
{
	return mxs_mono_ms() - c->t_attempt;
}

void mxs_conv_send_line(struct mxs_conv *c, const char *line)
{
	size_t len = strlen(line);

	mxs_record_transcript(c->rec, 'C', c->tls, mxs_conv_since_attempt(c), line, len);
	c->write(c->io, line, len);
	c->write(c->io, "\r\n", 2);
}

void mxs_conv_took(struct mxs_conv *c, enum mxs_timing which)
{
	c->rec->timing[which] = mxs_mono_ms() - c->t_phase;
}

void mxs_conv_outcome(struct mxs_conv *c, enum mxs_outcome o, const char *fmt, ...)
{
	struct mxs_record *r = c->rec;
	char detail[512];
	va_list ap;

	if (r->outcome != MXS_OUT_NONE)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	/* Once the TLS handshake completed the probe has what it came for. */
	if (r->tls != NULL && o != MXS_OUT_SUCCESS) {
		mxs_record_detail(r, "after the handshake: %s: %s", mxs_outcome_names[o], detail);
		o = MXS_OUT_SUCCESS;
	} else {
		mxs_record_detail(r, "%s", detail);
	}
	r->outcome = o;
}
