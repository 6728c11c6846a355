/*
 * nsb_name.h: the check of a name against a rule generated from Go
 * (internal/names, in nsbox_gen.h), for the fast paths.
 */
#ifndef NSBOX_NSB_NAME_H
#define NSBOX_NSB_NAME_H

#include <string.h>

#include "nsbox_gen.h"

/* nsb_name_ok accepts a name the rule r accepts that is made of ASCII bytes
 * only: a strict subset of what Go accepts (a name with other UTF-8 bytes,
 * or one that looks like a flag where the rule allows it, is left to Go).
 * Every name of the fast paths goes through it: the rules differ only in
 * their generated tables. */
static __attribute__((unused)) int nsb_name_ok(const struct nsb_name_rule *r, const char *s)
{
	size_t n = 1;
	if ((unsigned char)s[0] >= 128 || !r->first[(unsigned char)s[0]] || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0; /* "" too: first[0] is 0 */
	for (; s[n]; n++)
		if (n >= r->max || (unsigned char)s[n] >= 128 || !r->ascii_ok[(unsigned char)s[n]])
			return 0;
	return 1;
}

#endif
