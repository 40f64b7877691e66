#!/usr/bin/python3
"""lists_cli.py - contact lists, CSV import and suppression through the
`sluice` command, end to end.

A master (acme) with sub-accounts shopa and shopb (own suppression lists);
users with roles on them.  Then:

  import      a CSV with quoted fields, embedded commas, quotes and CRLF in
              values, UTF-8 values and header names, an IDN domain (stored
              as A-label), an upper-case domain (lower-cased), duplicates
              (in the file, case-insensitive, and against an earlier
              import), invalid addresses of several kinds, a suppressed
              address, malformed rows (wrong field count, a stray quote, a
              value over its cap, a NUL byte, bad UTF-8, an unterminated
              quote at the end of the file): the summary counts are exact,
              the reject file names each line and reason in line order,
              and `list show` gives back every stored value;
  columns     a second import adds a column; older contacts read "";
              --email-column; standard input;
  refusals    a binary file, a file without an email column, an empty
              file, duplicate or reserved column names: exit 65, nothing
              imported; missing file 66, bad options 64, reject file not
              writable 73;
  roles       a viewer can list and show but not create, import or delete
              (77); a manager can; shopa's manager cannot see or import
              into shopb's lists (77 with --account shopb, 66 by name);
  audit       list create/delete, suppress add and one record per import
              with its counts;
  delete      `list delete` removes the list and its contacts;
  shuffled    70,000 rows (with duplicates differing in the case of their
              domain, invalid addresses and a suppressed address) in address
              order and shuffled: both imports give the same counts, the
              same contacts with the same fields, and the same duplicates
              (each naming an earlier line with its address), invalid and
              suppressed rows;
  memory      a 200,000-row import keeps its private memory (RssAnon,
              sampled) under 64 MB, and on a terminal draws a progress bar
              with rows/s and ETA.

usage: lists_cli.py SLUICE CSV_GEN [--sanitized]
  --sanitized: an ASan build (its shadow memory makes the memory cap
  meaningless: the figure is printed, not checked)
"""
import csv
import json
import os
import pty
import subprocess
import sys
import threading
import time

import harness

SLUICE = sys.argv[1]
CSV_GEN = sys.argv[2]
SANITIZED = "--sanitized" in sys.argv[3:]
# output is read as it is (no newline translation); imports may be slow
H = harness.Cli(SLUICE, "sluice-lists-", timeout=120, keep_newlines=True)
T, SPOOL, BASE_ENV = H.tmp, H.spool, H.env
ANON_CAP_KB = 64 * 1024


# who acts when a call names no user: the bootstrap until setup() made the
# first user, then "ops", an owner of the master, through $SLUICE_USER (the
# bootstrap ends with the first user)
ADMIN = H.admin
check, run, ok, js, uniq, write = H.check, H.run, H.ok, H.js, H.uniq, H.write
pw = harness.pw


def expect(name, code, *args, want=None, **kw):
    rc, out, err = run(*args, **kw)
    check("%s: exit %d" % (name, code), rc == code,
          "exit %d: %s" % (rc, (err + out).strip()[:300]))
    if want:
        check("%s: says %r" % (name, want), want in err, err.strip()[:300])
    return out, err


def reject_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows


# ------------------------------------------------------------------ setup

def setup():
    ok("create master", "account", "create", "acme")
    ok("create shopa", "account", "create", "shopa", "--suppression", "own")
    ok("create shopb", "account", "create", "shopb", "--suppression", "own")
    H.add_user("ops", "acme", "owner")
    ADMIN[0] = "ops"
    for user, acct, role in (("m-viewer", "acme", "viewer"),
                             ("m-manager", "acme", "manager"),
                             ("a-viewer", "shopa", "viewer"),
                             ("a-sender", "shopa", "sender"),
                             ("a-manager", "shopa", "manager"),
                             ("b-manager", "shopb", "manager")):
        H.add_user(user, acct, role)


# ----------------------------------------------------------------- import

