/* smtp_bdat.c — BDAT (CHUNKING, RFC 3030) on MTA ports; see smtp_front.h.
 *
 * The front end advertises CHUNKING whatever backend a transaction will
 * reach, so it must carry BDAT to either:
 *   - a backend whose EHLO offers CHUNKING gets the client's BDAT lines and
 *     octets unchanged, and its replies reach the client unchanged;
 *   - any other backend gets DATA: at the first chunk "DATA", then every
 *     chunk's octets with a "." added before each "." that starts a line
 *     (after any LF, so no bare-LF variant can end the message early),
 *     each non-last chunk answered here ("250 2.0.0 N octets received"),
 *     and after the last one CRLF "." CRLF (an extra CRLF first when the
 *     content did not end with one); the backend's final reply is relayed.
 *     The backend then stores what the client sent, dots unstuffed, as with
 *     DATA. Between chunks the backend is inside DATA: RSET, EHLO/HELO and
 *     QUIT drop its connection, which is the only way to abort it there. */
#include "smtp_state.h"
#include "mf.h"
#include "session.h"
#include "worker.h"

#include <string.h>

/* The current chunk's octets are all sent. Returns true when a backend op
 * was started; otherwise the client is answered (or will be). */
static bool chunk_done(struct session *s)
{
	struct smtp_front *f = s->front;

	f->cstate = CS_CMD;
	if (!f->xlate) {
		f->ustate = UP_BDAT_REPLY;
		front_io_upstream_process(s);
		return true;
	}
	if (!f->chunk_last) {
		f->ustate = UP_IDLE;
		front_io_reply(s, "250 2.0.0 %llu octets received\r\n",
			       (unsigned long long)f->data.octets);
		return false;
	}
	smtp_up_send(s, UP_DATA_END, "%s", smtp_stuff_end(&f->stuff));
	return true;
}

/* Starts relaying the current chunk. Returns true when a backend op was
 * started; false: smtp_run() goes on (streaming from rbuf, or answering). */
static bool start_chunk(struct session *s)
{
	struct smtp_front *f = s->front;

	if (f->chunk_left == 0)
		return chunk_done(s);
	f->cstate = CS_CHUNK;
	f->ustate = UP_CHUNK;
	return false;
}

bool smtp_bdat(struct session *s, const struct smtp_cmd *c)
{
	struct smtp_front *f = s->front;

	if (f->mail_len == 0 || f->rcpts_ok == 0 || s->ufd < 0) {
		/* Its octets are skipped so they are never taken for commands. */
		f->skip_left = c->bdat_size;
		f->cstate = CS_SKIP;
		smtp_err_reply(s, f->mail_len == 0 ? "503 5.5.1 Error: need MAIL command"
						   : "554 5.5.1 Error: no valid recipients");
		return false;
	}
	f->chunk_left = c->bdat_size;
	f->chunk_last = c->bdat_last;
	if (!f->bdat) {
		f->bdat = true;
		f->xlate = !f->ehlo.chunking;
		smtp_stuff_init(&f->stuff);
		smtp_data_init(&f->data);
		if (f->xlate) {
			smtp_up_send(s, UP_BDAT_DATA, "DATA\r\n");
			return true;
		}
	}
	if (f->xlate)
		return start_chunk(s);
	smtp_up_send(s, UP_BDAT_HDR, "%.*s", (int)c->raw_len, (const char *)c->raw);
	return true;
}

bool smtp_chunk(struct session *s)
{
	struct smtp_front *f = s->front;
	const uint8_t *p = f->io.rbuf + f->io.rpos;
	size_t len = f->io.rlen - f->io.rpos, n;

	n = len < f->chunk_left ? len : (size_t)f->chunk_left;
	if (!f->xlate) {
		f->data_end = f->io.rpos + n;
		smtp_up_content(s);
		return true;
	}
	if (n > sizeof(f->xbuf) / 2)
		n = sizeof(f->xbuf) / 2;
	f->xlen = smtp_stuff(&f->stuff, p, n, f->xbuf);
	f->io.rpos += n;
	f->chunk_left -= n;
	f->data.octets += n;
	s->dir[0].bytes += n;
	f->xoff = 0;
	front_io_upstream_send(s, f->xbuf, f->xlen);
	return true;
}

void smtp_bdat_sent(struct session *s, size_t n)
{
	struct smtp_front *f = s->front;

	if (f->ustate == UP_BDAT_HDR) {
		if (!start_chunk(s))
			smtp_run(s);
		return;
	}
	if (f->xlate) {
		f->xoff += n;
		if (f->xoff < f->xlen) {
			front_io_upstream_send(s, f->xbuf + f->xoff, f->xlen - f->xoff);
			return;
		}
	} else {
		f->io.rpos += n;
		f->chunk_left -= n;
		f->data.octets += n;
		s->dir[0].bytes += n;
		if (f->io.rpos < f->data_end) {
			smtp_up_content(s);
			return;
		}
	}
	if (f->chunk_left > 0) {
		smtp_run(s);
		return;
	}
	if (!chunk_done(s))
		smtp_run(s);
}

bool smtp_bdat_line(struct session *s, const struct smtp_reply_line *l)
{
	struct smtp_front *f = s->front;

	if (f->ustate == UP_BDAT_DATA && l->code == 354) {
		if (!l->last)
			return true;
		if (!start_chunk(s))
			smtp_run(s);
		return false;
	}
	front_io_reply(s, "%.*s", (int)l->raw_len, (const char *)l->raw);
	if (!l->last)
		return true;
	if (f->ustate == UP_BDAT_DATA) {
		/* DATA refused: that is this BDAT's answer; skip its octets. */
		f->skip_left = f->chunk_left;
		f->cstate = CS_SKIP;
		smtp_log_txn(s, l->code, 0);
		smtp_txn_reset(f);
	} else if (f->chunk_last) {
		/* The last chunk's reply ends the backend's transaction. */
		f->up_mail = false;
		smtp_log_txn(s, l->code, f->data.octets);
		smtp_txn_reset(f);
	}
	/* A refused non-last chunk: the backend answers the following ones
	 * too, until the client's RSET. */
	f->ustate = UP_IDLE;
	smtp_run(s);
	return false;
}
