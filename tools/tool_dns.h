/*
 * tool_dns.h - the CLI's c-ares channel, driven by poll(2) until its
 * queries are answered (tool_dns.c).
 */
#ifndef SLUICE_TOOL_DNS_H
#define SLUICE_TOOL_DNS_H

#include <ares.h>
#include <stdbool.h>

/* A channel asking servers ("ADDR[:PORT],...", as dns_servers is written;
 * NULL: the system's resolv.conf), try_ms for a first try.  0, -EINVAL
 * for a bad server list, -EIO when c-ares does not start. */
int tool_dns_open(ares_channel *ch, const char *servers, int try_ms);
/* Run the queries sent on ch until pending(arg) says none waits, or
 * total_ms pass (then they are cancelled: ARES_ECANCELLED). */
void tool_dns_run(ares_channel ch, bool (*pending)(void *arg), void *arg,
                  int total_ms);
void tool_dns_close(ares_channel ch);

#endif