# (line, text of the row) with the reason expected in the reject file
# (None: imported).  The row of line 3 spans lines 3 and 4.
MAIN_HEADER = "Email,First Name,Last Name,Notes,Prénom Ville\n"
MAIN_ROWS = [
    (2, 'ann@example.com,Ann,"Smith, Jr.","said ""hi""",Paris\n', None),
    (3, 'bob@Example.ORG,Bob,Lee,"two\r\nlines",Berlin\n', None),
    (5, 'chloé@example.com,Chloé,X,y,z\n',
     "invalid address: non-ASCII local part (SMTPUTF8 is not supported)"),
    (6, 'dan@bücher.example,Dan,Ü,ünïcödé ✓,Köln\n', None),
    (7, 'ERIN@EXAMPLE.NET,Erin,E,e,e\n', None),
    (8, 'ann@EXAMPLE.com,Dup,D,d,d\n', "duplicate of line 2"),
    (9, 'not-an-address,N,N,n,n\n', "invalid address: no @"),
    (10, 'a..b@example.com,A,A,a,a\n',
     "invalid address: two dots in a row in the local part"),
    (11, 'x@-bad.example,X,X,x,x\n',
     "invalid address: domain label starts or ends with a hyphen"),
    (12, 'x@example,X,X,x,x\n',
     "invalid address: domain needs at least two labels"),
    (13, 'gone@example.com,G,G,g,g\n', "suppressed"),
    (14, 'short@example.com,only\n', "2 fields, the header has 5"),
    (15, 'q@example.com,a"b,c,d,e\n', "malformed quoting in column 2"),
    (16, '"fay@example.com",Fay,"O\'Neil","UTF-8 ✓",Zürich\n', None),
    (17, 'big@example.com,B,B,' + "x" * 5000 + ',b\n',
     "column 4 (notes): value over 4096 bytes"),
    (18, 'nul@example.com,N,N,a\x00b,n\n', "column 4 (notes): NUL byte"),
    (19, 'huge@example.com,H,"' + "y" * 100000 + '",h,h\n',
     "column 3 (last_name): value over 4096 bytes"),
    (20, 'gil@example.com,Gil,G,g,g\n', None),
    (21, 'ann@example.com,Again,A,a,a\n', "duplicate of line 2"),
    (22, 'last@example.com,L,"unterminated,x,y\n',
     "unterminated quoted value"),
]


def main_csv():
    data = MAIN_HEADER.encode()
    for line, text, _ in MAIN_ROWS:
        if line == 18:
            data += text.encode("utf-8")
        elif line == 22:
            data += text.encode("utf-8").rstrip(b"\n")  # no final newline
        else:
            data += text.encode("utf-8")
    # bad UTF-8 in a value, inserted before the last row (line 22)
    bad = b'lat1@example.com,Ren\xe9,R,r,r\n'
    cut = data.rindex(b"last@example.com")
    return data[:cut] + bad + data[cut:]


