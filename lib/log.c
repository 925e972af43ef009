#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* Process-wide logging settings: written only by the main thread at start
 * and reload, read by workers; a torn read only changes where one line goes. */
static struct {
	const char *ident;
	bool use_syslog;
	bool debug;
} log_state = { "mailferry", false, false };

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void mf_log_open(const char *ident, bool use_syslog, bool debug)
{
	if (log_state.use_syslog && !use_syslog)
		closelog();
	log_state.ident = ident;
	log_state.use_syslog = use_syslog;
	log_state.debug = debug;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void mf_log_close(void)
{
	if (log_state.use_syslog)
		closelog();
	log_state.use_syslog = false;
}

void mf_log(enum mf_log_level level, const char *fmt, ...)
{
	char line[1024];
	size_t n = 0;
	va_list ap;
	int r;

	if (level == MF_LOG_DEBUG && !log_state.debug)
		return;
	if (!log_state.use_syslog) {
		struct timeval tv;
		struct tm tm;

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s level=%s ",
			     (long)(tv.tv_usec / 1000), log_state.ident,
			     level_names[level]);
		if (r > 0)
			n += (size_t)r;
	}
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
	if (log_state.use_syslog) {
		line[n] = '\0';
		syslog(syslog_prio[level], "%s", line);
		return;
	}
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* Nowhere left to report a failed log write. */
	}
}
