/* mig_folders.c — the folder tree: LIST both sides, map names (INBOX,
 * special use, delimiter), CREATE what the destination lacks, copy the
 * subscriptions. Names are never decoded: modified UTF-7 (or whatever
 * bytes the source uses) goes over exactly as it came. */
#include "mf.h"
#include "mig_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *flag;
	enum mig_use use;
} use_flags[] = {
	{ "\\Sent", MU_SENT }, { "\\Drafts", MU_DRAFTS }, { "\\Trash", MU_TRASH },
	{ "\\Junk", MU_JUNK }, { "\\Archive", MU_ARCHIVE }, { "\\All", MU_ALL },
	{ "\\Flagged", MU_FLAGGED },
};

static void list_free(struct mig_list *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].name);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* "* LIST (flags) delim name [ext]" and "* LSUB ...". */
static int on_list(void *arg, const struct imap_response *r)
{
	struct mig_list *s = arg;
	struct mig_list_entry e = { 0 };
	size_t i = 2;

	if (r->n < 2 || !(imap_item_is(&r->items[0], "LIST") || imap_item_is(&r->items[0], "LSUB")))
		return MF_OK;
	if (r->items[1].type != IMAP_TOK_LIST_BEGIN)
		return MF_OK;
	for (; i < r->n && r->items[i].type != IMAP_TOK_LIST_END; i++) {
		const struct imap_item *it = &r->items[i];

		if (it->type != IMAP_TOK_ATOM)
			continue;
		if (strcasecmp(it->s, "\\Noselect") == 0 || strcasecmp(it->s, "\\NonExistent") == 0)
			e.noselect = true;
		for (size_t k = 0; k < MF_ARRAY_LEN(use_flags); k++)
			if (strcasecmp(it->s, use_flags[k].flag) == 0)
				e.use |= (unsigned int)use_flags[k].use;
	}
	if (i + 2 >= r->n)
		return MF_OK;
	i++;
	if (r->items[i].type == IMAP_TOK_QUOTED && r->items[i].len == 1)
		e.delim = r->items[i].s[0];
	else if (r->items[i].type != IMAP_TOK_NIL)
		return MF_OK;
	i++;
	if (!imap_item_string(&r->items[i]) || r->items[i].len == 0 ||
	    memchr(r->items[i].s, '\0', r->items[i].len) != NULL)
		return MF_OK;
	e.name = strndup(r->items[i].s, r->items[i].len);
	if (e.name == NULL)
		goto oom;
	if (strcasecmp(e.name, "INBOX") == 0)
		memcpy(e.name, "INBOX", 5);
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		struct mig_list_entry *v = realloc(s->v, cap * sizeof(*v));

		if (v == NULL)
			goto oom;
		s->v = v;
		s->cap = cap;
	}
	if (e.delim != '\0')
		s->delim = e.delim;
	s->v[s->n++] = e;
	return MF_OK;
oom:
	free(e.name);
	s->oom = true;
	return MF_ERROR;
}

static int do_list(struct imap_conn *c, const char *cmd, struct mig_list *s, char *err,
		   size_t errlen)
{
	memset(s, 0, sizeof(*s));
	if (imap_simple(c, on_list, s, err, errlen, "%s", cmd) != MF_OK) {
		if (s->oom)
			mf_err(err, errlen, "out of memory");
		list_free(s);
		return MF_ERROR;
	}
	return MF_OK;
}

static const struct mig_list_entry *list_find(const struct mig_list *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, name) == 0)
			return &s->v[i];
	return NULL;
}

static const struct mig_list_entry *list_find_use(const struct mig_list *s, unsigned int use)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].use & use)
			return &s->v[i];
	return NULL;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct mig_list_entry *)a)->name, ((const struct mig_list_entry *)b)->name);
}

/* The source name with its delimiter replaced by the destination's; a
 * component holding the destination's delimiter cannot be represented. */
