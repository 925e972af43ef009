/* pop3_txn.c — see pop3_txn.h. One command at a time: TX_IDLE reads the
 * client's next command, TX_SEND passes it on, TX_STATUS reads the
 * server's status line, TX_LINES a UIDL listing (line by line, rewritten),
 * TX_RAW any other listing (bytes, unchanged, until ".\r\n"). */
#include "pop3_txn.h"
#include "log.h"
#include "mf.h"
#include "pop3_backend.h"
#include "pop3_parser.h"
#include "pop3_txn_parse.h"
#include "uidl_map.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tx_state { TX_IDLE = 0, TX_SEND, TX_STATUS, TX_LINES, TX_RAW };

struct pop3_txn {
	struct uidl_map map;
	struct pop3_parser parser;
	struct pop3_txn_cmd cmd;
	struct pop3_listing_scan scan;
	uint8_t st;                       /* enum tx_state */
	char line[POP3_LINE_MAX_DEFAULT + 2]; /* the command in flight, CRLF-ended */
	size_t line_len, line_off;
};

static const struct front_io_ops txn_ops;

static struct front_io *io_of(struct session *s)
{
	return s->front;
}

static void txn_run(struct session *s);

/* Whatever the client hears next is sent, then the next command read. */
static void answer_done(struct session *s)
{
	struct front_io *io = io_of(s);
	struct pop3_txn *t = pop3_front_txn(s);

	t->st = TX_IDLE;
	if (t->cmd.verb == PTV_QUIT)
		front_io_close_after_reply(s, SE_EOF);
	else
		io->after = FA_RUN;
	if (io->olen > io->ooff)
		front_io_flush(s);
	else
		txn_run(s);
}

/* Room for one more line of the longest the line reader passes, and its
 * CRLF: a line that does not parse as a UIDL's goes on as it is. */
static bool obuf_has_line_room(const struct front_io *io)
{
	return sizeof(io->obuf) - io->olen >= IMAP_RESP_LINE_MAX + 2;
}

_Static_assert(FRONT_IO_OBUF >= IMAP_RESP_LINE_MAX + 2, "POP3 listing lines");

static void queue(struct session *s, const char *p, size_t len)
{
	struct front_io *io = io_of(s);

	memcpy(io->obuf + io->olen, p, len);
	io->olen += len;
	memcpy(io->obuf + io->olen, "\r\n", 2);
	io->olen += 2;
	s->dir[1].bytes += len + 2;
}

static void raw_pump(struct session *s)
{
	struct front_io *io = io_of(s);
	struct pop3_txn *t = pop3_front_txn(s);

	for (;;) {
		size_t avail = io->ulen - io->upos, room = sizeof(io->obuf) - io->olen, take, used;
		bool done;

		if (avail == 0 || room == 0) {
			/* Send in halves of the buffer, not per RECV. */
			if (io->olen > io->ooff &&
			    (room == 0 || io->olen >= sizeof(io->obuf) / 2)) {
				io->after = FA_RUN;
				front_io_flush(s);
			} else {
				front_io_upstream_recv(s);
			}
			return;
		}
		take = avail < room ? avail : room;
		used = pop3_listing_scan(&t->scan, io->ubuf + io->upos, take, &done);
		memcpy(io->obuf + io->olen, io->ubuf + io->upos, used);
		io->olen += used;
		io->upos += used;
		s->dir[1].bytes += used;
		if (done) {
			answer_done(s);
			return;
		}
	}
}

static bool txn_up_bytes(struct session *s)
{
	if (pop3_front_txn(s)->st != TX_RAW)
		return false;
	raw_pump(s);
	return true;
}

static bool status_line(struct session *s)
{
	struct front_io *io = io_of(s);
	struct pop3_txn *t = pop3_front_txn(s);
	const char *line = io->line.buf;
	size_t len = io->line.len;
	enum pop3_status st;
	char out[UIDL_LINE_MAX];
	size_t out_len;

	if (pop3_status_parse(line, len, &st) != MF_OK) {
		io->iops->up_fail(s, "garbage from server");
		return false;
	}
	if (st == POP3_ST_OK && t->cmd.verb == PTV_UIDL && !t->cmd.listing &&
	    uidl_map_rewrite_line(&t->map, line, len, true, out, &out_len) == MF_OK)
		queue(s, out, out_len);
	else
		queue(s, line, len);
	if (st != POP3_ST_OK || !t->cmd.listing) {
		answer_done(s);
		return false;
	}
	if (t->cmd.verb == PTV_UIDL) {
		t->st = TX_LINES;
		if (!obuf_has_line_room(io)) {
			io->after = FA_RUN;
			front_io_flush(s);
			return false;
		}
	} else {
		t->st = TX_RAW;
		pop3_listing_scan_init(&t->scan);
	}
	return true;
}