def test_import():
    ok("create news", "list", "create", "news", "--account", "shopa",
       user="a-manager")
    ok("suppress gone", "suppress", "add", "Gone@Example.COM", "--account",
       "shopa", "--reason", "unsubscribed", user="a-manager")
    # the same address on shopb's own list does not matter to shopa
    ok("suppress on shopb", "suppress", "add", "gil@example.com",
       "--account", "shopb", user="b-manager")
    path = write("main.csv", main_csv())
    rej = os.path.join(T, "main-rejects.csv")
    rc, out, err = run("list", "import", "news", path, "--account", "shopa",
                       "--reject", rej, "--json", user="a-manager")
    check("import exits 0 with rejects", rc == 0, err)
    try:
        s = json.loads(out)
    except ValueError:
        check("import summary is JSON", False, out)
        return
    # lines 22 (last) + 1 for the bad-UTF-8 row that moved it
    expected_rejects = [(line if line < 22 else 23, reason)
                        for line, _, reason in MAIN_ROWS if reason]
    expected_rejects.insert(len(expected_rejects) - 1,
                            (22, "column 2 (first_name): not UTF-8 text"))
    imported = [line for line, _, reason in MAIN_ROWS if not reason]
    check("summary counts", s.get("rows") == len(MAIN_ROWS) + 1 and
          s.get("imported") == len(imported) and s.get("duplicate") == 2 and
          s.get("suppressed") == 1 and
          s.get("invalid") == len(expected_rejects) - 3, s)
    check("summary fields", s.get("fields") == ["first_name", "last_name",
                                                "notes", "pr_nom_ville"], s)
    rows = reject_rows(rej)
    check("reject file header", rows and rows[0] == ["line", "email",
                                                     "reason"], rows[:1])
    got = [(int(r[0]), r[2]) for r in rows[1:]]
    check("reject file lines in order", [g[0] for g in got] ==
          [e[0] for e in expected_rejects], got)
    for (gl, greason), (el, ereason) in zip(got, expected_rejects):
        check("line %d reason %r" % (el, ereason),
              gl == el and greason.startswith(ereason), greason)
    emails = {int(r[0]): r[1] for r in rows[1:]}
    check("reject file: the cell as given for invalid rows, the stored "
          "form for duplicates", emails.get(8) == "ann@example.com" and
          emails.get(9) == "not-an-address" and
          emails.get(5) == "chloé@example.com", emails)

    show = js("list", "show", "news", "--account", "shopa", "--contacts",
              "50", user="a-viewer")
    if not show:
        return
    check("show counts", show["contacts"] == len(imported), show)
    by = {c["email"]: c["fields"] for c in show["first_contacts"]}
    check("contacts in file order",
          [c["email"] for c in show["first_contacts"]] ==
          ["ann@example.com", "bob@example.org", "dan@xn--bcher-kva.example",
           "ERIN@example.net", "fay@example.com", "gil@example.com"],
          [c["email"] for c in show["first_contacts"]])
    ann = by.get("ann@example.com", {})
    check("embedded comma and quotes kept",
          ann.get("last_name") == "Smith, Jr." and
          ann.get("notes") == 'said "hi"', ann)
    check("CRLF in a value kept",
          by.get("bob@example.org", {}).get("notes") == "two\r\nlines", by)
    dan = by.get("dan@xn--bcher-kva.example", {})
    check("IDN stored as A-label, UTF-8 values kept",
          dan.get("notes") == "ünïcödé ✓" and dan.get("last_name") == "Ü"
          and dan.get("pr_nom_ville") == "Köln", dan)
    check("upper-case domain lowered, local part kept",
          "ERIN@example.net" in by, list(by))
    check("quoted email and apostrophe",
          by.get("fay@example.com", {}).get("last_name") == "O'Neil", by)

    # text forms
    out = ok("show text", "list", "show", "news", "--account", "shopa",
             "--contacts", "2", user="a-viewer")
    check("show text escapes CRLF", "notes=two\\r\\nlines" in out, out)
    lists = js("list", "list", "--account", "shopa", user="a-viewer")
    check("list list", lists and lists[0]["name"] == "news" and
          lists[0]["contacts"] == len(imported), lists)

    # again, with a new column and from standard input
    second = ("email,plan\nann@example.com,pro\nnew@example.com,team\n"
              "NEW@example.com,dup\n")
    rc, out, err = run("list", "import", "news", "-", "--account", "shopa",
                       "--json", user="a-manager", stdin=second.encode())
    s = json.loads(out) if rc == 0 else {}
    check("stdin import", rc == 0 and s.get("imported") == 1 and
          s.get("duplicate") == 2, (rc, out, err))
    check("without --reject the rejects are shown on stderr",
          "line 2: duplicate: already in list news (ann@example.com)" in err
          and "line 4: duplicate of line 3" in err, err)
    show = js("list", "show", "news", "--account", "shopa", "--contacts",
              "50", user="a-viewer") or {"first_contacts": [], "fields": []}
    by = {c["email"]: c["fields"] for c in show["first_contacts"]}
    check("new column appended", show["fields"] == [
        "first_name", "last_name", "notes", "pr_nom_ville", "plan"],
        show["fields"])
    check("older contacts read '' for it",
          by.get("ann@example.com", {}).get("plan") == "" and
          by.get("new@example.com", {}).get("plan") == "team", by)

    # --email-column, a BOM, CRLF line ends
    ok("create fr", "list", "create", "fr", "--account", "shopa",
       user="a-manager")
    path = write("fr.csv", "\ufeffNom;x,Courriel,Adresse e-mail\r\n"
                 "Zoé,zoe@example.fr,ignored\r\n\r\nYves,yves@example.fr,"
                 "i\r\n")
    rc, out, err = run("list", "import", "fr", path, "--account", "shopa",
                       "--email-column", "courriel", "--json",
                       user="a-manager")
    s = json.loads(out) if rc == 0 else {}
    check("--email-column, BOM, CRLF, blank line", rc == 0 and
          s.get("imported") == 2 and s.get("rows") == 2 and
          s.get("fields") == ["nom_x", "adresse_e_mail"], (rc, out, err))

    # quoted local parts
    ok("create quoted", "list", "create", "quoted", "--account", "shopa",
       user="a-manager")
    path = write("quoted.csv", 'email\n"""john.doe""@example.com"\n'
                 '"""a b""@example.com"\n"a.@example.com"\n')
    rej = os.path.join(T, "quoted-rejects.csv")
    rc, out, err = run("list", "import", "quoted", path, "--account",
                       "shopa", "--reject", rej, "--json", user="a-manager")
    got = [(r[0], r[2]) for r in reject_rows(rej)[1:]] if rc == 0 else []
    check("quoted local parts", rc == 0 and json.loads(out)["imported"] == 0
          and got == [("2", "invalid address: quoted local part (not "
                       "accepted for campaign mail)"),
                      ("3", "invalid address: quoted local part (not "
                       "accepted for campaign mail)"),
                      ("4", "invalid address: local part starts or ends "
                       "with a dot")], (rc, out, err, got))


