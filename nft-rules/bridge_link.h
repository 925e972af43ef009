/* bridge_link.h — the bridge device of bridge mode, asked of the kernel
 * over rtnetlink: its index and its own MAC address, which the bridge
 * table writes into the mail frames it sends up to the IP stack. */
#ifndef MF_BRIDGE_LINK_H
#define MF_BRIDGE_LINK_H

#include <stddef.h>
#include <stdint.h>

struct bridge_link {
	unsigned int ifindex;
	uint8_t mac[6];
};

/* MF_OK with *br_r filled when name is a bridge device in the calling
 * thread's network namespace; MF_ERROR with err ("no device br0", "br0 is
 * not a bridge (kind veth)") otherwise. */
int bridge_link_get(const char *name, struct bridge_link *br_r, char *err,
		    size_t errlen);

/* "02:6d:66:62:72:30" into buf (at least 18 bytes). */
void bridge_mac_format(const uint8_t mac[6], char *buf, size_t len);

#endif
