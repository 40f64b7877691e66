/*
 * webhook_spec.c - a webhook's settings as JSON text: the form `sluice
 * webhook add` stores in the spool (queue_webhook_add) and sluiced reads
 * back at start, so both sides share one reader and one writer.
 *
 * DESCRIPTION
 *   {"url":URL,"events":"delivered,bounced","secret":S,"batch":N,
 *    "max_in_flight":N,"timeout_ms":N,"max_age_ms":N}; every key but url
 *   may be left out (the [webhook] defaults then).  The values are checked
 *   as the [webhook NAME] keys are (config_webhook.c).
 *
 *   The signature of a POST is made here too, for sluiced and for `sluice
 *   webhook test`: X-Sluice-Signature: t=T,v1=HEX, HEX the hex
 *   HMAC-SHA256, keyed with the secret, of "T." followed by the body.
 *
 * DIAGNOSTICS
 *   config_webhook_from_json() returns -1 with the reason in err for text
 *   that is not such an object or holds a value out of range;
 *   config_webhook_to_json() returns NULL when out of memory.
 */
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* The type names of mask, comma-separated, into buf. */
static const char *events_text(uint32_t mask, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = 0;
    for (int t = 1; t < 32; t++) {
        if (!(mask & (1u << t)))
            continue;
        int n = snprintf(buf + o, cap - o, "%s%s", o ? "," : "",
                         queue_event_name(t));
        if (n < 0 || (size_t)n >= cap - o)
            break;
        o += (size_t)n;
    }
    return buf;
}

char *config_webhook_to_json(const struct webhook_config *w)
{
    char ev[512];
    json_t *j = json_pack("{s:s,s:I,s:I,s:I,s:I}", "url", w->url,
                          "batch", (json_int_t)w->batch,
                          "max_in_flight", (json_int_t)w->max_in_flight,
                          "timeout_ms", (json_int_t)w->timeout_ms,
                          "max_age_ms", (json_int_t)w->max_age_ms);
    if (j && w->events)
        json_object_set_new(j, "events",
                            json_string(events_text(w->events, ev,
                                                    sizeof ev)));
    if (j && w->secret)
        json_object_set_new(j, "secret", json_string(w->secret));
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return s;
}

/* An integer member in lo..hi into *out (left as is when absent). */
static bool get_uint(json_t *j, const char *key, uint64_t lo, uint64_t hi,
                     uint64_t *out)
{
    json_t *v = json_object_get(j, key);
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
        (uint64_t)json_integer_value(v) > hi)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

int config_webhook_from_json(const char *text, struct webhook_config *w,
                             char *err, size_t errlen)
{
    json_t *j = json_loads(text, 0, NULL);
    const char *url = NULL, *events = NULL, *secret = NULL;
    uint64_t batch = 100, inflight = 4, timeout = 10000, age = 86400000;
    const char *bad = NULL;
    memset(w, 0, sizeof *w);
    if (!json_is_object(j) || json_unpack(j, "{s:s,s?s,s?s}", "url", &url,
                                          "events", &events, "secret",
                                          &secret))
        bad = "not a JSON object with a url";
    else if (!config_webhook_url_ok(url))
        bad = "url is not an http:// or https:// URL";
    else if (events && !config_event_types(events, &w->events, NULL, 0))
        bad = "events is not a list of event types";
    else if (secret && (strlen(secret) < 16 || strlen(secret) > 1024))
        bad = "secret is not 16 to 1024 characters";
    else if (!get_uint(j, "batch", 1, 10000, &batch) ||
             !get_uint(j, "max_in_flight", 1, 64, &inflight) ||
             !get_uint(j, "timeout_ms", 100, 600000, &timeout) ||
             !get_uint(j, "max_age_ms", 1000, 30ull * 86400000, &age))
        bad = "a number out of range";
    if (!bad && (!(w->url = strdup(url)) ||
                 (secret && !(w->secret = strdup(secret)))))
        bad = "out of memory";
    json_decref(j);
    if (bad) {
        free(w->url);
        free(w->secret);
        memset(w, 0, sizeof *w);
        snprintf(err, errlen, "%s", bad);
        return -1;
    }
    w->batch = (unsigned)batch;
    w->max_in_flight = (unsigned)inflight;
    w->timeout_ms = (unsigned)timeout;
    w->max_age_ms = age;
    return 0;
}

int config_webhook_signature(const char *secret, long long t,
                             const char *body, size_t len, char *out,
                             size_t cap)
{
    unsigned char mac[32];
    char ts[24], hex[65];
    size_t maclen = 0;
    int tn = snprintf(ts, sizeof ts, "%lld.", t);
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    bool ok = c && tn > 0 &&
              EVP_MAC_init(c, (const unsigned char *)secret, strlen(secret),
                           params) &&
              EVP_MAC_update(c, (const unsigned char *)ts, (size_t)tn) &&
              EVP_MAC_update(c, (const unsigned char *)body, len) &&
              EVP_MAC_final(c, mac, &maclen, sizeof mac) && maclen == 32;
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    if (!ok)
        return -1;
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    int n = snprintf(out, cap, "t=%lld,v1=%s", t, hex);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}