# --------------------------------------------------------------- refusals

def test_refusals():
    ok("create bad", "list", "create", "bad", "--account", "shopa",
       user="a-manager")
    binary = bytes(range(256)) * 64
    path = write("binary.bin", b"\x7fELF\x02\x01\x01\x00" + binary)
    expect("binary file", 65, "list", "import", "bad", path, "--account",
           "shopa", user="a-manager", want="not a CSV file")
    path = write("gz.bin", b"\x1f\x8b\x08\x00\xa3\xff\x9e\x61\x00\x03" +
                 binary)
    expect("compressed file", 65, "list", "import", "bad", path,
           "--account", "shopa", user="a-manager", want="not a CSV file")
    path = write("noemail.csv", "name,city\nAnn,Paris\n")
    expect("no email column", 65, "list", "import", "bad", path,
           "--account", "shopa", user="a-manager", want="no email column")
    expect("--email-column not there", 65, "list", "import", "bad", path,
           "--account", "shopa", "--email-column", "mail", user="a-manager",
           want="no column named 'mail'")
    path = write("empty.csv", "")
    expect("empty file", 65, "list", "import", "bad", path, "--account",
           "shopa", user="a-manager", want="empty file")
    path = write("dupcols.csv", "email,First Name,first_name\na@b.example,"
                 "x,y\n")
    expect("duplicate column names", 65, "list", "import", "bad", path,
           "--account", "shopa", user="a-manager",
           want="is merge field 'first_name' again")
    path = write("reserved.csv", "email,Unsubscribe URL\na@b.example,x\n")
    expect("reserved column name", 65, "list", "import", "bad", path,
           "--account", "shopa", user="a-manager", want="reserved")
    path = write("nameless.csv", "email,???\na@b.example,x\n")
    expect("column without a name", 65, "list", "import", "bad", path,
           "--account", "shopa", user="a-manager",
           want="has no letters or digits")
    path = write("wide.csv", "email," + ",".join("c%d" % i for i in range(65))
                 + "\n")
    expect("too many columns", 65, "list", "import", "bad", path,
           "--account", "shopa", user="a-manager", want="at most 65")
    path = write("quotehdr.csv", 'email,"name\n')
    expect("unterminated quote in the header", 65, "list", "import", "bad",
           path, "--account", "shopa", user="a-manager",
           want="unterminated quote")
    show = js("list", "show", "bad", "--account", "shopa", user="a-manager")
    check("nothing imported by refused files", show and
          show["contacts"] == 0 and show["fields"] == [], show)
    path = write("hdronly.csv", "email,name\n")
    rc, out, _ = run("list", "import", "bad", path, "--account", "shopa",
                     "--json", user="a-manager")
    check("header only: 0 rows, exit 0", rc == 0 and
          json.loads(out)["rows"] == 0, out)
    expect("missing file", 66, "list", "import", "bad",
           os.path.join(T, "nope.csv"), "--account", "shopa",
           user="a-manager")
    expect("unknown list", 66, "list", "import", "nolist", path, "--account",
           "shopa", user="a-manager", want="has no list 'nolist'")
    expect("unknown account", 66, "list", "show", "bad", "--account", "nope",
           user="a-manager")
    expect("missing file argument", 64, "list", "import", "bad",
           "--account", "shopa", user="a-manager")
    expect("unknown option", 64, "list", "show", "bad", "--bogus",
           user="a-manager")
    expect("reject file not writable", 73, "list", "import", "bad", path,
           "--account", "shopa", "--reject", os.path.join(T, "no", "r.csv"),
           user="a-manager")
    expect("invalid list name", 65, "list", "create", "Bad Name",
           "--account", "shopa", user="a-manager")
    expect("taken list name", 65, "list", "create", "bad", "--account",
           "shopa", user="a-manager", want="already has a list")
    expect("suppress an invalid address", 65, "suppress", "add", "nope",
           "--account", "shopa", user="a-manager")


