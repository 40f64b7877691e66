/*
 * accounting.c - the [accounting NAME] files: CSV rows of chosen fields
 * of the spool's events, PowerMTA style, each file a consumer of the
 * spool's events with its own cursor ("acct.NAME").
 *
 * DESCRIPTION
 *   A row is one event: the values of the section's fields, picked by
 *   name from the event's fields (event_fields(), the list the JSON line
 *   is written from: every field the event stream has is a column, now
 *   and later), in the order given.  Every row carries
 *   seq, the key of the resume rule (evfile.c): when fields does not name
 *   it, it is the first column.  A new file starts with a header row of
 *   the field names.  types keeps only events of those types.  Values are
 *   written as text (numbers in decimal, null and a field the event
 *   lacks as empty); a
 *   control character (CR, LF, TAB...) becomes a space, so a row is one
 *   line, and a value holding a comma or a double quote is quoted as RFC
 *   4180 says (libcsv's csv_write).  Rows end in LF.
 *
 *   The file machinery (whole rows, kill -9 resume, the cursor, rotation
 *   with compression, SIGUSR1 reopen) is evfile.c's; this file says what
 *   a row is.
 *
 * DIAGNOSTICS
 *   accounting_open() fails with ENGINE_E_CONFIG for a field the events
 *   do not have, ENGINE_E_LOGDATA for a damaged file, one of another
 *   spool or one whose header row is not that of the fields (they
 *   changed), -errno when a file cannot be opened; the reason in err.
 */
#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "event_json.h"
#include "evfile.h"

/* the text of one value, longer is cut (spool fields are 1.5 KB at most);
 * with config_acct.c's 32 fields a row, quoted, stays well under the
 * 1 MiB batch of evfile.c, so every row fits in an empty batch */
#define VALUE_MAX (8u << 10)

struct acct_file {
    struct engine *e;
    char name[64];
    char **fields;        /* the section's names (copies), seq first when
                             it is added */
    int *fidx;            /* each column's enum event_field */
    size_t nfields;
    size_t seq_col;       /* the column of seq */
    uint64_t types;       /* bit per type kept, 0: all */
    char *header;
    char *value;          /* VALUE_MAX bytes: one value's text */
    struct evfile *f;
    /* line_seq()'s parse state */
    size_t col;
    uint64_t seq;
    bool seq_ok;
};

struct accounting {
    size_t n;
    struct acct_file *files;
};

/* ------------------------------------------------------------- rows */

/* The text of field i of f into a->value (capped; null or absent: empty),
 * control characters as spaces. */
static const char *value_text(struct acct_file *a,
                              const struct event_fields *f, int i)
{
    char *out = a->value;
    size_t n = 0;
    if (f->kind[i] == EVK_STR) {
        n = strnlen(f->str[i], VALUE_MAX - 1);
        memcpy(out, f->str[i], n);
    } else if (f->kind[i] == EVK_NUM) {
        n = event_put_dec(out, f->num[i]);
    }
    out[n] = 0;
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return out;
}

/* One field into buf: as is, or quoted when it holds a comma or a
 * quote.  Its length, or (size_t)-1 when it does not fit. */
static size_t put_field(char *buf, size_t room, const char *s)
{
    size_t n = strlen(s);
    if (strpbrk(s, ",\"")) {
        size_t need = csv_write(buf, room, s, n);
        return need <= room ? need : (size_t)-1;
    }
    if (n > room)
        return (size_t)-1;
    memcpy(buf, s, n);
    return n;
}

/* The event's row (evfile_ops.format). */
static size_t format_row(void *arg, struct evstream_event *x, char *buf,
                         size_t room)
{
    struct acct_file *a = arg;
    const struct queue_event *ev = &x->ev;
    if (a->types && (ev->type >= 64 || !(a->types & (1ull << ev->type))))
        return EVFILE_SKIP;
    struct event_fields f;
    event_fields(a->e, ev, &f);
    size_t len = 0;
    for (size_t i = 0; i < a->nfields; i++) {
        if (i) {
            if (len + 1 > room)
                goto full;
            buf[len++] = ',';
        }
        const char *s = value_text(a, &f, a->fidx[i]);
        size_t n = put_field(buf + len, room - len, s);
        if (n == (size_t)-1)
            goto full;
        len += n;
    }
    if (len + 1 > room)
        goto full;
    buf[len++] = '\n';
    return len;
full:
    return 0;
}

