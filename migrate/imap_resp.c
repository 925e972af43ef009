/* imap_resp.c — IMAP server response tokenizer (contract in imap_resp.h).
 *
 * One state machine over bytes. A token is returned the moment it is
 * complete; a byte that ends a token but starts another (")" after an
 * atom) is left unconsumed for the next call. */
#include "imap_resp.h"
#include "mf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum rs_state {
	RS_TAG = 0,        /* collecting the tag */
	RS_AFTER_TAG,      /* SP after the tag ("+" may end the line) */
	RS_TOKENS,         /* between tokens */
	RS_ATOM,
	RS_QUOTED,
	RS_QUOTED_ESC,
	RS_TILDE,          /* "~" seen: "{" must follow */
	RS_LIT_LEN,        /* digits of {n} */
	RS_LIT_CR,         /* "}" seen */
	RS_LIT_LF,
	RS_LIT_DATA,
	RS_RESP_TEXT,      /* after a status word: SP, then "[" or text */
	RS_CODE_ATOM,      /* the code's name */
	RS_CODE_TEXT,      /* a code's free-form arguments, up to "]" */
	RS_AFTER_CODE,     /* "]" seen: SP, then text */
	RS_TEXT,
	RS_EOL,            /* CR or LF expected */
	RS_CR              /* CR seen, LF expected */
};

#define LITERAL_ABS_MAX (UINT64_C(1) << 53)

int imap_resp_init(struct imap_resp *p, const struct imap_resp_limits *limits)
{
	size_t line_max = limits != NULL ? limits->line_max : 0;
	uint64_t lit_max = limits != NULL ? limits->literal_max : 0;

	memset(p, 0, sizeof(*p));
	if (line_max == 0)
		line_max = IMAP_RESP_LINE_MAX_DEFAULT;
	if (line_max < IMAP_RESP_LINE_MIN || line_max > (64u << 20))
		return MF_ERROR;
	if (lit_max == 0 || lit_max > LITERAL_ABS_MAX)
		lit_max = LITERAL_ABS_MAX;
	p->tok = malloc(line_max + 1);
	if (p->tok == NULL)
		return MF_ERROR;
	p->line_max = line_max;
	p->literal_max = lit_max;
	p->state = RS_TAG;
	return MF_OK;
}

void imap_resp_free(struct imap_resp *p)
{
	free(p->tok);
	p->tok = NULL;
}

const char *imap_tok_name(enum imap_tok_type t)
{
	static const char *const names[] = {
		"START", "ATOM", "QUOTED", "NIL", "LIST_BEGIN", "LIST_END",
		"CODE_BEGIN", "CODE_END", "LITERAL", "LITERAL_DATA",
		"LITERAL_END", "TEXT", "END",
	};

	return (unsigned int)t < MF_ARRAY_LEN(names) ? names[t] : "?";
}

static int fail(struct imap_resp *p, const char *why)
{
	p->failed = true;
	p->err = why;
	return MF_ERROR;
}

/* Atom bytes: printable ASCII but the specials, and 8-bit (lenient:
 * some servers send UTF-8 names unquoted). */
static bool atom_byte(uint8_t c)
{
	if (c <= 0x20 || c == 0x7f)
		return false;
	return c != '(' && c != ')' && c != '{' && c != '"';
}

static bool text_byte(uint8_t c)
{
	return c != '\0' && c != '\r' && c != '\n';
}

/* Status words after which the rest of the line is resp-text. */
static bool is_status(const char *s)
{
	return strcasecmp(s, "OK") == 0 || strcasecmp(s, "NO") == 0 ||
	       strcasecmp(s, "BAD") == 0 || strcasecmp(s, "BYE") == 0 ||
	       strcasecmp(s, "PREAUTH") == 0;
}

/* Codes whose arguments are IMAP data, not free text (RFC 3501, 4315,
 * 7162, 5530): tokenized; every other code's arguments are TEXT. */
static bool code_has_tokens(const char *s)
{
	static const char *const codes[] = {
		"CAPABILITY", "PERMANENTFLAGS", "BADCHARSET", "UIDNEXT",
		"UIDVALIDITY", "UNSEEN", "APPENDUID", "COPYUID",
		"HIGHESTMODSEQ", "MODIFIED", "NOMODSEQ",
	};

	for (size_t i = 0; i < MF_ARRAY_LEN(codes); i++)
		if (strcasecmp(s, codes[i]) == 0)
			return true;
	return false;
}