static bool listing_line(struct session *s)
{
	struct front_io *io = io_of(s);
	struct pop3_txn *t = pop3_front_txn(s);
	char out[UIDL_LINE_MAX];
	size_t out_len;

	if (io->line.len == 1 && io->line.buf[0] == '.') {
		queue(s, ".", 1);
		answer_done(s);
		return false;
	}
	if (uidl_map_rewrite_line(&t->map, io->line.buf, io->line.len, false, out,
				  &out_len) == MF_OK)
		queue(s, out, out_len);
	else
		queue(s, io->line.buf, io->line.len);
	if (!obuf_has_line_room(io)) {
		io->after = FA_RUN;
		front_io_flush(s);
		return false;
	}
	return true;
}

static bool txn_up_line(struct session *s)
{
	struct front_io *io = io_of(s);

	switch (pop3_front_txn(s)->st) {
	case TX_STATUS:
		return status_line(s);
	case TX_LINES:
		return listing_line(s);
	default:
		io->iops->up_fail(s, "server spoke out of turn");
		return false;
	}
}

static void txn_up_sent(struct session *s, size_t n)
{
	struct pop3_txn *t = pop3_front_txn(s);

	t->line_off += n;
	s->dir[0].bytes += n;
	if (t->line_off < t->line_len) {
		front_io_upstream_send(s, t->line + t->line_off, t->line_len - t->line_off);
		return;
	}
	t->st = TX_STATUS;
	front_io_upstream_process(s);
}

static void txn_up_fail(struct session *s, const char *why)
{
	struct pop3_txn *t = pop3_front_txn(s);

	mf_log_warn("pop3 user=%s: destination: %s", s->user ? s->user : "-", why);
	if (t->st == TX_LINES || t->st == TX_RAW) {
		/* In the middle of a listing: nothing the client could read
		 * as an answer is left to say. */
		session_abort(s, SE_SERVER_RESET, 0, true);
		return;
	}
	front_io_reply(s, "-ERR [SYS/TEMP] Server unavailable, try again later\r\n");
	front_io_close_after_reply(s, SE_SERVER_RESET);
	front_io_flush(s);
}

static void command(struct session *s, const struct pop3_cmd *c)
{
	struct front_io *io = io_of(s);
	struct pop3_txn *t = pop3_front_txn(s);

	pop3_txn_classify(c->line, c->line_len, &t->cmd);
	/* The parser bounds a line to POP3_LINE_MAX_DEFAULT with its CRLF. */
	memcpy(t->line, c->line, c->line_len);
	memcpy(t->line + c->line_len, "\r\n", 2);
	t->line_len = c->line_len + 2;
	t->line_off = 0;
	t->st = TX_SEND;
	io->deadline_ms = s->w->now_ms + s->w->t.idle_timeout_ms;
	front_io_upstream_send(s, t->line, t->line_len);
}

static void txn_run(struct session *s)
{
	struct front_io *io = io_of(s);
	struct pop3_txn *t = pop3_front_txn(s);

	switch (t->st) {
	case TX_LINES:
		front_io_upstream_process(s);
		return;
	case TX_RAW:
		raw_pump(s);
		return;
	case TX_IDLE:
		break;
	default:
		return; /* an upstream op is in flight */
	}
	for (;;) {
		struct pop3_cmd c;
		size_t used = 0;
		int rc;

		if (front_io_wait(s))
			return;
		rc = pop3_parser_feed(&t->parser, io->rbuf + io->rpos, io->rlen - io->rpos, &used,
				      &c);
		io->rpos += used;
		if (rc == MF_AGAIN) {
			front_io_client_recv(s);
			return;
		}
		if (rc == MF_ERROR) {
			front_io_reply(s, "-ERR %s\r\n", pop3_parse_error_str(c.error));
			if (!c.resync)
				front_io_close_after_reply(s, SE_PROTOCOL);
			continue;
		}
		command(s, &c);
		return;
	}
}

static const struct front_io_ops txn_ops = {
	.run = txn_run,
	.up_line = txn_up_line,
	.up_bytes = txn_up_bytes,
	.up_fail = txn_up_fail,
	.up_sent = txn_up_sent,
	.timeout_reply = "-ERR Disconnected for inactivity\r\n",
};

int pop3_txn_start(struct session *s, const char *line, struct uidl_pair *v, size_t n,
		   struct pop3_txn **t_r)
{
	struct front_io *io = io_of(s);
	struct pop3_txn *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		free(v);
		return MF_ERROR;
	}
	if (uidl_map_init(&t->map, v, n) != MF_OK) {
		free(t);
		return MF_ERROR;
	}
	pop3_parser_init(&t->parser);
	t->st = TX_IDLE;
	*t_r = t;
	io->iops = &txn_ops;
	io->deadline_ms = s->w->now_ms + s->w->t.idle_timeout_ms;
	front_io_reply(s, "%s\r\n", line);
	mf_log_info("pop3 user=%s: served by the destination with %zu source UIDLs",
		    s->user ? s->user : "-", t->map.n);
	return MF_OK;
}

void pop3_txn_free(struct pop3_txn *t)
{
	if (t == NULL)
		return;
	uidl_map_free(&t->map);
	free(t);
}
