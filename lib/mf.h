/* mf.h — return codes and tiny helpers shared by every mailferry module. */
#ifndef MF_H
#define MF_H

#include <stddef.h>

/* One set of return codes everywhere; "incomplete" is never "error". */
enum { MF_OK = 0, MF_ERROR = -1, MF_AGAIN = -2 };

#define MF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Fill err (if any) with a formatted message; always returns MF_ERROR so
 * callers can write `return mf_err(err, errlen, "...", ...);`. */
int mf_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
