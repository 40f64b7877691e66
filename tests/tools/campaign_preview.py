#!/usr/bin/python3
"""campaign_preview.py - `sluice campaign preview` is what sluiced sends.

A campaign with merge fields, the account's header and footer, a reply-to,
a non-ASCII subject, and sluiced.conf setting ehlo_hostname (no
unsubscribe_host, so sluiced's unsubscribe host is the EHLO name),
bounce_domain and feedback_sender, given to the tools with the global
--config.  The campaign is sent by sluiced to a capturing sluice-sink; for
every captured message the preview of the same contact must be the same
bytes, except:

  DKIM-Signature  added by sluiced's signer after the message is built
                  (the preview is unsigned); the sink's copy must carry one;
  Date            the time of the render;
  Message-ID      <CAMPAIGN.DELIVERY.NONCE.MAC@domain>: the preview's
                  delivery is 0, and NONCE (so the MAC) is new on every
                  render by design (render.h), so only CAMPAIGN and the
                  domain are compared;
  boundary        "=_NONCE.DELIVERY": the same nonce and delivery;
  envelope        the VERP token holds the delivery: only its domain (the
                  bounce_domain) is compared.

Each of these is masked only where it appears, after checking its form.

usage: campaign_preview.py SLUICED SLUICE SINK
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "engine"))
import peers  # noqa: E402
from peers import PeerTest  # noqa: E402

DOMS = ["d0.test", "d1.test"]
MSGID = re.compile(rb"^Message-ID: <(\d+)\.(\d+)\.([a-z2-7]{13})\."
                   rb"([a-z2-7]{16})@([^>]+)>\r\n", re.M | re.I)
BOUNDARY = re.compile(rb'boundary="(=_[a-z2-7]{13}\.\d+)"', re.I)
DATE = re.compile(rb"^Date: [^\r\n]+\r\n", re.M)


def strip_dkim(raw):
    """raw without its DKIM-Signature fields (with their folded lines);
    also how many there were."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    out, n, skipping = [], 0, False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line.lower().startswith(b"dkim-signature:")
        n += skipping
        if not skipping:
            out.append(line)
    return b"\r\n".join(out) + sep + body, n


class Preview(PeerTest):

    def masked(self, raw, cid, delivery):
        """raw with Date, the Message-ID's delivery, nonce and MAC and the
        boundary masked, after checking each has the form it must."""
        m = MSGID.search(raw)
        self.assertIsNotNone(m, raw[:600])
        self.assertEqual(m.group(1).decode(), cid)
        self.assertEqual(int(m.group(2)), delivery)
        self.assertEqual(m.group(5), b"shop.test")
        raw = raw.replace(m.group(0), b"Message-ID: <%s.DELIVERY.NONCE.MAC@"
                          b"shop.test>\r\n" % m.group(1))
        b = BOUNDARY.search(raw)
        self.assertIsNotNone(b, raw[:600])
        self.assertTrue(b.group(1).endswith(b".%d" % delivery), b.group(1))
        raw = raw.replace(b.group(1), b"=_BOUNDARY")
        self.assertEqual(len(DATE.findall(raw)), 1, raw[:600])
        return DATE.sub(b"Date: DATE\r\n", raw)

    def test_preview_is_what_sluiced_sends(self):
        port = peers.free_port()
        self.sluice("account", "create", "master")
        hdr, ftr = self.path("h.html"), self.path("f.html")
        with open(hdr, "w") as f:
            f.write("<div>Shop news</div>")
        with open(ftr, "w") as f:
            f.write("<p>Shop Ltd, 1 High St</p>")
        self.sluice("account", "create", "shop", "--header-file", hdr,
                    "--footer-file", ftr)
        self.sluice("domain", "add", "shop.test", "--account", "shop",
                    "--selector", "s1")
        self.sluice("domain", "verify", "shop.test", "--force")
        rows = ["email,first,city"]
        for i in range(6):
            rows.append("c%d@%s,%s,City %d" % (
                i, DOMS[i % 2], "Zoë" if i == 0 else "N%d" % i, i))
        rows.append("c9@d1.test,,")        # every field empty: the defaults
        csv = self.path("news.csv")
        with open(csv, "w") as f:
            f.write("\n".join(rows) + "\n")
        self.sluice("list", "create", "news", "--account", "shop")
        self.sluice("list", "import", "news", csv, "--account", "shop")
        html, text = self.path("t.html"), self.path("t.txt")
        with open(html, "w") as f:
            f.write("<html><body><p>Hello {{first|friend}} from {{city}}</p>"
                    "<a href=\"{{unsubscribe_url}}\">leave</a></body>"
                    "</html>\n")
        with open(text, "w") as f:
            f.write("Hello {{first|friend}}\n.line with a dot\n{{email}}\n")
        cid = str(json.loads(self.sluice(
            "campaign", "create", "welcome", "--account", "shop", "--list",
            "news", "--from", "Shop <news@shop.test>", "--reply-to",
            "help@shop.test", "--subject", "Grüße {{first|friend}}",
            "--html", html, "--text", text, "--json").stdout)["id"])
        dns = self.start_dns({d: [(10, "127.0.0.1")] for d in DOMS})
        # no unsubscribe_host: sluiced uses ehlo_hostname (client.test)
        conf = self.write_config(dns=dns, smtp_port=port,
                                 bounce_domain="bounce.shop.test",
                                 feedback_sender="esp1")
        sink = self.start_sink(port, listen="127.0.0.1")
        self.sluice("campaign", "send", cid)
        self.run_sluiced(conf, timeout=60)

        caps = sink.captures()
        self.assertEqual(len(caps), 7)
        deliveries = {}
        for e in self.spool_events():
            if str(e.get("campaign")) == cid and "rcpt" in e:
                deliveries[e["rcpt"]] = e["delivery"]
        for sender, rcpts, raw in caps:
            self.assertEqual(len(rcpts), 1)
            rcpt = rcpts[0]
            r = self.sluice("--config", conf, "campaign", "preview", cid,
                            "--contact", rcpt, "--json")
            p = json.loads(r.stdout)
            pre = p["message"].encode("utf-8")
            sent, nsig = strip_dkim(raw)
            self.assertEqual(nsig, 1, "sluiced signs with shop.test's key")
            self.assertIn(b"<https://client.test/u/", pre,
                          "the unsubscribe host is ehlo_hostname")
            self.assertIn(b"Feedback-ID: %s:" % cid.encode(), pre)
            self.assertTrue(p["mail_from"].endswith("@bounce.shop.test"),
                            p["mail_from"])
            self.assertEqual(sender.rsplit("@", 1)[1],
                             p["mail_from"].rsplit("@", 1)[1])
            self.assertIn(rcpt, deliveries, deliveries)
            a = self.masked(pre, cid, 0)
            b = self.masked(sent, cid, deliveries[rcpt])
            self.assertEqual(a, b, "preview of %s differs from what sluiced "
                             "sent" % rcpt)


if __name__ == "__main__":
    peers.main()