static char *translate(const char *name, char sd, char dd, char *err, size_t errlen)
{
	char *out = strdup(name);

	if (out == NULL) {
		mf_err(err, errlen, "out of memory");
		return NULL;
	}
	if (sd == dd || sd == '\0' || dd == '\0')
		return out;
	for (char *p = out; *p != '\0'; p++) {
		if (*p == dd) {
			mf_err(err, errlen, "folder '%s': its name holds the destination's "
				"hierarchy delimiter '%c'", name, dd);
			free(out);
			return NULL;
		}
		if (*p == sd)
			*p = dd;
	}
	return out;
}

/* Where a source folder goes: INBOX stays INBOX; a special-use folder
 * (and everything under it) goes to the destination's folder of that use;
 * the rest keeps its name with the delimiter translated. */
char *mig_map_name(const struct mig_list *src, const struct mig_list *dst,
		   const char *name, unsigned int use, char *err, size_t errlen)
{
	static const unsigned int mapped = MU_SENT | MU_DRAFTS | MU_TRASH | MU_JUNK | MU_ARCHIVE;
	const struct mig_list_entry *d;

	if (strcmp(name, "INBOX") == 0)
		return strdup("INBOX");
	if ((use & mapped) != 0 && (d = list_find_use(dst, use & mapped)) != NULL)
		return strdup(d->name);
	/* Under a special-use folder: "Sent Items/2019" -> "Sent/2019". */
	for (size_t i = 0; i < src->n && src->delim != '\0'; i++) {
		const struct mig_list_entry *e = &src->v[i];
		size_t n = strlen(e->name);

		if ((e->use & mapped) == 0 || strncmp(name, e->name, n) != 0 ||
		    name[n] != src->delim || (d = list_find_use(dst, e->use & mapped)) == NULL)
			continue;
		{
			char *rest = translate(name + n + 1, src->delim, dst->delim, err, errlen);
			size_t len;
			char *out;

			if (rest == NULL)
				return NULL;
			len = strlen(d->name) + 1 + strlen(rest) + 1;
			out = malloc(len);
			if (out != NULL)
				snprintf(out, len, "%s%c%s", d->name, dst->delim ? dst->delim : '/',
					 rest);
			free(rest);
			return out;
		}
	}
	return translate(name, src->delim, dst->delim, err, errlen);
}

/* CREATE name; a server that does not make missing parents itself gets
 * them made one by one (a parent that exists already is fine; one made
 * here is selectable even if the source's was \Noselect: such a server
 * has no other kind). */
