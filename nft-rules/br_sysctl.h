/* br_sysctl.h — br_netfilter's bridge-nf-call-iptables/-ip6tables in the
 * calling thread's network namespace.
 *
 * With br_netfilter loaded and these at 1 (its default), the IP hooks
 * also run for frames the bridge forwards; bridge mode's redirected mail
 * flows then met tproxy twice and never reached the listener. Install sets
 * both to 0 and records what they were (in table bridge mailferry), remove
 * writes the recorded values back. Without br_netfilter there is nothing
 * to set (present false). */
#ifndef MF_BR_SYSCTL_H
#define MF_BR_SYSCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct br_sysctl {
	bool present;             /* /proc/sys/net/bridge exists here */
	uint32_t call_iptables;   /* net.bridge.bridge-nf-call-iptables */
	uint32_t call_ip6tables;  /* net.bridge.bridge-nf-call-ip6tables */
};

/* MF_OK with *v_r filled (present false and zeros without br_netfilter),
 * MF_ERROR with err when a file exists but cannot be read or parsed. */
int br_sysctl_read(struct br_sysctl *v_r, char *err, size_t errlen);

/* Writes both values; nothing when !v->present. MF_ERROR with err. */
int br_sysctl_write(const struct br_sysctl *v, char *err, size_t errlen);

/* Both off: what bridge mode needs (either not present, or both 0). */
bool br_sysctl_off(const struct br_sysctl *v);

#endif
