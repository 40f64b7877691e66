/*
 * test_fair.c - the turn order fair.c gives a destination's waiting list:
 * two accounts alternate whatever order their mail came in, a share of 3
 * gives three turns in four, an account's campaigns split its part, the
 * recipients of one message stay side by side, and mail claimed over the
 * destination's cap comes in only for a flow short of its part.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "fair.h"

struct fixture {
    struct engine e;
    struct domain_policy pol;
    struct dest d;
    struct account_policy acct[2];
    struct item *items[4096];
    size_t n;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->pol.max_rcpts_per_message = 50;
    f->d.e = &f->e;
    f->d.pol = &f->pol;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fair_free(&f->d);
    for (size_t i = 0; i < f->n; i++)
        free(f->items[i]);
    free(f);
    return 0;
}

/* File one item of (account, campaign) with body body (NULL: its own). */
static struct item *file(struct fixture *f, uint32_t account,
                         uint64_t campaign, struct body *body)
{
    struct item *it = calloc(1, sizeof *it + 1);
    assert_non_null(it);
    it->account = account;
    it->campaign = campaign;
    it->body = body;
    it->dest = &f->d;
    f->items[f->n++] = it;
    fair_link(&f->e, &f->d, it);
    f->d.nitems++;
    return it;
}

/* Serve the head, as job.c takes the first ready item; its account. */
static uint32_t serve(struct fixture *f)
{
    struct item *it = f->d.head;
    assert_non_null(it);
    it->taken = true;  /* as job.c marks it before fair_served() */
    fair_served(&f->d, it);
    f->d.head = it->next;
    if (!f->d.head)
        f->d.tail = NULL;
    f->d.nitems--;
    return it->account;
}

/* Of the next n served, how many are account's (or campaign's when
 * by_campaign). */
static unsigned count_served(struct fixture *f, unsigned n, uint64_t who,
                             bool by_campaign)
{
    unsigned got = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t c = f->d.head->campaign;
        uint32_t a = serve(f);
        got += (by_campaign ? c : a) == who;
    }
    return got;
}

static void queued_first_gets_no_head_start(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 300; i++)
        file(f, 1, 10, NULL);
    for (int i = 0; i < 100; i++)
        file(f, 2, 20, NULL);
    /* while both wait, every 20 served hold 10 of each */
    for (int w = 0; w < 10; w++)
        assert_int_equal(count_served(f, 20, 2, false), 10);
    /* then account 1 alone */
    assert_int_equal(count_served(f, 200, 1, false), 200);
    assert_null(f->d.head);
}

static void share_weighs_turns(void **state)
{
    struct fixture *f = *state;
    f->acct[0] = (struct account_policy){ .id = 1, .share = 3 };
    f->e.cfg.accounts = f->acct;
    f->e.cfg.naccounts = 1;
    for (int i = 0; i < 100; i++)
        file(f, 2, 20, NULL);  /* the lighter one queued first */
    for (int i = 0; i < 300; i++)
        file(f, 1, 10, NULL);
    unsigned heavy = count_served(f, 200, 1, false);
    assert_in_range(heavy, 148, 152);   /* three in four */
    f->e.cfg.accounts = NULL;
    f->e.cfg.naccounts = 0;
}

static void campaigns_split_their_account(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 200; i++)
        file(f, 1, 10, NULL);
    for (int i = 0; i < 100; i++)
        file(f, 1, 11, NULL);  /* the account's second campaign */
    for (int i = 0; i < 200; i++)
        file(f, 2, 20, NULL);
    /* account 2 half, account 1's campaigns a quarter each */
    unsigned c10 = 0, c11 = 0, c20 = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t c = f->d.head->campaign;
        serve(f);
        c10 += c == 10;
        c11 += c == 11;
        c20 += c == 20;
    }
    assert_in_range(c20, 98, 102);
    assert_in_range(c10, 48, 52);
    assert_in_range(c11, 48, 52);
}

static void campaign_that_ends_leaves_its_part(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 20; i++)
        file(f, 1, 11, NULL);
    for (int i = 0; i < 300; i++)
        file(f, 1, 10, NULL);
    for (int i = 0; i < 300; i++)
        file(f, 2, 20, NULL);
    /* campaign 11's 20 go within the first 100 or so */
    unsigned c11 = count_served(f, 100, 11, true);
    assert_int_equal(c11, 20);
    /* then account 1 (campaign 10 alone) has its whole half again */
    assert_in_range(count_served(f, 100, 1, false), 48, 52);
}

static void one_message_stays_together(void **state)
{
    struct fixture *f = *state;
    struct body *b = (struct body *)(uintptr_t)0x1000; /* compared only */
    for (int i = 0; i < 40; i++)
        file(f, 2, 0, NULL);
    for (int i = 0; i < 120; i++)
        file(f, 1, 0, b);   /* one message: chunks of 50, 50, 20 */
    /* account 2's first, the message's first 50 (one transaction's
     * worth) on its turn, account 2's other 39 while the 50 are charged,
     * then the message's last 70 side by side */
    uint32_t acct[8];
    unsigned len[8], runs = 0;
    for (struct item *it = f->d.head; it; it = it->next) {
        if (runs && acct[runs - 1] == it->account) {
            len[runs - 1]++;
            continue;
        }
        assert_true(runs < 8);
        acct[runs] = it->account;
        len[runs++] = 1;
    }
    assert_int_equal(runs, 4);
    assert_int_equal(acct[0], 2);
    assert_int_equal(len[0], 1);
    assert_int_equal(acct[1], 1);
    assert_int_equal(len[1], 50);
    assert_int_equal(acct[2], 2);
    assert_int_equal(len[2], 39);
    assert_int_equal(acct[3], 1);
    assert_int_equal(len[3], 70);
}

static void over_cap_only_short_of_part(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 100; i++)
        file(f, 1, 10, NULL);
    /* account 2 holds nothing: it may come in over the cap of 100 */
    assert_true(fair_may_exceed(&f->d, 100, 2, 20, 100));
    /* account 1 is the one holding the most: it may not */
    assert_false(fair_may_exceed(&f->d, 100, 1, 10, 100));
    for (int i = 0; i < 60; i++)
        file(f, 2, 20, NULL);
    assert_true(fair_may_exceed(&f->d, 160, 2, 20, 100));
    /* never twice the cap */
    assert_false(fair_may_exceed(&f->d, 200, 2, 20, 100));
    for (int i = 0; i < 40; i++)
        file(f, 2, 20, NULL);
    /* level with account 1: no more */
    assert_false(fair_may_exceed(&f->d, 200 - 1, 2, 20, 100));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(queued_first_gets_no_head_start,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(share_weighs_turns, setup, teardown),
        cmocka_unit_test_setup_teardown(campaigns_split_their_account,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(campaign_that_ends_leaves_its_part,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(one_message_stays_together, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(over_cap_only_short_of_part, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