/* libcsv: one field of the row read back. */
static void on_field(void *s, size_t n, void *arg)
{
    struct acct_file *a = arg;
    if (a->col++ != a->seq_col)
        return;
    const char *p = s;
    uint64_t v = 0;
    a->seq_ok = n > 0 && n < 20;
    for (size_t i = 0; i < n && a->seq_ok; i++) {
        if (p[i] < '0' || p[i] > '9')
            a->seq_ok = false;
        else
            v = v * 10 + (uint64_t)(p[i] - '0');
    }
    a->seq = v;
}

/* A row read back at open (evfile_ops.line_seq): the header row has no
 * seq; any other row must have one. */
static int row_seq(void *arg, const char *line, size_t n, uint64_t *seq)
{
    struct acct_file *a = arg;
    size_t hl = strlen(a->header) - 1;
    if (n == hl && !memcmp(line, a->header, n))
        return 0;
    struct csv_parser p;
    if (csv_init(&p, 0))
        return -ENOMEM;
    a->col = 0;
    a->seq_ok = false;
    bool ok = csv_parse(&p, line, n, on_field, NULL, a) == n &&
              !csv_fini(&p, on_field, NULL, a);
    csv_free(&p);
    if (!ok || !a->seq_ok || !a->seq)
        return ENGINE_E_LOGDATA;
    *seq = a->seq;
    return 1;
}

static const struct evfile_ops acct_ops = { row_seq, format_row,
                                            "a row of its fields with a seq" };

/* ------------------------------------------------------------- open */

/* The names the rows may use, for the message about an unknown one. */
static void known_fields(char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < EVF_COUNT; i++) {
        int n = snprintf(out + o, cap - o, "%s%s", o ? ", " : "",
                         event_field_name(i));
        if (n < 0 || (size_t)n >= cap - o)
            break;
        o += (size_t)n;
    }
}

/* A file that has lines must begin with this header: rows of other
 * fields would be read as these.  0 or ENGINE_E_LOGDATA (said in err). */
