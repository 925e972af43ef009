/* privdrop.h — mailferryd gives up root once it is set up.
 *
 * After the listeners, the rings and the SYN gate's netlink socket exist,
 * the daemon runs as [gateway] user with exactly two capabilities:
 * CAP_NET_ADMIN (IP_TRANSPARENT on upstream sockets, the nft set the gate
 * flips, NFQUEUE verdicts) and CAP_NET_RAW (IP_TRANSPARENT is allowed
 * with either; kept as the issue names it, for raw probes to come). The
 * bounding set is cleared and supplementary groups dropped, so nothing
 * can be regained, not even through exec. Capabilities belong to each
 * thread: privdrop_to() must run before any thread is started, and every
 * thread created afterwards inherits the reduced set. */
#ifndef MF_PRIVDROP_H
#define MF_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

/* The uid and gid of user. MF_OK or MF_ERROR (err) if unknown. */
int privdrop_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, char *err,
		    size_t errlen);

/* Hands the SQLite file path and its -wal and -shm files (those that
 * exist) to uid/gid: the daemon creates the ledger as root at start, and
 * its workers open it after the switch. Symlinks are not followed. The
 * directory must already let uid create the -wal and -shm files. */
int privdrop_give(const char *path, uid_t uid, gid_t gid, char *err,
		  size_t errlen);

/* Switches the process to uid/gid keeping only CAP_NET_ADMIN and
 * CAP_NET_RAW, then checks the result. MF_OK or MF_ERROR (err); on error
 * the caller must exit: the process may be half switched. */
int privdrop_to(uid_t uid, gid_t gid, char *err, size_t errlen);

#endif
