#include "ehlo.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

int ehlo_extensions(const struct strv *lines, struct strv *ext)
{
	/* Line 0 is "250-hostname greeting"; each further line is "250-KEYWORD params". */
	for (size_t i = 1; i < lines->n; i++) {
		const char *l = lines->v[i];
		const char *text = strlen(l) > 4 ? l + 4 : "";
		if (strv_push(ext, text) < 0)
			return -1;
	}
	return 0;
}

/* Length of the keyword at the start of an extension line. */
static size_t keyword_len(const char *s)
{
	size_t n = 0;
	while (s[n] != '\0' && s[n] != ' ')
		n++;
	return n;
}

int ehlo_has_starttls(const struct strv *ext)
{
	for (size_t i = 0; i < ext->n; i++)
		if (keyword_len(ext->v[i]) == 8 && strncasecmp(ext->v[i], "STARTTLS", 8) == 0)
			return 1;
	return 0;
}

const char *ehlo_mangled_starttls(const struct strv *ext)
{
	static const char want[] = "STARTTLS";

	for (size_t i = 0; i < ext->n; i++) {
		const char *k = ext->v[i];
		int xs = 0, same_or_x = 1, letters = 1;
		if (keyword_len(k) != 8)
			continue;
		for (size_t j = 0; j < 8; j++) {
			char c = (char)toupper((unsigned char)k[j]);
			if (c == 'X')
				xs++;
			else if (c != want[j])
				same_or_x = 0;
			if (!isalpha((unsigned char)c))
				letters = 0;
		}
		/* STARTTLS with letters overwritten by X, or eight letters mostly X ("XXXXXXXA"). */
		if (letters && ((same_or_x && xs > 0) || xs >= 5))
			return k;
	}
	return NULL;
}
