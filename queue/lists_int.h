/*
 * lists_int.h - what lists.c, contacts.c, import.c and suppress.c share:
 * key layouts, record layouts and the loaders used inside transactions.
 *
 * KEY LAYOUTS (integers big-endian, so LMDB's byte order is numeric)
 *   lists     'i' u64 list -> list record
 *             'n' u32 account . name -> u64 list
 *   contacts  u64 contact -> contact record
 *   members   'e' u64 list . lower-case address -> u64 contact
 *             'c' u64 list . u64 contact -> (empty)   list order by id
 *   suppress  u32 owner . lower-case address -> suppression record
 *             u32 owner . 0xff . lower-case address -> soft-bounce
 *             streak (hygiene.c; after the owner's addresses)
 *   meta      "next_list", "next_contact", "next_import" u64 (next to use)
 *
 * RECORD LAYOUTS (little-endian, as admin_int.h; format byte 1 unless
 * said otherwise)
 *   list        u8 fmt, u8 flags (1 deleting), u32 account, i64 created,
 *               u64 contacts, str8 name, u8 nfields, nfields x str8 field
 *   contact     u8 fmt 2, varint (LEB128) list, import, line, varint len
 *               . address . NUL, u8 nvalues, nvalues x (varint len .
 *               value . NUL) in the list's field order (a list that grew
 *               fields later has contacts with fewer values: the rest read
 *               "").  Format 1 (schema 6 and before: u64 list, u32
 *               import, u64 line, u16 lengths) is read, not written.
 *   suppression u8 fmt 2, i64 since, u32 added_by, str8 reason,
 *               str8 source.  added_by is the account whose action (or
 *               whose contact's: an unsubscribe, a bounce, a complaint)
 *               put the address there: the owner or, on a shared list,
 *               one of its sub-accounts; never 0.  Format 1 (written
 *               before sluice recorded it) lacks added_by and reads as
 *               added by the owner (queue_suppression.added_by_recorded
 *               false); both are read, only format 2 is written.
 *   The NUL after each string lets readers hand out pointers into the map.
 *
 *   A list being deleted keeps its 'i' record with the deleting flag (and
 *   no 'n' entry) until its contacts are gone: readers treat it as absent.
 */
#ifndef SLUICE_QUEUE_LISTS_INT_H
#define SLUICE_QUEUE_LISTS_INT_H

#include "admin_int.h"
#include "queue_campaign.h"

#define LIST_FMT 1
#define LIST_F_DELETING 1
#define LIST_REC_MAX (1 + 1 + 4 + 8 + 8 + 1 + QUEUE_MAX_LIST_NAME + 1 +     \
                      QUEUE_MAX_FIELDS * (1 + QUEUE_MAX_FIELD_NAME))
#define CONTACT_FIXED (1 + 8 + 4 + 8)    /* format 1's; format 2 is no
                                           larger but by its varints */
#define CONTACT_FMT 2
#define MEMBER_KEY_MAX (1 + 8 + QUEUE_MAX_RCPT)
#define SUPPRESS_KEY_MAX (4 + QUEUE_MAX_RCPT)
#define SUPP_FMT_V1 1            /* without added_by: read, never written */
#define SUPP_FMT 2
#define SUPP_REC_MAX (1 + 8 + 4 + 1 + QUEUE_MAX_SUPPRESS_REASON + 1 +        \
                      QUEUE_MAX_SUPPRESS_SOURCE)

/* A list as stored, with its flags. */
struct list_rec {
    struct queue_list l;
    unsigned flags;
};

/* Whether the schema-4 databases are there (a read-only open of an older
 * spool lacks them: read as empty). */
bool qlists_absent(struct queue *q);

/* Load list id inside txn (deleting lists too; the caller checks flags).
 * QUEUE_ENOTFOUND when absent, QUEUE_ECORRUPT when it does not decode. */
int qlist_load(struct queue *q, MDB_txn *txn, uint64_t id,
               struct list_rec *r);
/* Store r's record under its id. */
int qlist_store(struct admin_tx *t, const struct list_rec *r);

/* Read-and-bump a u64 meta counter (starts at 1): *v gets the value to
 * use, the stored one becomes *v + n. */
int qmeta_take(struct admin_tx *t, const char *name, uint64_t n,
               uint64_t *v);

/* Lower-case copy of an address (at most QUEUE_MAX_RCPT bytes) into out
 * (cap >= QUEUE_MAX_RCPT + 1); its length, or 0 when empty or too long. */
size_t qaddr_lower(const char *addr, size_t len, char *out);

/* Keys: members 'e' (list, lower-case address), 'c' (list, contact);
 * suppress (owner, lower-case address).  buf must hold MEMBER_KEY_MAX,
 * 17 and SUPPRESS_KEY_MAX bytes.  The address is taken as given. */
MDB_val qmember_key(unsigned char *buf, uint64_t list, const char *lower,
                    size_t len);
MDB_val qmember_id_key(unsigned char *buf, uint64_t list, uint64_t contact);
MDB_val qsupp_key(unsigned char *buf, uint32_t owner, const char *lower,
                  size_t len);

/* A contact record decoded in place: pointers into the value. */
struct contact_view {
    uint64_t list;
    uint32_t import;
    uint64_t line;
    const char *email;
    size_t email_len;
    unsigned nvalues;
    const char *values[QUEUE_MAX_FIELDS];
    size_t lens[QUEUE_MAX_FIELDS];
};
int qcontact_decode(const MDB_val *v, struct contact_view *c);

/* Decoders of list and suppression records (check.c uses them too);
 * QUEUE_ECORRUPT when the record does not decode.  email, reason and
 * source have room for their caps plus the NUL. */
int qlist_decode(const MDB_val *v, uint64_t id, struct list_rec *r);
int qsupp_decode(const MDB_val *k, const MDB_val *v, char *email,
                 char *reason, char *source, struct queue_suppression *s);
/* Pack a suppression record (format SUPP_FMT) into buf (SUPP_REC_MAX
 * bytes); reason and source cut to their caps, NULL as "".  Its length
 * (the one writer of the layout: suppress.c and hygiene.c use it). */
size_t qsupp_encode(unsigned char *buf, int64_t since, uint32_t added_by,
                    const char *reason, const char *source);
/* Whether v is a soft-bounce streak record (hygiene.c). */
bool hygiene_streak_ok(const MDB_val *v);

/* Delete up to max contacts of list (members entries too); *left says
 * whether any remain.  *deleted (may be NULL) gets how many went. */
int qcontacts_purge(struct admin_tx *t, uint64_t list, size_t max,
                    bool *left, uint64_t *deleted);

#endif