static void tok_set(struct imap_resp *p, struct imap_tok *t, enum imap_tok_type type)
{
	memset(t, 0, sizeof(*t));
	t->type = type;
	t->kind = p->kind;
	t->depth = p->depth;
	t->text = "";
	t->len = 0;
}

/* Hands out the collected token text and resets the collector. */
static void tok_take(struct imap_resp *p, struct imap_tok *t, enum imap_tok_type type)
{
	tok_set(p, t, type);
	p->tok[p->tok_len] = '\0';
	t->text = p->tok;
	t->len = p->tok_len;
	p->tok_len = 0;
}

static int tok_add(struct imap_resp *p, uint8_t c)
{
	if (p->tok_len >= p->line_max)
		return fail(p, "token too long");
	p->tok[p->tok_len++] = (char)c;
	return MF_OK;
}

/* The line is over: END, and the next byte starts a new response. */
static int line_end_ok(struct imap_resp *p)
{
	if (p->depth != 0)
		return fail(p, "line ends inside a list");
	if (p->in_code)
		return fail(p, "line ends inside a response code");
	return MF_OK;
}

/* After a complete token at depth 0: was it the status word? */
static void after_token(struct imap_resp *p, const struct imap_tok *t)
{
	bool first = p->first_token;

	p->first_token = false;
	if (first && t->type == IMAP_TOK_ATOM && is_status(t->text))
		p->state = RS_RESP_TEXT;
	else
		p->state = RS_TOKENS;
}

int imap_resp_next(struct imap_resp *p, const uint8_t *buf, size_t len,
		   size_t *used_r, struct imap_tok *tok_r)
{
	size_t i = 0;

	*used_r = 0;
	if (p->failed)
		return MF_ERROR;
	if (p->state == RS_LIT_DATA) {
		if (p->lit_left == 0) {
			tok_set(p, tok_r, IMAP_TOK_LITERAL_END);
			p->state = RS_TOKENS;
			p->first_token = false;
			return MF_OK;
		}
		if (len == 0)
			return MF_AGAIN;
		{
			size_t n = p->lit_left < len ? (size_t)p->lit_left : len;

			tok_set(p, tok_r, IMAP_TOK_LITERAL_DATA);
			tok_r->text = (const char *)buf;
			tok_r->len = n;
			p->lit_left -= n;
			*used_r = n;
			return MF_OK;
		}
	}

/* Consumes the current byte, counting it against the line bound. */
#define TAKE() do { \
		i++; \
		if (++p->line_len > p->line_max) \
			return fail(p, "response line too long"); \
	} while (0)