# ------------------------------------------------------------------ roles

def test_roles():
    ok("shopb list", "list", "create", "bnews", "--account", "shopb",
       user="b-manager")
    path = write("small.csv", "email\nr1@example.com\n")
    ok("viewer shows", "list", "show", "news", "--account", "shopa",
       user="a-viewer")
    ok("viewer lists", "list", "list", "--account", "shopa", user="a-viewer")
    ok("viewer lists suppressions", "suppress", "list", "--account",
       "shopa", user="a-viewer")
    expect("viewer imports", 77, "list", "import", "news", path,
           "--account", "shopa", user="a-viewer", want="needs role manager")
    expect("sender imports", 77, "list", "import", "news", path,
           "--account", "shopa", user="a-sender")
    expect("viewer creates", 77, "list", "create", "v", "--account", "shopa",
           user="a-viewer")
    expect("viewer deletes", 77, "list", "delete", "news", "--account",
           "shopa", user="a-viewer")
    expect("viewer suppresses", 77, "suppress", "add", "v@example.com",
           "--account", "shopa", user="a-viewer")
    ok("manager imports", "list", "import", "news", path, "--account",
       "shopa", user="a-manager")
    # the master's roles reach the sub-accounts
    ok("master viewer shows", "list", "show", "news", "--account", "shopa",
       user="m-viewer")
    expect("master viewer imports", 77, "list", "import", "news", path,
           "--account", "shopa", user="m-viewer")
    ok("master manager imports", "list", "import", "news", path,
       "--account", "shopa", user="m-manager")
    # tenancy between sub-accounts
    expect("shopa's manager shows shopb's list", 77, "list", "show",
           "bnews", "--account", "shopb", user="a-manager")
    expect("shopa's manager imports into shopb's list", 77, "list",
           "import", "bnews", path, "--account", "shopb", user="a-manager")
    expect("shopa's manager lists shopb's lists", 77, "list", "list",
           "--account", "shopb", user="a-manager")
    expect("shopa's manager reads shopb's suppressions", 77, "suppress",
           "list", "--account", "shopb", user="a-manager")
    expect("shopa's manager suppresses on shopb's list", 77, "suppress",
           "add", "x@example.com", "--account", "shopb", user="a-manager")
    expect("shopb's list by name under shopa", 66, "list", "show", "bnews",
           "--account", "shopa", user="a-manager")
    expect("shopb's list import by name under shopa", 66, "list", "import",
           "bnews", path, "--account", "shopa", user="a-manager")
    rc, out, _ = run("list", "list", "--json", user="a-manager")
    names = [x["name"] for x in json.loads(out)] if rc == 0 else None
    check("default account is the user's own", names is not None and
          "bnews" not in names and "news" in names, (rc, out))


# ------------------------------------------------------------ audit, delete

