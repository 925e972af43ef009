/* admin_server.h — mailferryd's admin socket: a UNIX stream socket that
 * speaks JSON lines (admin_proto.h) to root, served by a thread of its own
 * so nothing an admin does can stall an io_uring worker.
 *
 * The socket file is created with mode 0600 (owner root: the daemon binds
 * it before dropping privileges), and each client's credentials are
 * checked again with SO_PEERCRED: only uid 0 is answered, whatever the
 * file's mode has become. Bounded: ADMIN_CLIENTS_MAX clients at once (more
 * are told so and closed), ADMIN_LINE_MAX bytes per request, one request
 * in progress per client (its reply is written before the next line is
 * read), ADMIN_IDLE_MS without a byte closes a client.
 *
 * At stop the file is removed only if it is still the one this daemon
 * bound: a successor started beside it (restart hand-over) has already
 * replaced it with its own. */
#ifndef MF_ADMIN_SERVER_H
#define MF_ADMIN_SERVER_H

#include <stddef.h>
#include <sys/types.h>

#define ADMIN_CLIENTS_MAX 8
#define ADMIN_IDLE_MS 30000

/* Answers one request line (NUL-terminated, len bytes) with a reply
 * object, without its newline, in memory the server frees with free(). A
 * NULL return closes the client (out of memory). */
typedef char *(*admin_handler_fn)(void *arg, const char *line, size_t len);

struct admin_server;

/* Creates the socket at path (replacing a socket file left there; any
 * other kind of file is an error), mode 0600, listening. Its directory
 * is created with mode 0700 if missing and then, when dir_uid is not 0,
 * given to dir_uid/dir_gid, so the daemon can still remove the socket
 * after dropping to that user. Run as root, before privileges drop. */
int admin_server_open(const char *path, uid_t dir_uid, gid_t dir_gid,
		      struct admin_server **s_r, char *err, size_t errlen);

/* Starts the thread answering with fn(arg, ...) and calling tick(arg)
 * (may be NULL) about once a second. MF_OK or MF_ERROR. */
int admin_server_start(struct admin_server *s, admin_handler_fn fn, void (*tick)(void *arg),
		       void *arg, char *err, size_t errlen);

/* Stops the thread (if started), closes every client and the socket,
 * removes the file if it is still ours, frees s (NULL is fine). */
void admin_server_stop(struct admin_server *s);

#endif
