/*
 * smtpd.h - sluiced's SMTP listener: mail in over ESMTP (smtp_listen).
 *
 * DESCRIPTION
 *   The listener runs on the engine's loop.  A client authenticates with
 *   AUTH PLAIN or LOGIN (user: an account name, password: an API key with
 *   the send scope; offered after STARTTLS or on loopback) or connects
 *   from smtp_relay_networks (sending as smtp_default_account); anything
 *   else gets 530 and is never relayed.  A message is answered 250 only
 *   after the spool's group commit holds it and every recipient.  The
 *   files: smtpd.c (listeners, connections, I/O, timeouts), smtpd_cmd.c
 *   (commands), smtpd_data.c (DATA and the commit), smtpd_auth.c (AUTH,
 *   its rate limit and audit).
 *
 * DIAGNOSTICS
 *   smtpd_start() returns 0, or ENGINE_E_CONFIG after saying why on
 *   stderr (an address that cannot be bound, tls_cert/tls_key unusable).
 */
#ifndef SLUICE_SMTPD_H
#define SLUICE_SMTPD_H

struct engine;

/* Start listening on every smtp_listen address (none: nothing to do). */
int smtpd_start(struct engine *e);
/* Close the listeners and every connection (stopping). */
void smtpd_stop(struct engine *e);
/* After the loop's last run: free what is left (NULL-safe). */
void smtpd_free(struct engine *e);

#endif
