/* uring_op.h — what each io_uring completion is about.
 *
 * user_data packs a pointer (a relay direction, a session, a listener slot
 * or the worker; all 16-byte aligned) with the operation in the low four
 * bits, so one dispatcher can route every CQE without a lookup. Relay
 * operations carry the direction itself, which knows its session. */
#ifndef MF_URING_OP_H
#define MF_URING_OP_H

#include <stdint.h>

enum uop {
	/* relay ops, ptr: struct relay_dir */
	UOP_POLL_IN = 0,
	UOP_SPLICE_IN = 1,
	UOP_SPLICE_OUT = 2,
	UOP_POLL_OUT = 3,
	UOP_RECV = 4,
	UOP_SEND = 5,
	UOP_RELAY_LAST = UOP_SEND,
	UOP_FRONT = 6,    /* ptr: struct front_op (front.h) */
	UOP_TLS = 7,      /* ptr: struct tls_pump_op (tls_pump.h) */
	UOP_ACCEPT = 8,   /* ptr: struct listener_slot */
	UOP_CONNECT = 9,  /* ptr: struct session */
	UOP_SESSION_AUX = 10, /* ptr: session; link timeouts and cancels */
	UOP_TICK = 11,    /* ptr: worker */
	UOP_WAKE = 12,    /* ptr: worker */
	UOP_WORKER_AUX = 13, /* ptr: worker; cancels of worker-level ops */
};

#define UOP_MASK 0xfULL

static inline uint64_t uop_pack(const void *ptr, unsigned int op)
{
	return (uint64_t)(uintptr_t)ptr | op;
}

static inline void *uop_ptr(uint64_t ud)
{
	return (void *)(uintptr_t)(ud & ~UOP_MASK);
}

static inline unsigned int uop_op(uint64_t ud)
{
	return (unsigned int)(ud & UOP_MASK);
}

#endif
