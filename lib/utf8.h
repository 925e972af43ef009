/* utf8.h — text from elsewhere (account names, servers' error messages)
 * made fit for JSON, whose strings must be UTF-8. */
#ifndef MF_UTF8_H
#define MF_UTF8_H

#include <stddef.h>

/* Copies in to out (NUL-terminated, truncated at a character boundary to
 * fit outlen), every byte that does not start a valid, shortest-form UTF-8
 * sequence (no surrogates, nothing above U+10FFFF) replaced by U+FFFD.
 * 3 * strlen(in) + 1 bytes of out always suffice. */
void mf_utf8_clean(const char *in, char *out, size_t outlen);

#endif
