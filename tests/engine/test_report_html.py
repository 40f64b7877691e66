#!/usr/bin/python3
"""The HTML report page (engine/report_html.c) on a fixture report.

usage: test_report_html.py REPORT_HTML_TOOL FIXTURE.json

What a reader of the page would notice: the page parses (as HTML and,
stricter, as XML, so every inline SVG is well-formed), it fetches nothing
(no src/href to anything, no script), the fixture's numbers are on it, the
hostile names of accounts, campaigns, sites and categories show as text
and never as markup, and a report without data says so without an SVG
chart.  The text summary (the weekly mail's plain part) has the numbers.
"""
import copy
import html.parser
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

TOOL, FIXTURE = sys.argv[1], sys.argv[2]
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script>"


def render(report, mode="html"):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(report, f)
    try:
        out = subprocess.run([TOOL, mode, f.name], capture_output=True,
                             timeout=30)
    finally:
        os.unlink(f.name)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode("utf-8")


class Tags(html.parser.HTMLParser):
    """Every start tag and its attributes, and the text."""

    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(page):
    p = Tags()
    p.feed(page)
    p.close()
    root = ET.fromstring(page.split("\n", 1)[1])  # after <!DOCTYPE html>
    return p, root


def self_contained(p, page):
    names = [t for t, _ in p.tags]
    assert "script" not in names and "img" not in names, names
    assert "link" not in names and "iframe" not in names, names
    for tag, attrs in p.tags:
        for a in ("src", "href", "xlink:href", "srcset", "action"):
            assert a not in attrs, (tag, attrs)
    assert "url(" not in page and "@import" not in page


def case_fixture():
    report = json.load(open(FIXTURE))
    page = render(report)
    p, root = parse(page)
    self_contained(p, page)
    svgs = root.findall(".//" + SVG + "svg")
    # four charts plus a bar per leaderboard row
    charts = [s for s in svgs if s.get("class") == "chart"]
    assert len(charts) == 4, len(charts)
    labels = sorted(s.get("aria-label") for s in charts)
    assert labels == ["attempts by weekday and hour (UTC)",
                      "delivery latency per day", "outcomes by category",
                      "recipients per day by outcome"], labels
    assert len([s for s in svgs if s.get("class") == "cellbar"]) == 3
    # volume: one bar group per day with data (5 of the 7 days), x labels
    # for every day of the period
    vol = [s for s in charts
           if s.get("aria-label") == "recipients per day by outcome"][0]
    groups = vol.findall(SVG + "g")
    assert len(groups) == 5, len(groups)
    t = groups[1].find(SVG + "title").text
    assert t.startswith("2026-12-01: delivered 2,345, bounced 61"), t
    days = [x.text for x in vol.findall(SVG + "text") if x.text and
            re.fullmatch(r"\d\d-\d\d", x.text)]
    assert days == ["11-30", "12-01", "12-02", "12-03", "12-04", "12-05",
                    "12-06"], days
    # heat map: 7 x 24 cells, the busiest is Friday 09:00 (2026-12-04)
    heat = [s for s in charts if "weekday" in s.get("aria-label")][0]
    cells = heat.findall(SVG + "rect")
    assert len(cells) == 168
    darkest = min(cells, key=lambda r: int(r.get("fill")[1:3], 16))
    assert darkest.find(SVG + "title").text == "Fri 09:00 UTC: 2,235", \
        darkest.find(SVG + "title").text
    # latency: three lines of 5 points each
    lat = [s for s in charts if "latency" in s.get("aria-label")][0]
    lines = lat.findall(SVG + "polyline")
    assert len(lines) == 3
    assert all(len(l.get("points").split()) == 5 for l in lines)
    # summary numbers and the leaderboard
    text = "".join(p.text)
    for want in ("8,868", "254", "9,122", "90.0%", "9,120", "shop-eu",
                 "bounced: bad-mailbox", "2026-11-30", "2026-12-06",
                 "account shop", "1,231"):
        assert want in text, want
    rows = [r for r in root.iter("tr")]
    board = root.find(".//section[@id='leaderboard']")
    names = [r.findall("td")[1].text for r in board.iter("tr")
             if r.findall("td")]
    assert names == ["shop-eu", 'a&b"<i>', "quiet"], names
    assert rows
    # hostile names are text: the campaign, an account, a site, a
    # bounce category, a control character
    assert HOSTILE in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "x'><img src=x onerror=alert(2)>" in text
    assert "<b>policy</b>" in text and "<b>" not in page
    assert "\x01" not in page and "news.shop.example\ufffd" in text
    # printable: a print stylesheet
    assert "@media print" in page and "@page" in page


