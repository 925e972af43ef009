/* flow_tally.c — flows per client subnet and port; see flow_tally.h. */
#include "flow_tally.h"
#include "ledger.h"
#include "mf.h"
#include "netaddr.h"

#include <stdlib.h>
#include <string.h>

int flow_tally_init(struct flow_tally *t)
{
	memset(t, 0, sizeof(*t));
	t->n = calloc(MF_MAX_CLIENTS, sizeof(*t->n));
	return t->n != NULL ? MF_OK : MF_ERROR;
}

void flow_tally_destroy(struct flow_tally *t)
{
	free(t->n);
	t->n = NULL;
}

void flow_tally_configure(struct flow_tally *t, const struct mf_config *cfg)
{
	memcpy(t->clients, cfg->clients, sizeof(t->clients));
	t->n_clients = cfg->n_clients;
	memcpy(t->ports, cfg->ports, sizeof(t->ports));
	t->n_ports = cfg->n_ports;
}

static void addr_of(const uint8_t src[16], struct mf_addr *a)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(a, 0, sizeof(*a));
	if (memcmp(src, mapped, sizeof(mapped)) == 0) {
		a->family = AF_INET;
		memcpy(a->u.bytes, src + 12, 4);
	} else {
		a->family = AF_INET6;
		memcpy(a->u.bytes, src, 16);
	}
}

bool flow_tally_count(struct flow_tally *t, const uint8_t src[16], uint16_t port,
		      bool observed)
{
	struct mf_addr a;
	int best = -1;
	unsigned int p;

	for (p = 0; p < t->n_ports && t->ports[p] != port; p++)
		;
	if (p == t->n_ports)
		return false;
	addr_of(src, &a);
	for (unsigned int i = 0; i < t->n_clients; i++)
		if (mf_cidr_contains(&t->clients[i], &a) &&
		    (best < 0 || t->clients[i].prefix > t->clients[best].prefix))
			best = (int)i;
	if (best < 0)
		return false;
	if (t->n[best][p][observed] < UINT32_MAX)
		t->n[best][p][observed]++;
	t->dirty = true;
	return true;
}

int flow_tally_flush(struct flow_tally *t, struct ledger *l, int64_t now, char *err,
		     size_t errlen)
{
	if (!t->dirty)
		return MF_OK;
	for (unsigned int i = 0; i < t->n_clients; i++) {
		char subnet[MF_ADDRSTRLEN + 4];

		mf_cidr_format(&t->clients[i], subnet, sizeof(subnet));
		for (unsigned int p = 0; p < t->n_ports; p++) {
			uint32_t *c = t->n[i][p];

			if (c[0] == 0 && c[1] == 0)
				continue;
			if (ledger_flow_count_add(l, subnet, t->ports[p], c[1], c[0], now, err,
						  errlen) != MF_OK)
				return MF_ERROR;
			/* Written: a failure further on must not count it twice. */
			c[0] = c[1] = 0;
		}
	}
	t->dirty = false;
	return MF_OK;
}
