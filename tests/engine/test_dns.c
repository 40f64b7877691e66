/*
 * test_dns.c - the engine's resolver against a real dnsmasq on loopback.
 *
 * Starts /usr/sbin/dnsmasq on 127.0.0.1 and a free high port with a zone
 * generated in a temp dir (mx-host=, host-record=, local=/test/), and stops
 * it by PID at the end. SERVFAIL and timeouts come from sockets the test
 * opens itself on 127.0.0.1. Each case owns a loop and a resolver and ends
 * with uv_loop_close() == 0, so leaked handles fail the case.
 *
 * Skips every case (not fails) when dnsmasq is not installed; tools/deps.sh
 * installs it (dnsmasq-base). dnsmasq gets SIGTERM if the test process
 * dies, so a crashed run leaves no server behind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <uv.h>

#include "dns.h"

#define DNSMASQ "/usr/sbin/dnsmasq"

/* E(): a call that must return 0; names file, line and the error. */
#define E(expr)                                                            \
  do {                                                                     \
    int e_rc_ = (expr);                                                    \
    if (e_rc_ != 0)                                                        \
      fail_msg("%s:%d: %s -> %d (%s)", __FILE__, __LINE__, #expr, e_rc_,   \
               dns_strerror(e_rc_));                                       \
  } while (0)

/* ---- dnsmasq fixture --------------------------------------------------- */

static char tmpdir[64];
static char servers[64];
static pid_t dnsmasq_pid = -1;

static const char zone[] =
    "local=/test/\n"
    "local-ttl=600\n"
    "mx-host=two.test,mx1.two.test,20\n"
    "mx-host=two.test,mx2.two.test,10\n"
    "host-record=mx1.two.test,127.0.0.11,300\n"
    "host-record=mx2.two.test,127.0.0.12,::1\n"
    "host-record=implicit.test,127.0.0.20\n"
    "host-record=short.test,127.0.0.21,1\n"
    "mx-host=nullmx.test,.,0\n"
    "mx-host=nohost.test,missing.nohost.test,10\n"
    "mx-host=halfdead.test,missing.halfdead.test,5\n"
    "mx-host=halfdead.test,mx1.two.test,50\n"
    "txt-record=nodata.test,\"no mail here\"\n";

/* A UDP+TCP port on 127.0.0.1 that is free right now. */
static int free_port(void)
{
  for (int tries = 0; tries < 20; tries++) {
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (u >= 0 && t >= 0 &&
        bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        getsockname(u, (struct sockaddr *)&sin, &len) == 0 &&
        bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0)
      port = ntohs(sin.sin_port);
    if (u >= 0)
      close(u);
    if (t >= 0)
      close(t);
    if (port > 1024)
      return port;
  }
  return -1;
}

/* Whether something is bound to UDP 127.0.0.1:port. */
static int udp_port_taken(int port)
{
  struct sockaddr_in sin = {.sin_family = AF_INET};
  int s = socket(AF_INET, SOCK_DGRAM, 0), taken;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons((uint16_t)port);
  taken = bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0 &&
          errno == EADDRINUSE;
  close(s);
  return taken;
}

/* Write text to path; 0 or -1. */
static int write_file(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  int rc = fputs(text, f) < 0 ? -1 : 0;
  return fclose(f) == 0 ? rc : -1;
}