def test_audit_delete():
    recs = js("audit", "list") or []
    imports = [r for r in recs if r["action"] == "list import"]
    check("one audit record per import", len(imports) >= 5, len(imports))
    first = imports[0] if imports else {}
    check("import record has the counts", first.get("object") ==
          "list news: imported 6, duplicate 2, invalid 12, suppressed 1" and
          first.get("user") == "a-manager" and first.get("result") == "ok",
          first)
    check("list create audited", any(
        r["action"] == "list create" and r["object"] == "list news of shopa"
        for r in recs))
    check("suppress add audited", any(
        r["action"] == "suppress add" and "gone@example.com" in
        r["object"].lower() for r in recs))
    check("refusals audited", any(
        r["action"] == "list import" and r["result"].startswith("refused")
        for r in recs))
    ok("delete news", "list", "delete", "news", "--account", "shopa",
       user="a-manager")
    expect("deleted list is gone", 66, "list", "show", "news", "--account",
           "shopa", user="a-manager")
    ok("recreate news", "list", "create", "news", "--account", "shopa",
       user="a-manager")
    show = js("list", "show", "news", "--account", "shopa", "--contacts",
              "10", user="a-manager")
    check("recreated list is empty", show and show["contacts"] == 0 and
          show["first_contacts"] == [] and show["fields"] == [], show)
    recs = js("audit", "list") or []
    check("list delete audited", any(
        r["action"] == "list delete" and r["object"].startswith(
            "list news of shopa (") for r in recs))
    sup = js("suppress", "list", "--account", "shopa", user="a-viewer")
    check("suppress list", sup and sup[0]["email"] == "gone@example.com" and
          sup[0]["reason"] == "unsubscribed", sup)
    out = ok("suppress again", "suppress", "add", "GONE@example.com",
             "--account", "shopa", user="a-manager")
    check("suppress again says so", "already" in out, out)


# ----------------------------------------------------------------- memory

def sample_anon(pid, peak, stop):
    while not stop.is_set():
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
        except OSError:
            return
        time.sleep(0.02)


def import_measured(list_name, path, tty=False):
    """Import path; returns (rc, stdout, stderr bytes, peak anon KB,
    maxrss KB)."""
    env = dict(BASE_ENV, SLUICE_USER=ADMIN[0], SLUICE_PASSWORD=pw(ADMIN[0]))
    argv = [SLUICE, "--spool", SPOOL, "list", "import", list_name, path,
            "--account", "shopa", "--json"]
    master = slave = None
    if tty:
        master, slave = pty.openpty()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                         stderr=slave if tty else subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    peak, stop = [0], threading.Event()
    th = threading.Thread(target=sample_anon, args=(p.pid, peak, stop))
    th.start()
    err = b""
    if tty:
        os.close(slave)
        chunks = []
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
        os.close(master)
        err = b"".join(chunks)
        out = p.stdout.read()
    else:
        out = p.stdout.read()
        err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    th.join()
    rc = p.returncode
    maxrss = ru.ru_maxrss
    return rc, out, err, peak[0], maxrss



# --------------------------------------------------------------- shuffled

def import_rows(name, header, rows):
    """Import rows into a new list of shopa; (summary, reject rows, the
    list's contacts as (email, fields) sorted)."""
    ok("create " + name, "list", "create", name, "--account", "shopa")
    path = write(name + ".csv", header + "".join(rows))
    rej = os.path.join(T, name + "-rejects.csv")
    rc, out, err = run("list", "import", name, path, "--account", "shopa",
                       "--reject", rej, "--json")
    check("%s: import exits 0" % name, rc == 0, err[-300:])
    s = json.loads(out) if rc == 0 else {}
    show = js("list", "show", name, "--account", "shopa", "--contacts",
              "100000") or {"first_contacts": []}
    contacts = sorted((c["email"], sorted(c["fields"].items()))
                      for c in show["first_contacts"])
    return s, reject_rows(rej)[1:] if rc == 0 else [], contacts


def rejects_by_kind(name, rows, rejects):
    """The rejects as a sorted list of (email, reason) with "duplicate of
    line N" checked (an earlier line, the same address without case) and
    written as "duplicate"."""
    got = []
    for line, email, reason in rejects:
        if reason.startswith("duplicate of line "):
            first = int(reason.split()[-1])
            check("%s: line %s is a duplicate of an earlier line with its "
                  "address" % (name, line), first < int(line) and
                  rows[first - 2].split(",")[0].lower() == email.lower(),
                  (line, email, reason, rows[first - 2][:60]))
            reason = "duplicate"
        got.append((email, reason))
    return sorted(got)


