#include "mf.h"

#include <stdarg.h>
#include <stdio.h>

int mf_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return MF_ERROR;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return MF_ERROR;
}