/* Returns the token in *tok_r having consumed i bytes. */
#define EMIT() do { *used_r = i; return MF_OK; } while (0)

	while (i < len) {
		uint8_t c = buf[i];

		switch ((enum rs_state)p->state) {
		case RS_TAG:
			if (c == ' ' || c == '\r' || c == '\n') {
				if (p->tok_len == 0)
					return fail(p, "empty tag");
				p->tok[p->tok_len] = '\0';
				if (strcmp(p->tok, "*") == 0)
					p->kind = IMAP_KIND_UNTAGGED;
				else if (strcmp(p->tok, "+") == 0)
					p->kind = IMAP_KIND_CONTINUE;
				else if (strchr(p->tok, '+') != NULL ||
					 strchr(p->tok, '*') != NULL)
					return fail(p, "bad tag");
				else
					p->kind = IMAP_KIND_TAGGED;
				if (c != ' ' && p->kind != IMAP_KIND_CONTINUE)
					return fail(p, "response has nothing after its tag");
				tok_take(p, tok_r, IMAP_TOK_START);
				p->depth = 0;
				p->in_code = false;
				p->first_token = true;
				/* "+" SP text, or a bare "+" line */
				if (p->kind == IMAP_KIND_CONTINUE)
					p->state = c == ' ' ? RS_TEXT : RS_EOL;
				else
					p->state = RS_AFTER_TAG;
				if (c == ' ')
					TAKE();
				EMIT();
			}
			if (!atom_byte(c) || c == ']' || p->tok_len >= IMAP_RESP_TAG_MAX)
				return fail(p, "bad tag");
			if (tok_add(p, c) != MF_OK)
				return MF_ERROR;
			TAKE();
			break;
		case RS_AFTER_TAG:
			if (c == ' ' || c == '\r' || c == '\n')
				return fail(p, "response has nothing after its tag");
			p->state = RS_TOKENS;
			break;
		case RS_TOKENS:
			if (c == ' ') {
				TAKE();
				break;
			}
			if (c == '\r' || c == '\n') {
				if (line_end_ok(p) != MF_OK)
					return MF_ERROR;
				p->state = RS_EOL;
				break;
			}
			if (p->in_code && c == ']' && p->depth == p->code_depth) {
				TAKE();
				tok_set(p, tok_r, IMAP_TOK_CODE_END);
				p->in_code = false;
				p->state = RS_AFTER_CODE;
				EMIT();
			}
			if (c == '(') {
				if (p->depth >= IMAP_RESP_DEPTH_MAX)
					return fail(p, "lists nested too deep");
				TAKE();
				p->depth++;
				tok_set(p, tok_r, IMAP_TOK_LIST_BEGIN);
				p->first_token = false;
				EMIT();
			}
			if (c == ')') {
				if (p->depth == 0 || (p->in_code && p->depth == p->code_depth))
					return fail(p, "unbalanced ')'");
				TAKE();
				tok_set(p, tok_r, IMAP_TOK_LIST_END);
				p->depth--;
				tok_r->depth = p->depth;
				EMIT();
			}
			if (c == '"') {
				TAKE();
				p->state = RS_QUOTED;
				break;
			}
			if (c == '{') {
				TAKE();
				p->lit8 = false;
				p->lit_num = 0;
				p->tok_len = 0;
				p->state = RS_LIT_LEN;
				break;
			}
			if (c == '~') {
				TAKE();
				p->state = RS_TILDE;
				break;
			}
			if (!atom_byte(c) || c == ']')
				return fail(p, "unexpected byte between tokens");
			p->bracket = 0;
			p->state = RS_ATOM;
			break;
		case RS_ATOM:
			if (p->bracket > 0) {
				if (!text_byte(c))
					return fail(p, "line ends inside [ ] of an atom");
				if (c == ']')
					p->bracket--;
				else if (c == '[' && ++p->bracket > IMAP_RESP_DEPTH_MAX)
					return fail(p, "[ ] nested too deep");
			} else if (c == '[') {
				p->bracket = 1;
			} else if (!atom_byte(c) || (c == ']' && p->in_code)) {
				tok_take(p, tok_r, IMAP_TOK_ATOM);
				if (strcasecmp(tok_r->text, "NIL") == 0)
					tok_r->type = IMAP_TOK_NIL;
				after_token(p, tok_r);
				EMIT();
			} else if (c == ']') {
				return fail(p, "unexpected ']' in an atom");
			}
			if (tok_add(p, c) != MF_OK)
				return MF_ERROR;
			TAKE();
			break;
		case RS_QUOTED:
			if (c == '"') {
				TAKE();
				tok_take(p, tok_r, IMAP_TOK_QUOTED);
				after_token(p, tok_r);
				EMIT();
			}
			if (c == '\\') {
				TAKE();
				p->state = RS_QUOTED_ESC;
				break;
			}
			if (!text_byte(c))
				return fail(p, "CR, LF or NUL in a quoted string");
			if (tok_add(p, c) != MF_OK)
				return MF_ERROR;
			TAKE();
			break;
		case RS_QUOTED_ESC:
			if (c != '"' && c != '\\')
				return fail(p, "bad escape in a quoted string");
			if (tok_add(p, c) != MF_OK)
				return MF_ERROR;
			TAKE();
			p->state = RS_QUOTED;
			break;
		case RS_TILDE:
			if (c != '{')
				return fail(p, "'~' not followed by '{'");
			TAKE();
			p->lit8 = true;
			p->lit_num = 0;
			p->tok_len = 0;
			p->state = RS_LIT_LEN;
			break;
		case RS_LIT_LEN:
			if (c >= '0' && c <= '9') {
				if (p->tok_len >= 20)
					return fail(p, "literal size too long");
				p->tok_len++;
				p->lit_num = p->lit_num * 10 + (uint64_t)(c - '0');
				if (p->lit_num > p->literal_max)
					return fail(p, "literal too large");
				TAKE();
				break;
			}
			if (c != '}' || p->tok_len == 0)
				return fail(p, "bad literal size");
			p->tok_len = 0;
			TAKE();
			p->state = RS_LIT_CR;
			break;
		case RS_LIT_CR:
			if (c == '\r') {
				TAKE();
				p->state = RS_LIT_LF;
				break;
			}
			/* a bare LF is tolerated */
			__attribute__((fallthrough));
		case RS_LIT_LF:
			if (c != '\n')
				return fail(p, "literal size not followed by CRLF");
			TAKE();
			tok_set(p, tok_r, IMAP_TOK_LITERAL);
			tok_r->lit_size = p->lit_num;
			tok_r->lit8 = p->lit8;
			p->lit_left = p->lit_num;
			p->state = RS_LIT_DATA;
			p->first_token = false;
			EMIT();
		case RS_LIT_DATA:
			/* Only reached after EMIT() returned: handled on entry. */
			return fail(p, "internal: literal state");
		case RS_RESP_TEXT:
			if (c == ' ') {
				TAKE();
				/* a "[" code may follow the one SP (not after "+") */
				p->first_token = p->kind != IMAP_KIND_CONTINUE;
				p->state = p->first_token ? RS_AFTER_CODE : RS_TEXT;
				break;
			}
			if (c == '\r' || c == '\n') {
				p->state = RS_EOL;
				break;
			}
			return fail(p, "no space after a status word");
		case RS_AFTER_CODE:
			if (c == '[' && p->first_token) {
				TAKE();
				p->first_token = false;
				p->in_code = true;
				p->code_depth = p->depth;
				p->state = RS_CODE_ATOM;
				tok_set(p, tok_r, IMAP_TOK_CODE_BEGIN);
				EMIT();
			}
			if (c == ' ' && !p->first_token) {
				TAKE(); /* the one SP after "]" */
			}
			p->first_token = false;
			p->state = RS_TEXT;
			break;
		case RS_CODE_ATOM:
			if (c == ' ' || c == ']') {
				if (p->tok_len == 0)
					return fail(p, "empty response code");
				tok_take(p, tok_r, IMAP_TOK_ATOM);
				p->code_tokens = code_has_tokens(tok_r->text);
				if (c == ' ')
					TAKE();
				p->state = p->code_tokens ? RS_TOKENS : RS_CODE_TEXT;
				EMIT();
			}
			if (!atom_byte(c) || c == '[')
				return fail(p, "bad response code");
			if (tok_add(p, c) != MF_OK)
				return MF_ERROR;
			TAKE();
			break;
		case RS_CODE_TEXT:
			if (c == ']') {
				if (p->tok_len > 0) {
					tok_take(p, tok_r, IMAP_TOK_TEXT);
					EMIT();
				}
				TAKE();
				tok_set(p, tok_r, IMAP_TOK_CODE_END);
				p->in_code = false;
				p->state = RS_AFTER_CODE;
				EMIT();
			}
			if (!text_byte(c))
				return fail(p, "line ends inside a response code");
			if (tok_add(p, c) != MF_OK)
				return MF_ERROR;
			TAKE();
			break;
		case RS_TEXT:
			if (c == '\r' || c == '\n') {
				p->state = RS_EOL;
				if (p->tok_len > 0) {
					tok_take(p, tok_r, IMAP_TOK_TEXT);
					EMIT();
				}
				break;
			}
			if (c == '\0')
				return fail(p, "NUL in response text");
			if (tok_add(p, c) != MF_OK)
				return MF_ERROR;
			TAKE();
			break;
		case RS_EOL:
			if (line_end_ok(p) != MF_OK)
				return MF_ERROR;
			TAKE();
			if (c == '\r') {
				p->state = RS_CR;
				break;
			}
			/* fall through: LF */
			tok_set(p, tok_r, IMAP_TOK_END);
			p->state = RS_TAG;
			p->line_len = 0;
			EMIT();
		case RS_CR:
			if (c != '\n')
				return fail(p, "CR not followed by LF");
			i++;
			tok_set(p, tok_r, IMAP_TOK_END);
			p->state = RS_TAG;
			p->line_len = 0;
			EMIT();
		}
	}
#undef TAKE
#undef EMIT
	*used_r = i;
	return MF_AGAIN;
}