/* Start dnsmasq and wait until it has bound its port. */
static int group_setup(void **state)
{
  char conf[96], log[96], pidf[96], portarg[32], confarg[128], pidarg[128];
  int port;

  if (access(DNSMASQ, X_OK) != 0)
    return -1;              /* installed by tools/deps.sh: a failure */
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/sluice-dns-XXXXXX");
  if (!mkdtemp(tmpdir))
    return -1;
  snprintf(conf, sizeof(conf), "%s/dnsmasq.conf", tmpdir);
  snprintf(log, sizeof(log), "%s/dnsmasq.log", tmpdir);
  snprintf(pidf, sizeof(pidf), "%s/dnsmasq.pid", tmpdir);
  /* big.test: 12 MX hosts listed worst first, each with A and AAAA */
  char text[sizeof(zone) + 12 * 96];
  size_t used = (size_t)snprintf(text, sizeof(text), "%s", zone);
  for (int i = 12; i >= 1 && used < sizeof(text); i--)
    used += (size_t)snprintf(text + used, sizeof(text) - used,
                             "mx-host=big.test,h%d.big.test,%d\n"
                             "host-record=h%d.big.test,127.0.1.%d,::1\n",
                             i, i * 10, i, i);
  if (used >= sizeof(text) || write_file(conf, text) < 0 ||
      (port = free_port()) < 0)
    return -1;
  snprintf(portarg, sizeof(portarg), "--port=%d", port);
  snprintf(confarg, sizeof(confarg), "--conf-file=%s", conf);
  snprintf(pidarg, sizeof(pidarg), "--pid-file=%s", pidf);
  snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);

  dnsmasq_pid = fork();
  if (dnsmasq_pid < 0)
    return -1;
  if (dnsmasq_pid == 0) {
    /* if the test dies (crash, ASan abort), dnsmasq goes with it */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() == 1)
      _exit(126);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execl(DNSMASQ, DNSMASQ, "--no-daemon", portarg,
          "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
          "--no-hosts", confarg, pidarg, "--user=root", "--group=root",
          (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 500; i++) {       /* up to 5 s */
    int st;
    if (waitpid(dnsmasq_pid, &st, WNOHANG) == dnsmasq_pid) {
      fprintf(stderr, "dnsmasq exited early, see %s\n", log);
      dnsmasq_pid = -1;
      return -1;
    }
    if (udp_port_taken(port))
      return 0;
    usleep(10000);
  }
  return -1;
}

/* Stop dnsmasq by PID and remove the temp dir. */
static int group_teardown(void **state)
{
  char path[96];

  if (dnsmasq_pid > 0) {
    kill(dnsmasq_pid, SIGTERM);
    waitpid(dnsmasq_pid, NULL, 0);
    dnsmasq_pid = -1;
  }
  if (tmpdir[0]) {
    const char *files[] = {"dnsmasq.conf", "dnsmasq.log", "dnsmasq.pid"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
      snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
      unlink(path);
    }
    rmdir(tmpdir);
  }
  return 0;
}

/* ---- a loop, a resolver, and what a callback saw ------------------------ */

/* A copy of one result, taken inside the callback. */
struct seen {
  int calls;
  enum dns_status status;
  char reason[160];
  char domain[DNS_NAME_MAX + 1];
  int implicit_mx;
  unsigned ttl, ntargets, naddrs;
  char host[DNS_MAX_HOSTS][DNS_NAME_MAX + 1];
  unsigned pref[DNS_MAX_HOSTS], hostaddrs[DNS_MAX_HOSTS];
  char addr[DNS_MAX_ADDRS][INET6_ADDRSTRLEN];
  unsigned port[DNS_MAX_ADDRS];
  struct dns *close_from_cb;    /* if set, the callback closes it */
};

/* Callback: copy the result into a struct seen. */
static void on_result(const struct dns_result *r, void *arg)
{
  struct seen *s = arg;
  unsigned k = 0;

  s->calls++;
  s->status = r->status;
  snprintf(s->reason, sizeof(s->reason), "%s", r->reason);
  snprintf(s->domain, sizeof(s->domain), "%s", r->domain);
  s->implicit_mx = r->implicit_mx;
  s->ttl = r->ttl;
  s->ntargets = r->ntargets;
  s->naddrs = r->naddrs;
  for (unsigned i = 0; i < r->ntargets && i < DNS_MAX_HOSTS; i++) {
    const struct dns_target *t = &r->targets[i];
    snprintf(s->host[i], sizeof(s->host[i]), "%s", t->host);
    s->pref[i] = t->pref;
    s->hostaddrs[i] = t->naddrs;
    for (unsigned j = 0; j < t->naddrs && k < DNS_MAX_ADDRS; j++, k++) {
      const struct sockaddr_storage *ss = &t->addrs[j];
      if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        uv_ip4_name(sin, s->addr[k], sizeof(s->addr[k]));
        s->port[k] = ntohs(sin->sin_port);
      } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(sin6, s->addr[k], sizeof(s->addr[k]));
        s->port[k] = ntohs(sin6->sin6_port);
      }
    }
  }
  if (s->close_from_cb)
    dns_close(s->close_from_cb);
}

