#include "codes.h"

#include <string.h>

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