static int create(struct mig_ctx *x, const char *name, char delim)
{
	char q[2048], parent[1024];

	if (mig_mbox(x->dst, name, q, sizeof(q), x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	if (imap_simple(x->dst, NULL, NULL, x->err, sizeof(x->err), "CREATE %s", q) == MF_OK) {
		x->rep->folders_created++;
		return MF_OK;
	}
	if (strstr(x->err, "[ALREADYEXISTS]") != NULL) /* \Noselect there */
		goto ok;
	if (delim == '\0' || strchr(name, delim) == NULL || strlen(name) >= sizeof(parent))
		return MF_ERROR;
	for (const char *p = strchr(name, delim); p != NULL; p = strchr(p + 1, delim)) {
		memcpy(parent, name, (size_t)(p - name));
		parent[p - name] = '\0';
		if (mig_mbox(x->dst, parent, q, sizeof(q), x->err, sizeof(x->err)) != MF_OK)
			return MF_ERROR;
		/* Refusals here ("exists") are judged by the retry below. */
		(void)imap_simple(x->dst, NULL, NULL, x->err, sizeof(x->err), "CREATE %s", q);
	}
	if (mig_mbox(x->dst, name, q, sizeof(q), x->err, sizeof(x->err)) != MF_OK ||
	    imap_simple(x->dst, NULL, NULL, x->err, sizeof(x->err), "CREATE %s", q) != MF_OK)
		return MF_ERROR;
	x->rep->folders_created++;
ok:
	x->err[0] = '\0';
	return MF_OK;
}

void mig_folders_free(struct mig_ctx *x)
{
	for (size_t i = 0; i < x->n_folders; i++) {
		free(x->folders[i].src);
		free(x->folders[i].dst);
	}
	free(x->folders);
	x->folders = NULL;
	x->n_folders = 0;
}

static int subscribe(struct mig_ctx *x, const struct mig_list *src, const struct mig_list *dst)
{
	struct mig_list ssub, dsub;
	int rc = MF_ERROR;

	if (do_list(x->src, "LSUB \"\" \"*\"", &ssub, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	if (do_list(x->dst, "LSUB \"\" \"*\"", &dsub, x->err, sizeof(x->err)) != MF_OK)
		goto out_src;
	for (size_t i = 0; i < ssub.n; i++) {
		const struct mig_list_entry *se = list_find(src, ssub.v[i].name);
		char *name = mig_map_name(src, dst, ssub.v[i].name, se ? se->use : 0, x->err,
				      sizeof(x->err));
		char q[2048];
		int r;

		if (name == NULL)
			goto out;
		if (list_find(&dsub, name) != NULL) {
			free(name);
			continue;
		}
		r = mig_mbox(x->dst, name, q, sizeof(q), x->err, sizeof(x->err));
		if (r == MF_OK)
			r = imap_simple(x->dst, NULL, NULL, x->err, sizeof(x->err), "SUBSCRIBE %s", q);
		free(name);
		if (r != MF_OK)
			goto out;
		x->rep->subscribed++;
	}
	rc = MF_OK;
out:
	list_free(&dsub);
out_src:
	list_free(&ssub);
	return rc;
}

int mig_folders_plan(struct mig_ctx *x)
{
	const char *cmd_src = "LIST \"\" \"*\"";
	struct mig_list src, dst;
	int rc = MF_ERROR;

	if (imap_has(x->src, IMAP_CAP_LIST_EXTENDED) && imap_has(x->src, IMAP_CAP_SPECIAL_USE))
		cmd_src = "LIST \"\" \"*\" RETURN (SPECIAL-USE)";
	if (do_list(x->src, cmd_src, &src, x->err, sizeof(x->err)) != MF_OK)
		return MF_ERROR;
	if (do_list(x->dst, imap_has(x->dst, IMAP_CAP_LIST_EXTENDED) &&
				    imap_has(x->dst, IMAP_CAP_SPECIAL_USE)
			    ? "LIST \"\" \"*\" RETURN (SPECIAL-USE)" : "LIST \"\" \"*\"",
		    &dst, x->err, sizeof(x->err)) != MF_OK)
		goto out_src;
	/* Parents sort before their children, so CREATE goes top down. */
	mig_qsort(src.v, src.n, sizeof(*src.v), cmp_name);
	if (list_find(&src, "INBOX") == NULL) {
		mf_err(x->err, sizeof(x->err), "source: LIST shows no INBOX");
		goto out;
	}
	x->folders = calloc(src.n, sizeof(*x->folders));
	if (x->folders == NULL) {
		mf_err(x->err, sizeof(x->err), "out of memory");
		goto out;
	}
	for (size_t i = 0; i < src.n; i++) {
		const struct mig_list_entry *e = &src.v[i];
		struct mig_folder *f;
		char *dname;

		if (e->noselect)
			continue; /* created implicitly with its children */
		dname = mig_map_name(&src, &dst, e->name, e->use, x->err, sizeof(x->err));
		if (dname == NULL)
			goto out;
		for (size_t k = 0; k < x->n_folders; k++)
			if (strcmp(x->folders[k].dst, dname) == 0) {
				mf_err(x->err, sizeof(x->err),
				       "source folders '%s' and '%s' would both go to '%s'",
				       x->folders[k].src, e->name, dname);
				free(dname);
				goto out;
			}
		f = &x->folders[x->n_folders++];
		f->src = strdup(e->name);
		f->dst = dname;
		f->use = e->use;
		f->selectable = true;
		if (f->src == NULL) {
			mf_err(x->err, sizeof(x->err), "out of memory");
			goto out;
		}
		{
			const struct mig_list_entry *d = list_find(&dst, dname);

			if (d != NULL && !d->noselect)
				continue;
			if (create(x, dname, dst.delim) != MF_OK)
				goto out;
		}
	}
	x->rep->folders = (unsigned int)x->n_folders;
	rc = subscribe(x, &src, &dst);
out:
	list_free(&dst);
out_src:
	list_free(&src);
	return rc;
}