struct fix {
  uv_loop_t loop;
  struct dns *dns;
  struct dns_config cfg;
  uv_timer_t guard;
  int expired;
};

static void on_guard(uv_timer_t *t)
{
  struct fix *f = t->data;
  f->expired = 1;
}

/* Run the loop until *flag >= want, or fail after 5 s. */
static void run_until(struct fix *f, const int *flag, int want, int line)
{
  f->expired = 0;
  uv_timer_start(&f->guard, on_guard, 5000, 0);
  while (*flag < want && !f->expired)
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_timer_stop(&f->guard);
  if (*flag < want)
    fail_msg("test_dns.c:%d: no callback within 5 s", line);
}
#define RUN_UNTIL(f, flag, want) run_until((f), (flag), (want), __LINE__)

/* Let the loop run for ms milliseconds. */
static void run_for(struct fix *f, uint64_t ms)
{
  f->expired = 0;
  uv_timer_start(&f->guard, on_guard, ms, 0);
  while (!f->expired)
    uv_run(&f->loop, UV_RUN_ONCE);
}

/* Loop + default config pointed at dnsmasq; fails without dnsmasq. */
static struct fix *fix_new(void)
{
  if (dnsmasq_pid <= 0)
    fail_msg("dnsmasq did not start (it is installed by tools/deps.sh)");
  struct fix *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  E(uv_loop_init(&f->loop));
  uv_timer_init(&f->loop, &f->guard);
  f->guard.data = f;
  dns_config_init(&f->cfg);
  f->cfg.servers = servers;
  f->cfg.timeout_ms = 500;
  return f;
}

/* Create the resolver from f->cfg. */
static void fix_start(struct fix *f)
{
  E(dns_new(&f->loop, &f->cfg, &f->dns));
}

