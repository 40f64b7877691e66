/*
 * app.js - the sluice web console: sign-in, then one page per hash route
 * (#/overview, #/sites, #/campaigns, #/campaigns/ID, #/accounts,
 * #/incidents, #/incidents/ID, #/reports, #/audit) over the JSON API under
 * /console/api/ that sluiced serves (README "The web console").
 *
 * DESCRIPTION
 *   Written by hand, no framework: sluiced embeds this file and serves it
 *   under CSP default-src 'self', so nothing here is inline, eval'd or
 *   loaded from elsewhere.  Every text that comes from the server goes into
 *   the page as text (textContent, createTextNode, SVG <title>), never as
 *   markup.  Every POST carries the session's CSRF token in X-CSRF-Token.
 *   Live pages (overview, sites, campaigns, a campaign) poll their GET
 *   every second or so while they are shown, and update the elements they
 *   built in place, so a button or a progress bar stays the same element
 *   while its value moves.  Charts on the reports page are SVG drawn here.
 *
 * DIAGNOSTICS
 *   401 from any call: back to the sign-in form, with why.  403: the page
 *   says "Not allowed" (a page) or the notice line does (an action).  404:
 *   "Not found".  Other failures and an unreachable sluiced go to the
 *   notice line; the polling goes on, so the page recovers by itself.
 */
