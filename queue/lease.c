/*
 * lease.c - the set of delivery ids this process has claimed.
 *
 * DESCRIPTION
 *   Open addressing with linear probing and backward-shift deletion, so no
 *   tombstones pile up as claims come and go.  Id 0 marks an empty slot
 *   (delivery ids start at 1).  The table doubles at 50% load; its size is
 *   bounded by what the claiming engine holds in flight.
 *
 * DIAGNOSTICS
 *   lease_add() returns -ENOMEM when the table cannot grow.
 */
#include <errno.h>
#include <stdlib.h>

#include "queue_int.h"

static size_t slot_of(uint64_t id, size_t cap)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdull;
    id ^= id >> 33;
    return (size_t)id & (cap - 1);
}

/* Double the table and reinsert every id. */
static int grow(struct lease_set *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 1024;
    uint64_t *n = calloc(ncap, sizeof *n);
    if (!n)
        return -ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        uint64_t id = s->slots[i];
        if (!id)
            continue;
        size_t j = slot_of(id, ncap);
        while (n[j])
            j = (j + 1) & (ncap - 1);
        n[j] = id;
    }
    free(s->slots);
    s->slots = n;
    s->cap = ncap;
    return 0;
}

int lease_add(struct lease_set *s, uint64_t id)
{
    if ((s->count + 1) * 2 > s->cap) {
        int err = grow(s);
        if (err)
            return err;
    }
    size_t j = slot_of(id, s->cap);
    while (s->slots[j]) {
        if (s->slots[j] == id)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = id;
    s->count++;
    return 0;
}

bool lease_has(const struct lease_set *s, uint64_t id)
{
    if (!s->cap)
        return false;
    for (size_t j = slot_of(id, s->cap); s->slots[j];
         j = (j + 1) & (s->cap - 1))
        if (s->slots[j] == id)
            return true;
    return false;
}

bool lease_del(struct lease_set *s, uint64_t id)
{
    if (!s->cap)
        return false;
    size_t mask = s->cap - 1, j = slot_of(id, s->cap);
    while (s->slots[j] != id) {
        if (!s->slots[j])
            return false;
        j = (j + 1) & mask;
    }
    /* shift later members of the probe run back into the hole */
    size_t hole = j;
    for (size_t k = (j + 1) & mask; s->slots[k]; k = (k + 1) & mask) {
        size_t home = slot_of(s->slots[k], s->cap);
        bool movable = hole <= k ? (home <= hole || home > k)
                                 : (home <= hole && home > k);
        if (movable) {
            s->slots[hole] = s->slots[k];
            hole = k;
        }
    }
    s->slots[hole] = 0;
    s->count--;
    return true;
}

void lease_free(struct lease_set *s)
{
    free(s->slots);
    s->slots = NULL;
    s->cap = s->count = 0;
}