/* Close everything and check that nothing is left on the loop. */
static void fix_free(struct fix *f)
{
  dns_close(f->dns);
  uv_close((uv_handle_t *)&f->guard, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  E(uv_loop_close(&f->loop));
  free(f);
}

/* Resolve one domain to completion. */
static void resolve(struct fix *f, const char *domain, struct seen *s)
{
  int before = s->calls;
  E(dns_resolve_mx(f->dns, domain, on_result, s));
  assert_int_equal(s->calls, before);   /* never from inside the call */
  RUN_UNTIL(f, &s->calls, before + 1);
}

/* ---- cases ------------------------------------------------------------- */

/* Two MX hosts come back best preference first, IPv4 before IPv6, port 25,
 * cached for the smallest TTL among the MX and address records. */
static void test_mx_preference_order(void **state)
{
  struct fix *f = fix_new();
  struct seen s = {0};

  fix_start(f);
  resolve(f, "two.test", &s);
  assert_int_equal(s.status, DNS_OK);
  assert_string_equal(s.domain, "two.test");
  assert_int_equal(s.implicit_mx, 0);
  assert_int_equal(s.ntargets, 2);
  assert_string_equal(s.host[0], "mx2.two.test");
  assert_int_equal(s.pref[0], 10);
  assert_int_equal(s.hostaddrs[0], 2);
  assert_string_equal(s.addr[0], "127.0.0.12");
  assert_string_equal(s.addr[1], "::1");
  assert_string_equal(s.host[1], "mx1.two.test");
  assert_int_equal(s.pref[1], 20);
  assert_string_equal(s.addr[2], "127.0.0.11");
  assert_int_equal(s.naddrs, 3);
  assert_int_equal(s.port[0], 25);
  assert_int_equal(s.port[1], 25);
  assert_int_equal(s.ttl, 300);         /* mx1's A record; MX is 600 */
  assert_non_null(strstr(s.reason, "2 hosts, 3 addresses"));
  fix_free(f);
}

/* No MX but an A record: the domain is its own host at preference 0. */
static void test_implicit_mx(void **state)
{
  struct fix *f = fix_new();
  struct seen s = {0};

  f->cfg.negative_ttl = 120;
  fix_start(f);
  resolve(f, "Implicit.TEST.", &s);
  assert_int_equal(s.status, DNS_OK);
  assert_string_equal(s.domain, "implicit.test");
  assert_int_equal(s.implicit_mx, 1);
  assert_int_equal(s.ntargets, 1);
  assert_string_equal(s.host[0], "implicit.test");
  assert_int_equal(s.pref[0], 0);
  assert_int_equal(s.naddrs, 1);
  assert_string_equal(s.addr[0], "127.0.0.20");
  assert_int_equal(s.ttl, 120);   /* the MX NODATA holds only this long */
  fix_free(f);
}

/* RFC 7505: a single MX "." means the domain takes no mail. */
static void test_null_mx(void **state)
{
  struct fix *f = fix_new();
  struct seen s = {0};

  fix_start(f);
  resolve(f, "nullmx.test", &s);
  assert_int_equal(s.status, DNS_NULLMX);
  assert_int_equal(s.ntargets, 0);
  assert_string_equal(dns_status_name(s.status), "nullmx");
  fix_free(f);
}

/* Many MX hosts: the best 10 are looked up, 16 addresses kept in order. */
static void test_caps_hosts_and_addresses(void **state)
{
  struct fix *f = fix_new();
  struct seen s = {0};
  struct dns_stats st;

  fix_start(f);
  resolve(f, "big.test", &s);
  assert_int_equal(s.status, DNS_OK);
  dns_get_stats(f->dns, &st);
  assert_int_equal(st.queries, 1 + 2 * DNS_MAX_HOSTS);
  assert_int_equal(s.naddrs, DNS_MAX_ADDRS);
  assert_int_equal(s.ntargets, 8);      /* 2 addresses each */
  assert_string_equal(s.host[0], "h1.big.test");
  assert_int_equal(s.pref[0], 10);
  assert_string_equal(s.host[7], "h8.big.test");
  assert_int_equal(s.pref[7], 80);
  assert_string_equal(s.addr[0], "127.0.1.1");
  assert_string_equal(s.addr[1], "::1");
  assert_string_equal(s.addr[14], "127.0.1.8");
  fix_free(f);
}

/* A domain that does not exist; cached for the negative TTL (no SOA). */
static void test_nxdomain(void **state)
{
  struct fix *f = fix_new();
  struct seen s = {0};

  f->cfg.negative_ttl = 77;
  fix_start(f);
  resolve(f, "no-such-domain.test", &s);
  assert_int_equal(s.status, DNS_NXDOMAIN);
  assert_int_equal(s.ntargets, 0);
  assert_int_equal(s.ttl, 77);
  assert_non_null(strstr(s.reason, "NXDOMAIN"));
  fix_free(f);
}

/* MX host without address, and a domain with neither MX nor A/AAAA. */
static void test_no_host_address(void **state)
{
  struct fix *f = fix_new();
  struct seen s = {0}, t = {0};

  fix_start(f);
  resolve(f, "nohost.test", &s);
  assert_int_equal(s.status, DNS_NOHOST);
  assert_int_equal(s.implicit_mx, 0);
  resolve(f, "nodata.test", &t);
  assert_int_equal(t.status, DNS_NOHOST);
  assert_int_equal(t.implicit_mx, 1);
  fix_free(f);
}

/* The best MX has no address: it is skipped, the backup is used. */
static void test_dead_mx_host_skipped(void **state)
{
  struct fix *f = fix_new();
  struct seen s = {0};

  fix_start(f);
  resolve(f, "halfdead.test", &s);
  assert_int_equal(s.status, DNS_OK);
  assert_int_equal(s.ntargets, 1);
  assert_string_equal(s.host[0], "mx1.two.test");
  assert_int_equal(s.pref[0], 50);
  assert_string_equal(s.addr[0], "127.0.0.11");
  fix_free(f);
}

/* dnsmasq REFUSES names it has no server for: defer, and remember that
 * briefly so the server is not asked again at once. */
static void test_refused_is_tempfail_and_cached(void **state)
{
  struct fix *f = fix_new();
  struct seen s = {0}, t = {0};
  struct dns_stats st;

  f->cfg.tempfail_ttl = 30;
  fix_start(f);
  resolve(f, "refused.invalid", &s);
  assert_int_equal(s.status, DNS_TEMPFAIL);
  assert_true(strlen(s.reason) > 0);
  dns_get_stats(f->dns, &st);
  uint64_t q = st.queries;
  resolve(f, "refused.invalid", &t);
  assert_int_equal(t.status, DNS_TEMPFAIL);
  dns_get_stats(f->dns, &st);
  assert_int_equal(st.queries, q);
  assert_int_equal(st.hits, 1);
  fix_free(f);
}

/* A server answering SERVFAIL to everything (a socket of the test). */
struct servfail {
  uv_udp_t udp;
  char buf[512];
  int answered;
};

static void sf_alloc(uv_handle_t *h, size_t want, uv_buf_t *b)
{
  struct servfail *sf = h->data;
  *b = uv_buf_init(sf->buf, sizeof(sf->buf));
}

static void sf_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *b,
                    const struct sockaddr *from, unsigned flags)
{
  struct servfail *sf = u->data;
  if (n < 12 || !from)
    return;
  b->base[2] |= (char)0x80;                           /* QR */
  b->base[3] = (char)((b->base[3] & 0x70) | 0x80 | 2); /* RA, SERVFAIL */
  uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
  if (uv_udp_try_send(u, &out, 1, from) == n)
    sf->answered++;
}

