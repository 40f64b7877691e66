/*
 * contact_find.c - one contact of a list by its address, for `sluice
 * campaign preview` and `test`.
 *
 * DESCRIPTION
 *   Looks the lower-cased address up in the members index of the list
 *   (key layouts in lists_int.h) and hands the contact to the caller
 *   through queue_contact_get(), so the contact is decoded in one place
 *   (contacts.c).  Two read transactions: a contact deleted in between
 *   reads as not found.
 *
 * DIAGNOSTICS
 *   -EINVAL for an empty or over-long address, QUEUE_ENOTFOUND when the
 *   list holds no such address, QUEUE_ECORRUPT for a bad index value.
 */
#include <errno.h>
#include <string.h>

#include "lists_int.h"

int queue_contact_find(struct queue *q, uint64_t list, const char *email,
                       void (*cb)(void *arg, const struct queue_contact *c),
                       void *arg)
{
    char lower[QUEUE_MAX_RCPT + 1];
    unsigned char kb[MEMBER_KEY_MAX];
    MDB_txn *txn;
    size_t n = email ? strnlen(email, QUEUE_MAX_RCPT + 1) : 0;
    if (!n || n > QUEUE_MAX_RCPT || !(n = qaddr_lower(email, n, lower))) {
        queue_set_detail("invalid address");
        return -EINVAL;
    }
    if (qlists_absent(q))
        return QUEUE_ENOTFOUND;
    int err = queue_read_begin(q, &txn);
    if (err)
        return err;
    MDB_val k = qmember_key(kb, list, lower, n), v;
    int rc = mdb_get(txn, q->dbi[DB_MEMBERS], &k, &v);
    uint64_t id = rc == 0 && v.mv_size == 8 ? be64_get(v.mv_data) : 0;
    queue_read_end(q, txn);
    if (rc)
        return queue_err_mdb(rc);
    if (!id)
        return QUEUE_ECORRUPT;
    return queue_contact_get(q, id, cb, arg);
}