'use strict';
(function () {
  var API = '/console/api/';
  var POLL_MS = 1000;
  var session = null;          /* {user, role, account, csrf} */
  var gen = 0;                 /* bumped per route: stale answers dropped */
  var timer = null;

  /* ---------------------------------------------------------- DOM */

  function $(id) { return document.getElementById(id); }

  /* el('tag.class', {attr: v}, child...): children are nodes or text. */
  function el(spec, attrs) {
    var parts = spec.split('.');
    var e = document.createElement(parts[0]);
    if (parts.length > 1) e.className = parts.slice(1).join(' ');
    setAttrs(e, attrs);
    for (var i = 2; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }

  var SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    for (var i = 2; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }

  function setAttrs(e, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'on') Object.keys(v).forEach(function (ev) {
        e.addEventListener(ev, v[ev]);
      });
      else e.setAttribute(k, v === true ? '' : String(v));
    });
  }

  function add(parent, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { add(parent, x); }); return; }
    parent.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }

  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }

  function setText(e, t) {
    t = t === null || t === undefined ? '' : String(t);
    if (e.textContent !== t) e.textContent = t;
  }

  /* ---------------------------------------------------------- formats */

  function num(v) {
    if (typeof v !== 'number' || !isFinite(v)) return v === null || v === undefined ? '—' : String(v);
    if (Math.round(v) === v) return v.toLocaleString('en');
    return v.toLocaleString('en', { maximumFractionDigits: 2 });
  }

  function pct(f) {
    return typeof f === 'number' && isFinite(f) ? (f * 100).toFixed(f >= 0.995 && f < 1 ? 1 : 0) + ' %' : '—';
  }

  function duration(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor(s % 3600 / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor(s % 86400 / 3600) + ' h';
  }

  /* A time the server gives as ms, s (since 1970) or RFC 3339 text. */
  function when(v) {
    var d = null;
    if (typeof v === 'number') d = new Date(v > 1e11 ? v : v * 1000);
    else if (typeof v === 'string' && /^\d{4}-\d\d-\d\d/.test(v)) {
      /* a time without a zone is UTC, as every time sluice writes */
      d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(v.slice(10)) ? v : v.replace(' ', 'T') + 'Z');
    }
    if (!d || isNaN(d.getTime())) return v === null || v === undefined ? '—' : String(v);
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace('Z', ' UTC');
  }

  /* An ETA: seconds to go (a small number), a time, or text. */
  function eta(v) {
    if (v === null || v === undefined || v === '') return '—';
    if (typeof v === 'number' && v < 1e8) return 'in ' + duration(v);
    if (typeof v === 'object') {
      if (v.seconds !== undefined) return eta(v.seconds);
      if (v.time !== undefined) return when(v.time);
      return JSON.stringify(v);
    }
    return when(v);
  }

  /* Any value as short text, for the generic tables. */
  function cell(k, v) {
    if (v === null || v === undefined || v === '') return '—';
    if (/(_ms|^time|_at)$/.test(k) && (typeof v === 'number' || typeof v === 'string')) return when(v);
    if (/_rate$|^progress$/.test(k) && typeof v === 'number' && v <= 1) return pct(v);
    if (typeof v === 'number') return num(v);
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (typeof v === 'object') {
      return Object.keys(v).map(function (x) { return x + ' ' + cell(x, v[x]); }).join(', ') || '—';
    }
    return String(v);
  }

  function label(k) { return k.replace(/_ms$/, '').replace(/_/g, ' '); }

  /* ---------------------------------------------------------- API */

  function HttpError(status, message, body) {
    this.status = status;
    this.message = message;
    this.body = body;
  }

  function api(method, path, body) {
    var opt = { method: method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET') {
      if (session && session.csrf) opt.headers['X-CSRF-Token'] = session.csrf;
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body || {});
    }
    return fetch(API + path, opt).then(function (r) {
      return r.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
        if (r.ok) return data;
        var msg = data && typeof data.error === 'string' ? data.error : r.status + ' ' + r.statusText;
        var err = new HttpError(r.status, msg, data);
        if (r.status === 401 && path !== 'login' && path !== 'session') signedOut(msg);
        throw err;
      });
    }, function () {
      throw new HttpError(0, 'sluiced does not answer', null);
    });
  }

  /* ---------------------------------------------------------- notices */

  var noticeTimer = null;
  function notice(text, kind) {
    var n = $('notice');
    n.className = kind || '';
    setText(n, text);
    clearTimeout(noticeTimer);
    if (text && kind !== 'error') noticeTimer = setTimeout(function () { setText(n, ''); }, 6000);
  }

  /* A page's GET failed: the page says why (403, 404) or the notice does. */
  function pageFailed(view, g, e) {
    if (g !== gen || !(e instanceof HttpError)) {
      if (!(e instanceof HttpError) && g === gen) notice('Console error: ' + e, 'error');
      return false;
    }
    if (e.status === 401) return false;
    if (e.status === 403 || e.status === 404) {
      stopPolling();
      clear(view);
      add(view, el('div.denied', { id: 'denied', role: 'alert' },
        el('h2', { text: e.status === 403 ? 'Not allowed' : 'Not found' }),
        el('p', { text: e.message })));
      return false;
    }
    notice((e.status ? e.status + ': ' : '') + e.message, 'error');
    return true;
  }

  /* An action's POST: the notice line says how it went. */
  function act(button, path, body, done) {
    button.disabled = true;
    return api('POST', path, body).then(function (d) {
      notice((button.dataset.done || 'Done') + '.', 'ok');
      if (done) done(d);
    }, function (e) {
      if (e.status === 401) return;
      notice((e.status === 403 ? 'Not allowed: ' : 'Failed: ') + e.message, 'error');
    }).then(function () { button.disabled = false; });
  }

  function button(text, attrs, onclick) {
    attrs = attrs || {};
    attrs.type = 'button';
    attrs.on = { click: onclick };
    attrs.text = text;
    return el('button', attrs);
  }

  function mayAct() { return session && session.role !== 'viewer'; }

  /* The page a user lands on: the master-level views need a role there. */
  function home() { return session && session.master === false ? '#/campaigns' : '#/overview'; }

  /* ---------------------------------------------------------- polling */

  function stopPolling() { clearTimeout(timer); timer = null; }

  /* Run load() now and every ms while the route stays the same. */
  function poll(view, load, ms) {
    var g = gen;
    function tick() {
      if (g !== gen) return;
      if (document.hidden) { timer = setTimeout(tick, ms || POLL_MS); return; }
      load().then(function () {
        if (g === gen && $('notice').className === 'error') notice('');
        return true;
      }, function (e) {
        return pageFailed(view, g, e);
      }).then(function (again) {
        if (again && g === gen) timer = setTimeout(tick, ms || POLL_MS);
      });
    }
    tick();
  }

  /* Keep tbody's rows in step with items: a row per key, built once by
   * make(item) and refreshed by update(row, item). */
  function syncRows(tbody, items, key, make, update) {
    var old = {};
    Array.prototype.forEach.call(tbody.rows, function (r) { old[r.dataset.key] = r; });
    var prev = null;
    items.forEach(function (it) {
      var k = String(key(it));
      var r = old[k];
      if (r) delete old[k];
      else { r = make(it); r.dataset.key = k; }
      update(r, it);
      var want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== r) tbody.insertBefore(r, want);
      prev = r;
    });
    Object.keys(old).forEach(function (k) { tbody.removeChild(old[k]); });
  }

  function table(caption, heads) {
    var tb = el('tbody');
    var t = el('table', null, el('caption', { text: caption }),
      el('thead', null, el('tr', null, heads.map(function (h) {
        return el('th', { scope: 'col', text: h });
      }))), tb);
    t.tbody = tb;
    return t;
  }

  /* A table of rows whose columns are not fixed: their keys, first seen
   * first (preferred ones ahead); in a box that scrolls sideways. */
  function genericTable(caption, rows, prefer, id) {
    var cols = [];
    (prefer || []).concat.apply(prefer || [], rows.map(Object.keys)).forEach(function (k) {
      if (cols.indexOf(k) < 0 && rows.some(function (r) { return r[k] !== undefined; })) cols.push(k);
    });
    var t = table(caption, cols.map(label));
    if (id) t.id = id;
    rows.forEach(function (r) {
      t.tbody.appendChild(el('tr', null, cols.map(function (k) {
        return el(typeof r[k] === 'number' ? 'td.n' : 'td', { text: cell(k, r[k]) });
      })));
    });
    if (!rows.length) t.tbody.appendChild(el('tr', null, el('td', { colspan: cols.length || 1, text: 'None.' })));
    return el('div.scroll', null, t);
  }

  function heading(view, text) {
    document.title = text + ' · sluice console';
    view.appendChild(el('h1', { text: text }));
  }

  /* ---------------------------------------------------------- overview */

  var FIGURES = [
    ['rate', 'Sending rate', function (v) { return num(v) + ' msg/s'; }],
    ['queued', 'Queued', num], ['deferred', 'Deferred', num],
    ['sessions', 'SMTP sessions', sessions], ['incidents_open', 'Open incidents', num],
    ['campaigns_running', 'Campaigns sending', num]];

  /* SMTP sessions: a count, or an object of counts (the total shown). */
  function sessions(v) {
    if (v && typeof v === 'object') {
      if (typeof v.total === 'number') return num(v.total);
      if (typeof v.open === 'number') return num(v.open);
      return cell('sessions', v);
    }
    return num(v);
  }

  function pageOverview(view) {
    heading(view, 'Overview');
    var dl = el('dl.figures', { id: 'overview' });
    var dd = {};
    FIGURES.forEach(function (f) {
      dd[f[0]] = el('dd', { 'data-figure': f[0], text: '…' });
      dl.appendChild(el('div', null, el('dt', { text: f[1] }), dd[f[0]]));
    });
    var spark = el('figure.spark', null,
      el('figcaption', { text: 'Sending rate, last minute (msg/s)' }));
    var updated = el('p.updated');
    add(view, [dl, spark, updated]);
    var rates = [];
    poll(view, function () {
      return api('GET', 'overview').then(function (d) {
        FIGURES.forEach(function (f) { setText(dd[f[0]], f[2](d[f[0]])); });
        dd.incidents_open.parentNode.classList.toggle('alarm', d.incidents_open > 0);
        rates.push(typeof d.rate === 'number' ? d.rate : 0);
        if (rates.length > 60) rates.shift();
        var old = spark.querySelector('svg');
        if (old) spark.removeChild(old);
        spark.appendChild(sparkline(rates));
        setText(updated, 'Updated ' + when(d.time || Date.now()));
      });
    });
  }

  function sparkline(vals) {
    var w = 300, h = 60, max = Math.max.apply(null, vals.concat([1]));
    var pts = vals.map(function (v, i) {
      return (i * w / 59).toFixed(1) + ',' + (h - 2 - v / max * (h - 4)).toFixed(1);
    }).join(' ');
    return svg('svg', { viewBox: '0 0 ' + w + ' ' + h, role: 'img', 'aria-label': 'rate, peak ' + num(max) + ' msg/s' },
      svg('line', { x1: 0, y1: h - 1, x2: w, y2: h - 1, class: 'axis' }),
      svg('polyline', { points: pts, fill: 'none', stroke: 'currentColor', 'stroke-width': 2 }));
  }

  /* ---------------------------------------------------------- sites */

  /* A site's backoff: "none", or its state, rate factor, retry and error. */
  function backoff(b) {
    if (!b || typeof b !== 'object') return cell('backoff', b);
    var f = typeof b.rate_factor === 'number' ? b.rate_factor : 1;
    if ((b.state === 'normal' || !b.state) && f >= 1 && !b.last_error) return 'none';
    var out = [b.state || 'backoff'];
    if (f < 1) out.push('rate × ' + num(f));
    if (b.next_retry_ms) out.push('retry ' + when(b.next_retry_ms));
    if (b.last_error) out.push(String(b.last_error));
    return out.join(', ');
  }

  function pageSites(view) {
    heading(view, 'Sites');
    var t = table('Each site: its state, limits and backoff', ['Site', 'State', 'Queued',
      'Connections', 'Max rate', 'Backoff', 'Action']);
    t.id = 'sites';
    add(view, el('div.scroll', null, t));
    function load() {
      return api('GET', 'sites').then(function (d) {
        syncRows(t.tbody, d.sites || [], function (s) { return s.name; }, function (s) {
          var b = button('', { 'data-site': s.name }, function () {
            var paused = b.dataset.paused === '1';
            b.dataset.done = (paused ? 'Resumed ' : 'Paused ') + s.name;
            act(b, 'sites/' + encodeURIComponent(s.name) + (paused ? '/resume' : '/pause'), {}, load);
          });
          b.hidden = !session.admin;
          return el('tr', null, el('th', { scope: 'row', text: s.name }), el('td'), el('td.n'),
            el('td.n'), el('td.n'), el('td'), el('td', null, b));
        }, function (r, s) {
          var c = r.cells;
          setText(c[1], s.paused ? 'paused' : s.state);
          r.classList.toggle('paused', !!s.paused);
          setText(c[2], num(s.queued));
          setText(c[3], num(s.connections) + ' / ' + num(s.max_connections));
          setText(c[4], cell('max_rate', s.max_rate));
          setText(c[5], backoff(s.backoff));
          var b = c[6].firstChild;
          b.dataset.paused = s.paused ? '1' : '0';
          setText(b, s.paused ? 'Resume' : 'Pause');
          b.setAttribute('aria-label', (s.paused ? 'Resume ' : 'Pause ') + s.name);
        });
      });
    }
    poll(view, load, 1500);
  }

  /* ---------------------------------------------------------- campaigns */

  function progressBar(id, label) {
    var p = el('progress', { max: 1, value: 0, 'aria-label': label });
    if (id) p.id = id;
    return p;
  }

  function setProgress(p, txt, c) {
    var f = typeof c.progress === 'number' ? c.progress :
      c.total ? (c.total - (c.pending || 0)) / c.total : 0;
    f = Math.max(0, Math.min(1, f));
    if (Number(p.value) !== f) p.value = f;
    setText(txt, pct(f));
  }

  var OUTCOMES = ['delivered', 'bounced', 'expired', 'suppressed', 'cancelled', 'pending'];

  function pageCampaigns(view) {
    heading(view, 'Campaigns');
    var t = table('Campaigns of ' + (session.account || 'your accounts'),
      ['ID', 'Name', 'Account', 'State', 'Progress', 'Delivered', 'Bounced', 'Other', 'Pending', 'ETA']);
    t.id = 'campaigns';
    add(view, el('div.scroll', null, t));
    poll(view, function () {
      return api('GET', 'campaigns').then(function (d) {
        syncRows(t.tbody, d.campaigns || [], function (c) { return c.id; }, function (c) {
          return el('tr', null, el('td.n', { text: c.id }),
            el('th', { scope: 'row' }, el('a', { href: '#/campaigns/' + encodeURIComponent(c.id) })),
            el('td'), el('td'),
            el('td.bar', null, progressBar(null, 'progress of campaign ' + c.id), el('span')),
            el('td.n'), el('td.n'), el('td.n'), el('td.n'), el('td'));
        }, function (r, c) {
          var x = r.cells;
          setText(x[1].firstChild, c.name);
          setText(x[2], c.account);
          setText(x[3], c.state);
          r.dataset.state = c.state || '';
          setProgress(x[4].firstChild, x[4].lastChild, c);
          setText(x[5], num(c.delivered));
          setText(x[6], num(c.bounced));
          setText(x[7], num((c.expired || 0) + (c.suppressed || 0) + (c.cancelled || 0)));
          setText(x[8], num(c.pending));
          setText(x[9], c.state === 'done' || c.state === 'cancelled' ? '—' : eta(c.eta));
        });
      });
    }, 1500);
  }

  function pageCampaign(view, id) {
    var h = el('h1', { text: 'Campaign ' + id });
    document.title = 'Campaign ' + id + ' · sluice console';
    var bar = progressBar('campaign-progress', 'progress of campaign ' + id);
    var barText = el('span', { id: 'campaign-progress-text' });
    var facts = el('dl.facts', { id: 'campaign-facts' });
    var outcome = el('div.stack', { id: 'campaign-outcomes', role: 'img' });
    var breakdown = table('Outcome breakdown', ['Outcome', 'Recipients', 'Share']);
    breakdown.id = 'campaign-breakdown';
    var actions = el('p.actions');
    var confirmBox = el('p.confirm', { hidden: true, role: 'group', 'aria-label': 'Confirm cancel' });
    function doAct(b, what) {
      b.dataset.done = { pause: 'Paused', resume: 'Resumed', cancel: 'Cancelled' }[what] + ' campaign ' + id;
      confirmBox.hidden = true;
      act(b, 'campaigns/' + encodeURIComponent(id) + '/' + what, {}, load);
    }
    var bPause = button('Pause', { id: 'campaign-pause' }, function () { doAct(bPause, 'pause'); });
    var bResume = button('Resume', { id: 'campaign-resume' }, function () { doAct(bResume, 'resume'); });
    var bCancel = button('Cancel campaign…', { id: 'campaign-cancel' }, function () {
      confirmBox.hidden = false;
      bYes.focus();
    });
    var bYes = button('Yes, cancel it', { id: 'campaign-cancel-yes', class: 'danger' }, function () { doAct(bYes, 'cancel'); });
    add(confirmBox, ['Cancel campaign ' + id + '? Its pending recipients are not sent. ', bYes, ' ',
      button('No', null, function () { confirmBox.hidden = true; })]);
    add(actions, [bPause, ' ', bResume, ' ', bCancel]);
    actions.hidden = !mayAct();
    add(view, [el('p.back', null, el('a', { href: '#/campaigns', text: '← All campaigns' })), h,
      el('p.bigbar', null, bar, ' ', barText), actions, confirmBox, facts, outcome, breakdown]);

    function load() {
      return api('GET', 'campaigns/' + encodeURIComponent(id)).then(function (d) {
        var c = d && d.campaign ? d.campaign : d;
        setText(h, 'Campaign ' + (c.name !== undefined ? c.name + ' (' + id + ')' : id));
        setProgress(bar, barText, c);
        view.dataset.state = c.state || '';
        bPause.disabled = c.state !== 'sending' && c.state !== 'scheduled';
        bResume.disabled = c.state !== 'paused';
        bCancel.disabled = c.state === 'done' || c.state === 'cancelled';
        clear(facts);
        var why = c.eta_basis && typeof c.eta_basis.text === 'string' ? ' (' + c.eta_basis.text + ')' : '';
        [['Account', c.account], ['State', c.state], ['Recipients', num(c.total)], ['ETA', eta(c.eta) + why],
         ['Started', c.started !== undefined ? when(c.started) : null],
         ['Finished', c.finished !== undefined ? when(c.finished) : null]].forEach(function (f) {
          if (f[1] !== null && f[1] !== undefined) add(facts, el('div', null, el('dt', { text: f[0] }), el('dd', { text: f[1] })));
        });
        var rows = OUTCOMES.filter(function (k) { return typeof c[k] === 'number'; });
        var total = c.total || rows.reduce(function (s, k) { return s + c[k]; }, 0) || 1;
        clear(outcome);
        outcome.setAttribute('aria-label', rows.map(function (k) { return k + ' ' + c[k]; }).join(', '));
        rows.forEach(function (k) {
          if (!c[k]) return;
          var s = el('span.o-' + k, { title: k + ': ' + c[k] });
          s.style.width = (c[k] / total * 100) + '%';
          outcome.appendChild(s);
        });
        clear(breakdown.tbody);
        rows.forEach(function (k) {
          breakdown.tbody.appendChild(el('tr', null, el('th', { scope: 'row' }, el('span.key.o-' + k), k),
            el('td.n', { 'data-outcome': k, text: num(c[k]) }), el('td.n', { text: pct(c[k] / total) })));
        });
        var cats = c.bounced_by_category;
        if (cats && typeof cats === 'object') Object.keys(cats).forEach(function (k) {
          breakdown.tbody.appendChild(el('tr.sub', null, el('th', { scope: 'row', text: 'bounced: ' + k }),
            el('td.n', { text: num(cats[k]) }), el('td.n', { text: pct(cats[k] / total) })));
        });
      });
    }
    poll(view, load, POLL_MS);
  }

  /* ---------------------------------------------------------- accounts */

  var USAGE = ['sent', 'delivered', 'bounced', 'deferred', 'expired', 'suppressed', 'cancelled', 'pending'];

  function pageAccounts(view) {
    heading(view, 'Accounts');
    var t = table('Usage per account, most delivered first (the leaderboard)',
      ['#', 'Account', 'Parent'].concat(USAGE.map(function (k) { return k[0].toUpperCase() + k.slice(1); }), ['Share of the top']));
    t.id = 'accounts';
    add(view, el('div.scroll', null, t));
    poll(view, function () {
      return api('GET', 'accounts').then(function (d) {
        var rows = d.accounts || [];
        var max = Math.max.apply(null, rows.map(function (r) { return r.delivered || 0; }).concat([1]));
        syncRows(t.tbody, rows, function (r) { return r.account; }, function (r) {
          var cells = [el('td.n'), el('th', { scope: 'row', text: r.account }), el('td')];
          USAGE.forEach(function () { cells.push(el('td.n')); });
          cells.push(el('td.bar', null, el('span.lead')));
          return el('tr', null, cells);
        }, function (tr, r) {
          var x = tr.cells;
          setText(x[0], rows.indexOf(r) + 1);
          setText(x[2], r.parent || '—');
          tr.classList.toggle('disabled', !!r.disabled);
          USAGE.forEach(function (k, i) { setText(x[3 + i], num(r[k])); });
          x[3 + USAGE.length].firstChild.style.width = ((r.delivered || 0) / max * 100) + '%';
        });
      });
    }, 5000);
  }

  /* ---------------------------------------------------------- incidents */

  function incidentSubject(r) {
    var p = r.pause && typeof r.pause === 'object' ? r.pause : null;
    var s = ['summary', 'title', 'text', 'message'].map(function (k) { return r[k]; }).filter(Boolean)[0];
    if (s) return String(s);
    var scope = r.scope && r.scope_name ? r.scope + ' ' + r.scope_name : r.scope || (p ? p.kind + ' ' + p.name : '');
    return [r.signal, scope].filter(Boolean).join(' · ');
  }

  function pageIncidents(view) {
    heading(view, 'Incidents');
    var t = table('Incidents, newest first', ['ID', 'State', 'Severity', 'Rule', 'What', 'Opened', 'Assignee']);
    t.id = 'incidents';
    add(view, t);
    poll(view, function () {
      return api('GET', 'incidents').then(function (d) {
        var list = (d.incidents || d.records || []).slice().sort(function (a, b) { return (b.id || 0) - (a.id || 0); });
        syncRows(t.tbody, list, function (r) { return r.id; }, function (r) {
          return el('tr', null, el('td.n', null, el('a', { href: '#/incidents/' + encodeURIComponent(r.id), text: r.id })),
            el('td'), el('td'), el('td'), el('td'), el('td'), el('td'));
        }, function (tr, r) {
          var x = tr.cells;
          tr.dataset.state = r.state || '';
          setText(x[1], r.state);
          setText(x[2], r.severity);
          setText(x[3], r.rule);
          setText(x[4], incidentSubject(r));
          setText(x[5], when(r.opened_ms || r.opened));
          setText(x[6], r.assignee || '—');
        });
      });
    }, 3000);
  }

  function pageIncident(view, id) {
    var facts = el('dl.facts', { id: 'incident-facts' });
    var tl = el('ol.timeline', { id: 'incident-timeline' });
    var forms = el('div.actions');
    var base = 'incidents/' + encodeURIComponent(id) + '/';
    var bAck = button('Acknowledge', { id: 'incident-ack', 'data-done': 'Acknowledged' }, function () { act(bAck, base + 'ack', {}, load); });
    var bRes = button('Resolve', { id: 'incident-resolve', 'data-done': 'Resolved' }, function () { act(bRes, base + 'resolve', {}, load); });
    var who = el('input', { id: 'incident-assignee', autocomplete: 'off' });
    var bAsg = el('button', { type: 'submit', text: 'Assign', 'data-done': 'Assigned' });
    var asg = el('form.inline', { on: { submit: function (e) {
      e.preventDefault();
      if (who.value.trim()) act(bAsg, base + 'assign', { user: who.value.trim() }, load);
    } } }, el('label', { for: 'incident-assignee', text: 'Assign to user ' }), who, ' ', bAsg);
    var note = el('textarea', { id: 'incident-note', rows: 2, maxlength: 1000 });
    var bNote = el('button', { type: 'submit', text: 'Add note', 'data-done': 'Noted' });
    var nf = el('form.inline', { on: { submit: function (e) {
      e.preventDefault();
      if (note.value.trim()) act(bNote, base + 'note', { text: note.value.trim() }, function () { note.value = ''; load(); });
    } } }, el('label', { for: 'incident-note', text: 'Note ' }), note, ' ', bNote);
    add(forms, [el('p', null, bAck, ' ', bRes), asg, nf]);
    forms.hidden = !mayAct();
    add(view, el('p.back', null, el('a', { href: '#/incidents', text: '← All incidents' })));
    heading(view, 'Incident ' + id);
    add(view, [facts, forms,
      el('h2', { text: 'Timeline' }), tl]);
    function load() {
      return api('GET', 'incidents/' + encodeURIComponent(id)).then(function (d) {
        var r = d && d.incident ? d.incident : d;
        clear(facts);
        var first = ['id', 'state', 'severity', 'rule', 'signal', 'scope', 'scope_name', 'account_name', 'assignee'];
        first.concat(Object.keys(r).filter(function (k) { return first.indexOf(k) < 0; })).forEach(function (k) {
          if (k === 'timeline' || r[k] === undefined || (k === 'account' && r.account_name !== undefined)) return;
          add(facts, el('div', null, el('dt', { text: label(k) }), el('dd', { text: cell(k, r[k]) })));
        });
        view.dataset.state = r.state || '';
        bAck.disabled = r.state !== 'open';
        bRes.disabled = r.state === 'resolved';
        clear(tl);
        (r.timeline || []).forEach(function (e) {
          add(tl, el('li', null, el('time', { text: when(e.time_ms) }), ' ',
            el('strong', { text: e.what }), ' by ', e.who || '?', e.text ? ': ' + e.text : ''));
        });
      });
    }
    poll(view, load, 5000);
  }

  /* ---------------------------------------------------------- reports */

  function day(d) { return d.toISOString().slice(0, 10); }

  function pageReports(view) {
    heading(view, 'Reports');
    var now = new Date();
    var from = el('input', { id: 'report-from', type: 'date', value: day(new Date(now - 6 * 864e5)) });
    var to = el('input', { id: 'report-to', type: 'date', value: day(now) });
    var acct = el('input', { id: 'report-account', size: 12, placeholder: session.master ? 'all' : session.account });
    var out = el('div', { id: 'report' });
    var f = el('form.inline', { on: { submit: function (e) { e.preventDefault(); load(); } } },
      el('label', { for: 'report-from', text: 'From ' }), from, ' ',
      el('label', { for: 'report-to', text: 'to ' }), to, ' (UTC days) ',
      el('label', { for: 'report-account', text: 'account ' }), acct, ' ',
      el('button', { type: 'submit', text: 'Show' }), ' ',
      button('Print', null, function () { window.print(); }));
    add(view, [f, out]);
    var g = gen;
    function load() {
      var q = 'report?from=' + encodeURIComponent(from.value) + '&to=' + encodeURIComponent(to.value);
      if (acct.value.trim()) q += '&account=' + encodeURIComponent(acct.value.trim());
      return api('GET', q)
        .then(function (r) { if (g === gen) drawReport(clear(out), r); }, function (e) {
          if (e.status === 404 && g === gen) {
            clear(out).appendChild(el('p.error', { id: 'report-missing',
              text: 'This sluiced has no report API (GET /console/api/report): ' + e.message }));
          } else pageFailed(view, g, e);
        });
    }
    load();
  }

  var COUNTS = ['queued', 'attempted', 'sent', 'delivered', 'bounced', 'expired', 'complained',
    'unsubscribed', 'suppressed', 'cancelled', 'deferred', 'opened', 'clicked'];

  function drawReport(out, r) {
    var s = r.summary || {};
    add(out, el('p', { text: 'Account ' + (r.account || 'all (the platform)') + ', ' + r.from + ' to ' + r.to +
      ', made ' + when(r.generated) + '.' }));
    var dl = el('dl.figures', { id: 'report-summary' });
    COUNTS.concat(['first_attempt_rate']).forEach(function (k) {
      if (s[k] !== undefined) add(dl, el('div', null, el('dt', { text: label(k) }), el('dd', { 'data-count': k, text: cell(k, s[k]) })));
    });
    add(out, [el('h2', { text: 'Summary' }), dl]);
    var daily = r.daily || [];
    add(out, chartBox('Volume per day', barChart(daily.map(function (d) { return d.day.slice(5); }),
      daily, ['delivered', 'bounced', 'expired', 'deferred'])));
    add(out, chartBox('Busiest hours (sent per hour, UTC)', heatMap(r.hourly || [])));
    var cats = s.bounced_by_category || {};
    add(out, chartBox('Bounces by category', hbars(Object.keys(cats).map(function (k) { return [k, cats[k]]; }), 'o-bounced')));
    var lat = s.latency_ms || {};
    add(out, chartBox('Delivery latency (enqueue to delivered)', hbars(['p50', 'p90', 'p99'].filter(function (k) {
      return typeof lat[k] === 'number';
    }).map(function (k) { return [k, lat[k]]; }), 'o-delivered', function (v) { return duration(v / 1000); })));
    var accounts = (r.accounts || []).map(function (a, i) { return Object.assign({ '#': i + 1 }, a); });
    add(out, [el('h2', { text: 'Sub-account leaderboard' }),
      countTable('Accounts by delivered', accounts, ['#', 'account'], 'report-accounts'),
      el('h2', { text: 'Campaigns' }), countTable('Campaigns', r.campaigns || [], ['campaign_id', 'campaign', 'account']),
      el('h2', { text: 'Sites' }), countTable('Sites', r.sites || [], ['site']),
      el('h2', { text: 'Billing' }), genericTable('Sent per calendar month', r.billing || [], ['month', 'account', 'sent'])]);
  }

  /* A report table: the name columns, then the counts of the definitions. */
  var ROW_COUNTS = ['sent', 'delivered', 'bounced', 'deferred', 'expired', 'complained', 'unsubscribed',
    'suppressed', 'cancelled', 'opened', 'clicked', 'first_attempt_rate'];
  function countTable(caption, rows, names, id) {
    return genericTable(caption, rows.map(function (r) {
      var o = {};
      names.concat(ROW_COUNTS).forEach(function (k) { o[k] = r[k]; });
      if (r.latency_ms && typeof r.latency_ms.p50 === 'number') o.latency_p50 = duration(r.latency_ms.p50 / 1000);
      return o;
    }), null, id);
  }

  /* A report row for a table: nested objects left out (drawn elsewhere). */
  function flatRow(r) {
    var o = {};
    Object.keys(r).forEach(function (k) { if (typeof r[k] !== 'object' || r[k] === null) o[k] = r[k]; });
    return o;
  }

  function chartBox(title, chart) {
    return el('figure.chart', null, el('figcaption', { text: title }), chart);
  }

  /* Stacked bars, one per row of rows, series keys stacked bottom up. */
  function barChart(names, rows, keys) {
    var W = 640, H = 200, L = 40, B = 20;
    var max = Math.max.apply(null, rows.map(function (r) {
      return keys.reduce(function (s, k) { return s + (r[k] || 0); }, 0);
    }).concat([1]));
    var bw = rows.length ? (W - L) / rows.length : 0;
    var g = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'stacked bars of ' + keys.join(', ') });
    add(g, [svg('line', { x1: L, y1: H - B, x2: W, y2: H - B, class: 'axis' }),
      svg('text', { x: L - 4, y: 12, 'text-anchor': 'end', text: num(max) }),
      svg('text', { x: L - 4, y: H - B, 'text-anchor': 'end', text: '0' })]);
    rows.forEach(function (r, i) {
      var y = H - B;
      keys.forEach(function (k) {
        var h = (r[k] || 0) / max * (H - B - 10);
        if (h <= 0) return;
        y -= h;
        g.appendChild(svg('rect', { x: L + i * bw + 1, y: y, width: Math.max(1, bw - 2), height: h, class: 'o-' + k },
          svg('title', { text: names[i] + ' ' + k + ': ' + num(r[k]) })));
      });
      if (rows.length <= 31 && (rows.length <= 10 || i % 3 === 0))
        g.appendChild(svg('text', { x: L + i * bw + bw / 2, y: H - 5, 'text-anchor': 'middle', text: names[i] }));
    });
    if (!rows.length) g.appendChild(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', text: 'no mail in these days' }));
    return el('div', null, g, legend(keys));
  }

  function legend(keys) {
    return el('p.legend', null, keys.map(function (k) { return el('span', null, el('span.key.o-' + k), k + ' '); }));
  }

  /* Hours of the week: 7 rows (Mon..Sun) x 24 columns, shade by sent. */
  function heatMap(hourly) {
    var cells = [], max = 1;
    for (var i = 0; i < 7 * 24; i++) cells.push(0);
    hourly.forEach(function (h) {
      var d = new Date(h.hour);
      if (isNaN(d.getTime())) return;
      var k = ((d.getUTCDay() + 6) % 7) * 24 + d.getUTCHours();
      cells[k] += h.sent !== undefined ? h.sent : (h.delivered || 0) + (h.bounced || 0);
      max = Math.max(max, cells[k]);
    });
    var C = 22, L = 36, T = 16;
    var g = svg('svg', { viewBox: '0 0 ' + (L + 24 * C) + ' ' + (T + 7 * C), role: 'img', 'aria-label': 'sent per weekday and hour' });
    ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].forEach(function (n, r) {
      g.appendChild(svg('text', { x: 0, y: T + r * C + 15, text: n }));
      for (var h = 0; h < 24; h++) {
        var v = cells[r * 24 + h];
        g.appendChild(svg('rect', { x: L + h * C, y: T + r * C, width: C - 2, height: C - 2, class: 'heat',
          'fill-opacity': (0.06 + 0.94 * v / max).toFixed(2) }, svg('title', { text: n + ' ' + h + ':00 UTC: ' + num(v) })));
      }
    });
    for (var h = 0; h < 24; h += 3) g.appendChild(svg('text', { x: L + h * C, y: 11, text: h }));
    return g;
  }

  /* Horizontal bars of [name, value] pairs (values shown by fmt). */
  function hbars(pairs, cls, fmt) {
    if (!pairs.length) return el('p', { text: 'Nothing to show.' });
    var W = 640, R = 22, L = 200;
    fmt = fmt || num;
    var max = Math.max.apply(null, pairs.map(function (p) { return p[1]; }).concat([1]));
    var g = svg('svg', { viewBox: '0 0 ' + W + ' ' + (pairs.length * R + 4), role: 'img',
      'aria-label': pairs.map(function (p) { return p[0] + ' ' + fmt(p[1]); }).join(', ') });
    pairs.forEach(function (p, i) {
      var w = p[1] / max * (W - L - 60);
      add(g, [svg('text', { x: L - 6, y: i * R + 15, 'text-anchor': 'end', text: p[0] }),
        svg('rect', { x: L, y: i * R + 3, width: Math.max(1, w), height: R - 6, class: cls }),
        svg('text', { x: L + w + 4, y: i * R + 15, text: fmt(p[1]) })]);
    });
    return g;
  }

  /* ---------------------------------------------------------- audit */

  function pageAudit(view) {
    heading(view, 'Audit trail');
    var box = el('div', { id: 'audit' });
    add(view, [el('p', { text: 'The last 200 records, newest first: who did what, as which role, and how it ended.' }), box]);
    poll(view, function () {
      return api('GET', 'audit?limit=200').then(function (d) {
        var rows = (d.records || []).slice().sort(function (a, b) { return (b.seq || 0) - (a.seq || 0); })
          .map(function (r) { var o = flatRow(r); delete o.hash; delete o.time_ms; return o; });
        clear(box).appendChild(genericTable('Audit records', rows,
          ['seq', 'time', 'user', 'via', 'role', 'account', 'action', 'object', 'result'], 'audit-table'));
      });
    }, 10000);
  }

  /* ---------------------------------------------------------- routes */

  var ROUTES = [
    [/^#\/overview$/, pageOverview], [/^#\/sites$/, pageSites],
    [/^#\/campaigns$/, pageCampaigns], [/^#\/campaigns\/([^/]+)$/, pageCampaign],
    [/^#\/accounts$/, pageAccounts], [/^#\/incidents$/, pageIncidents],
    [/^#\/incidents\/([^/]+)$/, pageIncident], [/^#\/reports$/, pageReports],
    [/^#\/audit$/, pageAudit]];

  function route() {
    if (!session) return;
    var h = location.hash;
    if (h === '' || h === '#' || h === '#/') { location.replace(home()); return; }
    if (h.indexOf('#/') !== 0) return;           /* an in-page anchor */
    if (session.master === false && (h === '#/overview' || h === '#/sites')) {
      location.replace(home());
      return;
    }
    stopPolling();
    gen++;
    var view = clear($('view'));
    delete view.dataset.state;
    view.dataset.route = h.split('/')[1];
    Array.prototype.forEach.call($('nav').querySelectorAll('a'), function (a) {
      var on = h === a.getAttribute('href') || h.indexOf(a.getAttribute('href') + '/') === 0;
      if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    });
    for (var i = 0; i < ROUTES.length; i++) {
      var m = ROUTES[i][0].exec(h);
      if (m) {
        var arg;
        try { arg = m[1] !== undefined ? decodeURIComponent(m[1]) : undefined; } catch (e) { break; }
        ROUTES[i][1](view, arg);
        return;
      }
    }
    heading(view, 'Not found');
    add(view, el('p', { id: 'denied', text: 'The console has no page ' + h + '.' }));
  }

  /* ---------------------------------------------------------- sign-in */

  function signedIn(s) {
    session = s;
    $('signin').hidden = true;
    $('top').hidden = false;
    $('view').hidden = false;
    setText($('whoami'), s.user + ' (' + s.role + (s.account ? ' of ' + s.account : '') + ')');
    document.body.dataset.signedIn = 'yes';
    /* the overview and sites answer only users with a role on the master */
    ['#/overview', '#/sites'].forEach(function (r) {
      $('nav').querySelector('a[href="' + r + '"]').hidden = s.master === false;
    });
    route();
  }

  function showSignin(why) {
    stopPolling();
    gen++;
    session = null;
    document.body.dataset.signedIn = 'no';
    document.title = 'Sign in · sluice console';
    $('top').hidden = true;
    clear($('view')).hidden = true;
    $('signin').hidden = false;
    $('signin-password').value = '';
    $('signin-totp').value = '';
    setText($('signin-error'), why || '');
    $('signin-user').focus();
  }

  function signedOut(why) {
    if (session) showSignin('Signed out: ' + why + '. Sign in again.');
  }

  function submitSignin(e) {
    e.preventDefault();
    var body = { user: $('signin-user').value.trim(), password: $('signin-password').value };
    var code = $('signin-totp').value.trim();
    var row = $('signin-totp-row');
    if (!row.hidden && code) body.totp = code;
    if (!body.user || !body.password) {
      setText($('signin-error'), 'Give your user name and password.');
      return;
    }
    var btn = $('signin-submit');
    btn.disabled = true;
    setText($('signin-error'), '');
    api('POST', 'login', body).then(function (s) {
      $('signin-password').value = '';
      signedIn(s);
    }, function (err) {
      var msg = err.message;
      if (err.body && err.body.totp_required) {
        var first = row.hidden;
        row.hidden = false;
        $('signin-totp').focus();
        msg = first && !body.totp ? 'Enter the 6-digit code from your authenticator.' : 'Wrong code: ' + msg;
        $('signin-totp').value = '';
      } else {
        $('signin-password').value = '';
        if (err.status === 429) msg = 'Too many failed sign-ins: ' + msg;
        else if (err.status === 401) msg = 'Sign-in refused: ' + msg;
      }
      setText($('signin-error'), msg);
    }).then(function () { btn.disabled = false; });
  }

  function signOut() {
    api('POST', 'logout').then(null, function () { return null; }).then(function () {
      /* the next user starts on their own home page */
      history.replaceState(null, '', location.pathname);
      showSignin('Signed out.');
    });
  }

  function start() {
    $('signin-form').addEventListener('submit', submitSignin);
    $('signout').addEventListener('click', signOut);
    /* the skip link focuses the page without touching the route */
    document.querySelector('.skip').addEventListener('click', function (e) {
      e.preventDefault();
      $('view').focus();
    });
    window.addEventListener('hashchange', route);
    api('GET', 'session').then(signedIn, function (e) {
      showSignin(e.status === 401 ? '' : e.message);
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