static int header_fits(const struct acct_file *a, const char *path,
                       char *err, size_t errlen)
{
    size_t hl = strlen(a->header);
    char *buf = malloc(hl);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got = buf && fd >= 0 ? pread(fd, buf, hl, 0) : -1;
    int rc = 0;
    if (got > 0 && ((size_t)got < hl || memcmp(buf, a->header, hl))) {
        snprintf(err, errlen, "accounting file %s %s: its header row is not "
                 "that of fields = %.*s: the fields changed or it is not "
                 "an accounting file; move it away", a->name, path,
                 (int)hl - 1, a->header);
        rc = ENGINE_E_LOGDATA;
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

/* One section's file: fields checked, header made, file opened. */
static int open_one(struct engine *e, struct acct_file *a,
                    const struct config_accounting *c, uint64_t newest,
                    char *err, size_t errlen)
{
    a->e = e;
    snprintf(a->name, sizeof a->name, "%s", c->name);
    a->types = c->types;
    bool has_seq = false;
    for (size_t i = 0; i < c->nfields; i++) {
        if (event_field_find(c->fields[i]) < 0) {
            char known[1024];
            known_fields(known, sizeof known);
            snprintf(err, errlen, "[accounting %s] fields: '%s' is not a "
                     "field of the events (they have: %s)", c->name,
                     c->fields[i], known);
            return ENGINE_E_CONFIG;
        }
        has_seq |= !strcmp(c->fields[i], "seq");
    }
    a->nfields = c->nfields + !has_seq;
    if (!(a->fields = calloc(a->nfields, sizeof *a->fields)) ||
        !(a->fidx = calloc(a->nfields, sizeof *a->fidx)) ||
        !(a->value = malloc(VALUE_MAX)))
        return -ENOMEM;
    size_t k = 0, hlen = 2;
    if (!has_seq && !(a->fields[k++] = strdup("seq")))
        return -ENOMEM;
    for (size_t i = 0; i < c->nfields; i++)
        if (!(a->fields[k++] = strdup(c->fields[i])))
            return -ENOMEM;
    for (size_t i = 0; i < a->nfields; i++) {
        a->fidx[i] = event_field_find(a->fields[i]);
        if (!strcmp(a->fields[i], "seq"))
            a->seq_col = i;
        hlen += strlen(a->fields[i]) + 1;
    }
    if (!(a->header = malloc(hlen)))
        return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < a->nfields; i++)
        o += (size_t)snprintf(a->header + o, hlen - o, "%s%s", i ? "," : "",
                              a->fields[i]);
    snprintf(a->header + o, hlen - o, "\n");
    char what[96], cursor[QUEUE_MAX_CURSOR_NAME + 1];
    snprintf(what, sizeof what, "accounting file %s", c->name);
    int n = snprintf(cursor, sizeof cursor, "acct.%s", c->name);
    if (n < 0 || (size_t)n >= sizeof cursor) {
        snprintf(err, errlen, "[accounting %s]: the name is longer than %d "
                 "characters", c->name, QUEUE_MAX_CURSOR_NAME - 5);
        return ENGINE_E_CONFIG;
    }
    struct evfile_spec spec = {
        .what = what, .path = c->path, .cursor = cursor, .header = a->header,
        .rotate = c->rotate, .ops = &acct_ops, .arg = a,
    };
    int rc = evfile_open(&a->f, e, &spec, newest, err, errlen);
    return rc ? rc : header_fits(a, c->path, err, errlen);
}

/* Free the files (closing each that is open). */
static void acct_free(struct accounting *ac)
{
    if (!ac)
        return;
    for (size_t i = 0; i < ac->n; i++) {
        struct acct_file *a = &ac->files[i];
        if (a->f)
            evfile_close(a->f);
        for (size_t k = 0; a->fields && k < a->nfields; k++)
            free(a->fields[k]);
        free(a->fields);
        free(a->fidx);
        free(a->header);
        free(a->value);
    }
    free(ac->files);
    free(ac);
}

int accounting_open(struct engine *e, char *err, size_t errlen)
{
    const struct config *c = &e->cfg;
    if (!c->naccounting)
        return 0;
    uint64_t newest;
    int rc = queue_events_last(e->q, &newest);
    if (rc) {
        snprintf(err, errlen, "spool %s: %s", c->spool, engine_strerror(rc));
        return rc;
    }
    struct accounting *ac = calloc(1, sizeof *ac);
    if (!ac || !(ac->files = calloc(c->naccounting, sizeof *ac->files))) {
        free(ac);
        snprintf(err, errlen, "accounting: out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < c->naccounting; i++) {
        ac->n = i + 1;
        rc = open_one(e, &ac->files[i], &c->accounting[i], newest, err,
                      errlen);
        if (rc == -ENOMEM)
            snprintf(err, errlen, "accounting: out of memory");
        if (rc) {
            acct_free(ac);
            return rc;
        }
    }
    e->acct = ac;
    return 0;
}

void accounting_pump(struct engine *e, bool all)
{
    struct accounting *ac = e->acct;
    for (size_t i = 0; ac && i < ac->n; i++)
        evfile_pump(ac->files[i].f, all);
}

void accounting_reopen(struct engine *e)
{
    struct accounting *ac = e->acct;
    for (size_t i = 0; ac && i < ac->n; i++)
        evfile_reopen(ac->files[i].f);
}

void accounting_close(struct engine *e)
{
    if (!e->acct)
        return;
    evstream_committed(e); /* the spool's end read again (eventlog_pump) */
    accounting_pump(e, true);
    acct_free(e->acct);
    e->acct = NULL;
}