static void test_servfail_is_tempfail(void **state)
{
  struct fix *f = fix_new();
  struct servfail sf = {0};
  struct sockaddr_in sin;
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  char list[64];
  struct seen s = {0};

  E(uv_udp_init(&f->loop, &sf.udp));
  sf.udp.data = &sf;
  E(uv_ip4_addr("127.0.0.1", 0, &sin));
  E(uv_udp_bind(&sf.udp, (const struct sockaddr *)&sin, 0));
  E(uv_udp_getsockname(&sf.udp, (struct sockaddr *)&bound, &len));
  E(uv_udp_recv_start(&sf.udp, sf_alloc, sf_recv));
  snprintf(list, sizeof(list), "127.0.0.1:%d",
           ntohs(((struct sockaddr_in *)&bound)->sin_port));
  f->cfg.servers = list;
  f->cfg.tries = 1;
  fix_start(f);
  resolve(f, "example.test", &s);
  assert_int_equal(s.status, DNS_TEMPFAIL);
  assert_non_null(strstr(s.reason, "SERVFAIL"));
  assert_true(sf.answered >= 1);
  uv_close((uv_handle_t *)&sf.udp, NULL);
  fix_free(f);
}

/* A server that never answers: a short timeout ends in DNS_TEMPFAIL. */
static void test_timeout_is_tempfail(void **state)
{
  struct fix *f = fix_new();
  struct sockaddr_in sin = {.sin_family = AF_INET};
  socklen_t len = sizeof(sin);
  char list[64];
  struct seen s = {0};
  int fd = socket(AF_INET, SOCK_DGRAM, 0);

  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
  snprintf(list, sizeof(list), "127.0.0.1:%d", ntohs(sin.sin_port));
  f->cfg.servers = list;
  f->cfg.timeout_ms = 100;
  f->cfg.tries = 1;
  fix_start(f);
  resolve(f, "example.test", &s);
  assert_int_equal(s.status, DNS_TEMPFAIL);
  assert_string_equal(s.reason, "MX example.test: DNS timeout");
  close(fd);
  fix_free(f);
}

/* The second lookup is answered from the cache: no query is sent. */
static void test_cache_hit(void **state)
{
  struct fix *f = fix_new();
  struct seen s = {0}, t = {0};
  struct dns_stats st;

  fix_start(f);
  resolve(f, "two.test", &s);
  dns_get_stats(f->dns, &st);
  assert_int_equal(st.queries, 5);      /* MX + A/AAAA for 2 hosts */
  assert_int_equal(st.misses, 1);
  resolve(f, "TWO.test.", &t);
  dns_get_stats(f->dns, &st);
  assert_int_equal(st.queries, 5);
  assert_int_equal(st.hits, 1);
  assert_int_equal(t.status, DNS_OK);
  assert_string_equal(t.host[0], "mx2.two.test");
  assert_string_equal(t.addr[2], "127.0.0.11");
  fix_free(f);
}