def case_empty():
    for report in ({"account": "shop", "from": "2026-11-30",
                    "to": "2026-12-06", "generated": "2026-12-07T00:00:00Z",
                    "summary": {}, "daily": [], "hourly": [],
                    "campaigns": [], "sites": [], "domains": [],
                    "accounts": [], "billing": []},
                   {}):
        page = render(report)
        p, root = parse(page)
        self_contained(p, page)
        assert root.find(".//*[@id='no-data']") is not None
        assert not root.findall(".//" + SVG + "svg")
        text = "".join(p.text)
        assert "No mail in this period" in text
        assert text.count("No rows in this period.") == 4
        assert "No deliveries, so no latency" in text
        # a rate or latency the builder gives as null (nothing delivered)
        # is "-", not a made-up 0%
        tds = [td.text for td in root.iter("td")]
        assert tds[tds.index("first_attempt_rate") + 1] == "-"
        assert tds[tds.index("latency_ms p50") + 1] == "-"


def case_zero_days():
    """Days present but every count zero: no chart, no division by zero."""
    report = json.load(open(FIXTURE))
    for row in report["daily"] + report["hourly"]:
        for k, v in list(row.items()):
            if isinstance(v, (int, float)):
                row[k] = 0
        row["latency_ms"] = {"p50": 0, "p90": 0, "p99": 0}
    report["summary"] = {}
    page = render(report)
    p, root = parse(page)
    charts = [s for s in root.findall(".//" + SVG + "svg")
              if s.get("class") == "chart"]
    assert not charts, len(charts)
    assert "nan" not in page.lower().replace("nance", "")


def case_malformed():
    """Wrong types and an absurd period are drawn as absent, not refused."""
    report = json.load(open(FIXTURE))
    report["daily"] = {"not": "an array"}
    report["from"], report["to"] = "1970-01-01", "9999-12-31"
    report["accounts"][0]["delivered"] = "many"
    report["account"] = 17
    report["campaigns"] = [{"campaign": "c%d" % i, "delivered": i}
                           for i in range(1000)]
    page = render(report)
    p, root = parse(page)
    rows = root.findall(".//section[@id='campaigns']/table/tbody/tr")
    assert len(rows) == 200, len(rows)
    assert "800 more not shown." in "".join(p.text)
    bad = subprocess.run([TOOL, "html", "/dev/null"], capture_output=True)
    assert bad.returncode == 2
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write("[1, 2]")
    out = subprocess.run([TOOL, "html", f.name], capture_output=True)
    os.unlink(f.name)
    assert out.returncode == 1 and b"Invalid argument" in out.stderr


def case_text():
    report = json.load(open(FIXTURE))
    report["accounts"][1]["account"] = "evil\r\nBcc: x@y"
    text = render(report, "text")
    assert "sluice report for account shop, 2026-11-30 to 2026-12-06" in text
    assert re.search(r"delivered\s+8,868", text)
    assert re.search(r"bounced\s+254", text)
    assert "1. shop-eu" in text
    assert "\r" not in text and "evilBcc: x@y" in text


for case in (case_fixture, case_empty, case_zero_days, case_malformed,
             case_text):
    case()
    print("ok", case.__name__)
