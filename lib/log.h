/* log.h — one line per event, key=value, to stderr or syslog.
 *
 * Lines are formatted into a stack buffer and written with one write(2), so
 * lines from different worker threads never interleave. */
#ifndef MF_LOG_H
#define MF_LOG_H

#include <stdbool.h>

enum mf_log_level { MF_LOG_ERR = 0, MF_LOG_WARN, MF_LOG_INFO, MF_LOG_DEBUG };

/* Called once at start (and again on reload); not thread-safe itself. */
void mf_log_open(const char *ident, bool use_syslog, bool debug);
void mf_log_close(void);

void mf_log(enum mf_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define mf_log_err(...) mf_log(MF_LOG_ERR, __VA_ARGS__)
#define mf_log_warn(...) mf_log(MF_LOG_WARN, __VA_ARGS__)
#define mf_log_info(...) mf_log(MF_LOG_INFO, __VA_ARGS__)
#define mf_log_debug(...) mf_log(MF_LOG_DEBUG, __VA_ARGS__)

#endif