/* A 1 s record is looked up again once it has expired. */
static void test_ttl_expiry(void **state)
{
  struct fix *f = fix_new();
  struct seen s = {0};
  struct dns_stats st;

  f->cfg.ttl_min = 0;
  fix_start(f);
  resolve(f, "short.test", &s);
  assert_int_equal(s.status, DNS_OK);
  assert_int_equal(s.ttl, 1);
  resolve(f, "short.test", &s);
  dns_get_stats(f->dns, &st);
  assert_int_equal(st.hits, 1);
  assert_int_equal(st.misses, 1);
  run_for(f, 1100);
  resolve(f, "short.test", &s);
  dns_get_stats(f->dns, &st);
  assert_int_equal(st.misses, 2);
  assert_int_equal(st.queries, 6);
  assert_int_equal(s.status, DNS_OK);
  assert_int_equal(st.entries, 1);
  fix_free(f);
}

/* Concurrent lookups of one domain share one set of queries. */
static void test_coalescing(void **state)
{
  struct fix *f = fix_new();
  struct seen s[4] = {{0}};
  struct dns_stats st;
  const char *names[] = {"two.test", "two.test", "Two.Test.", "two.test"};
  int total = 0;

  fix_start(f);
  for (int i = 0; i < 4; i++)
    E(dns_resolve_mx(f->dns, names[i], on_result, &s[i]));
  while (total < 4) {
    RUN_UNTIL(f, &s[total].calls, 1);
    total++;
  }
  dns_get_stats(f->dns, &st);
  assert_int_equal(st.queries, 5);
  assert_int_equal(st.misses, 1);
  assert_int_equal(st.coalesced, 3);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(s[i].calls, 1);
    assert_int_equal(s[i].status, DNS_OK);
    assert_int_equal(s[i].ntargets, 2);
    assert_string_equal(s[i].host[0], "mx2.two.test");
  }
  fix_free(f);
}

/* dns_close() calls pending callbacks with DNS_CANCELLED before it
 * returns, refuses new work, and leaves nothing on the loop. */
static void test_close_cancels_pending(void **state)
{
  struct fix *f = fix_new();
  struct sockaddr_in sin = {.sin_family = AF_INET};
  socklen_t len = sizeof(sin);
  char list[64];
  struct seen s = {0}, t = {0};
  int fd = socket(AF_INET, SOCK_DGRAM, 0);

  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
  snprintf(list, sizeof(list), "127.0.0.1:%d", ntohs(sin.sin_port));
  f->cfg.servers = list;
  f->cfg.timeout_ms = 5000;
  fix_start(f);
  E(dns_resolve_mx(f->dns, "a.test", on_result, &s));
  E(dns_resolve_mx(f->dns, "a.test", on_result, &s));
  E(dns_resolve_mx(f->dns, "b.test", on_result, &t));
  run_for(f, 20);                       /* queries are on the wire */
  assert_int_equal(s.calls + t.calls, 0);
  dns_close(f->dns);
  assert_int_equal(s.calls, 2);
  assert_int_equal(t.calls, 1);
  assert_int_equal(s.status, DNS_CANCELLED);
  assert_int_equal(t.status, DNS_CANCELLED);
  assert_int_equal(dns_resolve_mx(f->dns, "c.test", on_result, &t),
                   DNS_ECLOSING);
  close(fd);
  fix_free(f);                          /* second dns_close: no-op */
  assert_int_equal(t.calls, 1);
}

/* A callback that closes the resolver: the other lookup is cancelled. */
static void test_close_from_callback(void **state)
{
  struct fix *f = fix_new();
  struct seen s = {0}, t = {0};

  fix_start(f);
  resolve(f, "nullmx.test", &s);        /* now cached */
  s.close_from_cb = f->dns;
  E(dns_resolve_mx(f->dns, "two.test", on_result, &t));
  E(dns_resolve_mx(f->dns, "nullmx.test", on_result, &s));
  RUN_UNTIL(f, &s.calls, 2);
  f->dns = NULL;            /* the loop may have freed it by now */
  assert_int_equal(s.status, DNS_NULLMX);
  assert_int_equal(t.calls, 1);
  assert_int_equal(t.status, DNS_CANCELLED);
  fix_free(f);
}