def test_shuffled():
    import random
    gen = subprocess.run([CSV_GEN, "70000", "11"], stdout=subprocess.PIPE,
                         check=True).stdout.decode("utf-8")
    header, *rows = gen.splitlines(keepends=True)
    rnd = random.Random(5)
    # duplicates: copies with the domain in upper case (stored lower-case,
    # so whichever line comes first the contact is the same)
    for r in rnd.sample(rows, 300):
        local, rest = r.split("@", 1)
        dom, fields = rest.split(",", 1)
        rows.append("%s@%s,%s" % (local, dom.upper(), fields))
    rows += ["bad%d.example.com,No,At,x,y,z\n" % i for i in range(40)]
    rows.append("victim@d1.example,V,W,x,y,z\n")
    ok("suppress victim", "suppress", "add", "Victim@D1.example",
       "--account", "shopa")
    ordered = sorted(rows, key=lambda r: r.split(",")[0].lower())
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    a = import_rows("ordered", header, ordered)
    b = import_rows("shuffled", header, shuffled)
    keys = ("rows", "imported", "duplicate", "invalid", "suppressed")
    check("shuffled: counts as ordered",
          a[0].get("imported") == 70000 and a[0].get("duplicate") == 300 and
          a[0].get("invalid") == 40 and a[0].get("suppressed") == 1 and
          [a[0].get(k) for k in keys] == [b[0].get(k) for k in keys],
          (a[0], b[0]))
    check("shuffled: the same contacts with the same fields",
          len(a[2]) == 70000 and a[2] == b[2], (len(a[2]), len(b[2])))
    ra = rejects_by_kind("ordered", ordered, a[1])
    rb = rejects_by_kind("shuffled", shuffled, b[1])
    check("shuffled: the same duplicates, invalid and suppressed rows",
          len(ra) == 341 and ra == rb, (len(ra), len(rb)))
    check("shuffled: reject file in line order",
          [int(r[0]) for r in b[1]] == sorted(int(r[0]) for r in b[1]),
          [r[0] for r in b[1][:10]])


def test_memory():
    ok("create big", "list", "create", "big", "--account", "shopa")
    path = os.path.join(T, "big.csv")
    with open(path, "wb") as f:
        subprocess.run([CSV_GEN, "200000", "3"], stdout=f, check=True)
    rc, out, err, anon, maxrss = import_measured("big", path)
    s = json.loads(out) if rc == 0 else {}
    check("200,000 rows imported", rc == 0 and s.get("imported") == 200000,
          (rc, out, err[-300:]))
    check("private memory under 64 MB (RssAnon peak %d KB, maxrss %d KB "
          "with the spool's mapped pages)" % (anon, maxrss),
          0 < anon < ANON_CAP_KB or (SANITIZED and anon > 0), anon)
    print("memory: 200,000 rows in %.1f s: RssAnon peak %d KB, maxrss %d KB"
          % (s.get("seconds", 0), anon, maxrss))
    # on a terminal: a redrawn bar with rows/s and ETA
    ok("create big2", "list", "create", "big2", "--account", "shopa")
    rc, out, err, _, _ = import_measured("big2", path, tty=True)
    text = err.decode("utf-8", "replace")
    check("tty progress bar", rc == 0 and "\r" in text and "rows/s" in text
          and "ETA" in text and "%" in text, (rc, text[-300:]))


def test_help():
    for grp in ("list", "suppress"):
        rc, out, _ = run(grp, "--help")
        check("%s --help" % grp, rc == 0 and "usage:" in out, out[:80])
    rc, out, _ = run("list", "import", "--help")
    check("list import --help describes the CSV", rc == 0 and
          "email_address" in out and "--reject" in out, out)


def main():
    try:
        test_help()
        setup()
        test_import()
        test_refusals()
        test_roles()
        test_audit_delete()
        test_shuffled()
        test_memory()
    finally:
        H.cleanup()
    return H.summary()


if __name__ == "__main__":
    sys.exit(main())
