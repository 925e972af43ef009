/* xt_queue.h — the SYN gate's queue rule where the kernel lacks the nft
 * queue statement (no nft_queue, as on our lab kernel).
 *
 * iptables-nft's NFQUEUE target reaches the same kernel queue through the
 * xtables compatibility layer, which nft itself cannot drive. So, for this
 * one rule only, `mailferry rules install` runs iptables-nft and
 * ip6tables-nft (no shell; fixed argument vectors) to add, in table raw
 * (priority -300, after our gate chain at -310 and before conntrack):
 *     -m mark --mark GATE_MARK     -j NFQUEUE --queue-num N --queue-bypass
 *     -m mark --mark GATE_MARK+1   -j NFQUEUE --queue-num N
 * The gate chain picks the mark by fail mode (nft_gate.h), so these rules
 * never change after install and mailferryd never runs a program: it
 * flips the mode with one nft set element over netlink.
 *
 * Only the CLI calls these (they fork and exec). */
#ifndef MF_XT_QUEUE_H
#define MF_XT_QUEUE_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Adds both rules for IPv4 and IPv6 unless present (idempotent). MF_OK or
 * MF_ERROR with iptables' own complaint in err; on error, rules this call
 * added are taken away again. */
int xt_queue_install(const struct mf_config *cfg, char *err, size_t errlen);

/* Removes every copy of both rules for IPv4 and IPv6; then table raw of
 * each family if it is left without rules and with accept policies (it was
 * created for us: iptables-nft creates tables on demand). MF_OK when none
 * were there. */
int xt_queue_remove(const struct mf_config *cfg, char *err, size_t errlen);

/* The same for the rules of another mark and queue (an earlier install's,
 * from the table's record). */
int xt_queue_remove_spec(uint32_t gate_mark, uint16_t queue_num, char *err,
			 size_t errlen);

/* *present_r: both rules are there for IPv4 and IPv6 (for status). */
int xt_queue_check(const struct mf_config *cfg, bool *present_r, char *err,
		   size_t errlen);

#endif