/* The cache keeps at most cache_max domains, dropping the least recent. */
static void test_eviction(void **state)
{
  struct fix *f = fix_new();
  struct seen s = {0};
  struct dns_stats st;

  f->cfg.cache_max = 2;
  fix_start(f);
  resolve(f, "two.test", &s);
  resolve(f, "implicit.test", &s);
  resolve(f, "two.test", &s);           /* two.test most recent */
  resolve(f, "nullmx.test", &s);        /* evicts implicit.test */
  dns_get_stats(f->dns, &st);
  assert_int_equal(st.entries, 2);
  assert_int_equal(st.evictions, 1);
  assert_int_equal(st.hits, 1);
  resolve(f, "two.test", &s);
  dns_get_stats(f->dns, &st);
  assert_int_equal(st.hits, 2);
  resolve(f, "implicit.test", &s);
  dns_get_stats(f->dns, &st);
  assert_int_equal(st.misses, 4);
  assert_int_equal(s.status, DNS_OK);
  fix_free(f);
}

/* Bad input is refused up front and its callback never runs. */
static void test_bad_input(void **state)
{
  struct fix *f = fix_new();
  struct seen s = {0};
  struct dns *d = NULL;
  char longname[300];

  memset(longname, 'a', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  fix_start(f);
  assert_int_equal(dns_resolve_mx(f->dns, "", on_result, &s), DNS_EBADNAME);
  assert_int_equal(dns_resolve_mx(f->dns, "bad name.test", on_result, &s),
                   DNS_EBADNAME);
  assert_int_equal(dns_resolve_mx(f->dns, "a..test", on_result, &s),
                   DNS_EBADNAME);
  assert_int_equal(dns_resolve_mx(f->dns, "-a.test", on_result, &s),
                   DNS_EBADNAME);
  assert_int_equal(dns_resolve_mx(f->dns, longname, on_result, &s),
                   DNS_EBADNAME);
  assert_int_equal(dns_resolve_mx(f->dns, "[127.0.0.1]", on_result, &s),
                   DNS_EBADNAME);
  assert_int_equal(dns_resolve_mx(f->dns, "x.test", NULL, &s), DNS_EINVAL);
  run_for(f, 10);
  assert_int_equal(s.calls, 0);
  assert_string_equal(dns_strerror(DNS_EBADNAME),
                      "not a valid ASCII domain name");

  struct dns_config bad = f->cfg;
  bad.servers = "not-an-address:x";
  assert_int_equal(dns_new(&f->loop, &bad, &d), DNS_ESERVERS);
  assert_null(d);
  bad.servers = servers;
  bad.ttl_min = 10;
  bad.ttl_max = 5;
  assert_int_equal(dns_new(&f->loop, &bad, &d), DNS_EINVAL);
  fix_free(f);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mx_preference_order),
      cmocka_unit_test(test_implicit_mx),
      cmocka_unit_test(test_null_mx),
      cmocka_unit_test(test_caps_hosts_and_addresses),
      cmocka_unit_test(test_nxdomain),
      cmocka_unit_test(test_no_host_address),
      cmocka_unit_test(test_dead_mx_host_skipped),
      cmocka_unit_test(test_refused_is_tempfail_and_cached),
      cmocka_unit_test(test_servfail_is_tempfail),
      cmocka_unit_test(test_timeout_is_tempfail),
      cmocka_unit_test(test_cache_hit),
      cmocka_unit_test(test_ttl_expiry),
      cmocka_unit_test(test_coalescing),
      cmocka_unit_test(test_close_cancels_pending),
      cmocka_unit_test(test_close_from_callback),
      cmocka_unit_test(test_eviction),
      cmocka_unit_test(test_bad_input),
  };
  return cmocka_run_group_tests_name("dns", tests, group_setup,
                                     group_teardown);
}
