/* heartbeat.h — this gateway's heartbeat in the ledger: every
 * HEARTBEAT_MS its id, start time, pid, open sessions and running copies
 * (ledger_gateway_beat), and a last beat marked stopped at a clean exit.
 * Several gateways on one PostgreSQL ledger thus see each other: status,
 * the metrics and the retire report list every gateway and say which went
 * silent (no beat for LEDGER_GATEWAY_SILENT_S: crashed, cut off, or its
 * ledger connection down).
 *
 * A thread of its own with its own ledger handle: a slow or absent ledger
 * delays nothing else; a failed beat is logged once and retried at the
 * next one. */
#ifndef MF_HEARTBEAT_H
#define MF_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEARTBEAT_MS 5000

struct mf_daemon;
struct heartbeat;
struct gateway_beat;

/* Starts the thread (first beat at once). MF_OK or MF_ERROR with err. */
int heartbeat_start(struct mf_daemon *d, struct heartbeat **hb_r, char *err, size_t errlen);

/* Records the stopped beat and joins the thread. NULL is fine. */
void heartbeat_stop(struct heartbeat *hb);

#endif
