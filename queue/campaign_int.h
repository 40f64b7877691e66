/*
 * campaign_int.h - what campaigns.c and campaign_send.c share: the keys
 * and records of the "campaigns" database.
 *
 * RECORD LAYOUTS (little-endian via rec_w/rec_r, admin_int.h; strN = uN
 * length then bytes, no NUL; both records start with a format byte, 1)
 *   'i' u64 id -> definition, fixed once the campaign leaves the draft:
 *            u8 fmt, u32 account, u64 list, i64 created, i64 schedule,
 *            str8 name, str16 from, str16 reply_to, str16 subject,
 *            u8 has_text, u32 html_len, html, u32 text_len, text
 *            [, u8 track: QUEUE_TRACK_* bits, only when not 0; a record
 *            without it (before tracking) is an untracked campaign]
 *   'p' u64 id -> status, small, rewritten by every state change and by
 *            each send batch: u8 fmt, u8 state, u8 flags (1 send
 *            complete), i64 started, i64 finished, u64 cursor,
 *            u64 recipients, u64 suppressed
 *   'n' u32 account . name -> u64 id (names are unique per account)
 *   't' u64 id -> tracking counts (track.c): u8 fmt, u64 opens, u64
 *            unique opens, u64 clicks, u64 unique clicks
 *   'T' u64 id . u64 delivery -> what that delivery did: u8 fmt, u16
 *            opens, u16 clicks recorded (what makes the first unique;
 *            at most QUEUE_TRACK_MAX each)
 *   Keys use big-endian integers so they sort by number.
 */
#ifndef SLUICE_QUEUE_CAMPAIGN_INT_H
#define SLUICE_QUEUE_CAMPAIGN_INT_H

#include "admin_int.h"
#include "queue_campaign.h"
#include "track_int.h"

#define CAMP_FMT 1
#define CAMP_F_COMPLETE 1
#define CAMP_STATUS_LEN (3 + 6 * 8)

/* Key 'i' or 'p' with a campaign id (9 bytes). */
static inline MDB_val camp_key(unsigned char key[9], char kind, uint64_t id)
{
    key[0] = (unsigned char)kind;
    be64_put(key + 1, id);
    return (MDB_val){ 9, key };
}

/* Read campaign id inside txn: the definition (templates copied only when
 * templates is set) and the status.  QUEUE_ENOTFOUND, QUEUE_ECORRUPT. */
int qcampaign_load(struct queue *q, MDB_txn *txn, uint64_t id,
                   struct queue_campaign *c, bool templates);

/* Decode a definition ('i', templates only when asked) or a status ('p')
 * record into c; QUEUE_ECORRUPT when it does not decode, -ENOMEM. */
int qcampaign_def_decode(const MDB_val *v, uint64_t id,
                         struct queue_campaign *c, bool templates);
int qcampaign_status_decode(const MDB_val *v, struct queue_campaign *c);

/* Write the status record of c. Returns 0 or a raw LMDB code (> 0). */
int qcampaign_status_put(struct queue *q, MDB_txn *txn,
                         const struct queue_campaign *c);

/* Move c to state `to` at time `when` if the state machine allows it
 * (sets started and finished); QUEUE_ESTATE with t's detail if not.
 * Only changes c: the caller stores it. */
int qcampaign_enter(struct admin_tx *t, struct queue_campaign *c, int to,
                    int64_t when);

/* The campaign's counters as stored in txn (zeros if none). */
int qcampaign_counts_txn(struct queue *q, MDB_txn *txn, uint64_t id,
                         struct queue_counts *k);

/* The state c is really in at time now given its counters k: scheduled
 * becomes sending once its schedule came, sending or paused becomes done
 * when send completed and every recipient is terminal. */
int qcampaign_derived_state(const struct queue_campaign *c,
                            const struct queue_counts *k, int64_t now);

/* The writer's flush took campaign id's queued count to 0 in w's
 * transaction: record its time as the campaign's "finished" mark
 * (campaign_end.c).  0 or a txn failure. */
int qcampaign_queue_emptied(struct wctx *w, uint64_t id);

/* The time (unix seconds) of campaign id's newest terminal event in the
 * event log, reading back at most a bounded number of events; 0 none
 * found. */
int64_t qcampaign_last_end_scan(struct queue *q, MDB_txn *txn, uint64_t id);

/* When campaign c, now found done, finished: its recorded mark, else the
 * scanned time (0: none), else now; never before it started nor after
 * now. */
int64_t qcampaign_finish_time(const struct queue_campaign *c, int64_t scanned,
                              int64_t now);

#endif
