"""The pipeline review page: one self-contained HTML file for the weekly pipeline call.

Everything is inline (CSS, JavaScript, SVG): no CDN, no font, no request leaves the page, so it
opens offline and can be mailed. The page holds:

* count and value by band and recommendation;
* the forecast by expected close month with its P10-P90 range as a chart (deals whose amount is
  implausible are left out and listed);
* a sortable, filterable table of the deals;
* a card per deal (click a row): its probability, its reasons as a bar chart of points that add
  up from the baseline to the probability, the next best milestone, the deal-desk flags and the
  decision rule with its reason.

:func:`render_report` takes the scored frame and the forecast table and returns the page as text;
the job (:mod:`winmodel.jobs.report`) reads and writes the files.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import numpy as np
import pandas as pd

from winmodel.scoring.reasons import MINUS

#: Columns of the scored file the page shows (others are ignored; missing ones stay blank).
DEAL_COLUMNS = (
    "opportunity_id",
    "owner_id",
    "amount",
    "close_date",
    "win_probability",
    "band",
    "recommendation",
    "decision_rule",
    "recommendation_reason",
    "expected_margin",
    "expected_value",
    "reasons_for",
    "reasons_against",
    "points_balance",
    "next_best_milestone",
    "next_best_milestone_uplift",
    "deal_desk_flags",
    "amount_implausible",
)

RECOMMENDATIONS = ("pursue", "qualify", "decline")
BANDS = ("A", "B", "C", "D")
#: A reason: its sentence, sign and points, and the note some carry ("..., against the usual rule").
_FIGURE = re.compile(r"^(.*) \(([+\u2212])(\d+(?:\.\d+)?) pts(?:, ([^)]*))?\)$")


def _points(text: object) -> list[list[Any]]:
    """Give [[sentence, points], ...] from a reasons column ('... (+3.1 pts); ...')."""
    found: list[list[Any]] = []
    for part in str(text if isinstance(text, str) else "").split("; "):
        match = _FIGURE.match(part.strip())
        if match:
            sign = -1.0 if match.group(2) == MINUS else 1.0
            note = f" ({match.group(4)})" if match.group(4) else ""
            found.append([match.group(1) + note, sign * float(match.group(3))])
    return found


#: The terms of ``points_balance`` the page draws, by their words. The reasons' own sums ("reasons
#: for", "reasons against", since 0.2.0) are drawn from the reasons themselves; files scored before
#: them read the same.
_BALANCE_TERMS = {"Baseline": "baseline", "other factors": "other", "calibration": "calibration"}
_TERM = re.compile(r"^(.+?) ([+\u2212]?\d+\.\d) pts$")


def _balance(text: object) -> dict[str, float]:
    found = {}
    for part in str(text if isinstance(text, str) else "").split("; "):
        match = _TERM.match(part.strip())
        if match and match.group(1) in _BALANCE_TERMS:
            found[_BALANCE_TERMS[match.group(1)]] = float(match.group(2).replace(MINUS, "-"))
    return found if len(found) == len(_BALANCE_TERMS) else {}


def _clean(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else round(float(value), 6)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


def deal_records(scored: pd.DataFrame) -> list[dict[str, Any]]:
    """Give the deals as plain records for the page (reasons split into sentences and points)."""
    records = []
    present = [column for column in DEAL_COLUMNS if column in scored]
    for row in scored[present].to_dict("records"):
        record = {column: _clean(row.get(column)) for column in DEAL_COLUMNS}
        record["for"] = _points(row.get("reasons_for"))
        record["against"] = _points(row.get("reasons_against"))
        record["balance"] = _balance(row.get("points_balance"))
        records.append(record)
    return records


def summary_table(scored: pd.DataFrame) -> pd.DataFrame:
    """Give deals and amount by band (rows) and recommendation (columns), with totals."""
    amount = (
        pd.to_numeric(scored["amount"], errors="coerce").fillna(0.0)
        if "amount" in scored
        else pd.Series(0.0, index=scored.index)
    )
    frame = pd.DataFrame(
        {"band": scored["band"].astype(str), "recommendation": scored["recommendation"].astype(str)}
    )
    frame["amount"] = amount.to_numpy()
    records = []
    for band in (*BANDS, "all"):
        part = frame if band == "all" else frame[frame["band"] == band]
        record: dict[str, Any] = {"band": band}
        for kind in (*RECOMMENDATIONS, "all"):
            chosen = part if kind == "all" else part[part["recommendation"] == kind]
            record[f"{kind}_deals"] = len(chosen)
            record[f"{kind}_amount"] = float(chosen["amount"].sum())
        records.append(record)
    return pd.DataFrame(records)


def _money(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:,.1f} M"
    if size >= 1e3:
        return f"{value / 1e3:,.0f} k"
    return f"{value:,.0f}"


def _summary_html(table: pd.DataFrame) -> str:
    head = "".join(f"<th colspan=2>{kind}</th>" for kind in (*RECOMMENDATIONS, "all"))
    sub = "".join("<th>deals</th><th>amount</th>" for _ in range(4))
    body = []
    for record in table.to_dict("records"):
        cells = "".join(
            f"<td>{int(record[f'{kind}_deals']):,}</td><td>{_money(record[f'{kind}_amount'])}</td>"
            for kind in (*RECOMMENDATIONS, "all")
        )
        label = "all bands" if record["band"] == "all" else f"band {record['band']}"
        body.append(
            f"<tr class='{'total' if record['band'] == 'all' else ''}'><th>{label}</th>{cells}</tr>"
        )
    total = table[table["band"] == "all"].iloc[0]
    shares = []
    for kind in RECOMMENDATIONS:
        deals = total[f"{kind}_deals"] / max(total["all_deals"], 1)
        value = total[f"{kind}_amount"] / total["all_amount"] if total["all_amount"] else 0.0
        shares.append(f"<b>{kind}</b> {deals:.0%} of the deals, {value:.0%} of the value")
    return (
        "<table class='summary'><thead><tr><th></th>"
        + head
        + "</tr><tr><th></th>"
        + sub
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table><p class='note'>"
        + "; ".join(shares)
        + ".</p>"
    )


def _forecast_svg(forecast: pd.DataFrame) -> str:
    """Give the forecast by month as an inline SVG: expected bookings as bars, P10-P90 as whiskers."""
    months = forecast[forecast["period"] != "total"].reset_index(drop=True)
    if months.empty:
        return "<p class='note'>No deal with an amount and an expected close date.</p>"
    width, height, left, bottom, top = 760, 260, 70, 40, 14
    step = (width - left - 10) / len(months)
    peak = float(np.nanmax(months[["expected", "p90"]].to_numpy(dtype=float))) or 1.0

    def y(value: float) -> float:
        return top + (height - top - bottom) * (1 - value / peak)

    parts = [
        f"<svg id='forecast-chart' viewBox='0 0 {width} {height}' role='img' "
        "aria-label='Expected bookings by expected close month with the P10-P90 range'>"
    ]
    for fraction in (0, 0.25, 0.5, 0.75, 1.0):
        value = peak * fraction
        parts.append(
            f"<line x1='{left}' x2='{width - 10}' y1='{y(value):.1f}' y2='{y(value):.1f}' class='grid'/>"
            f"<text x='{left - 6}' y='{y(value) + 4:.1f}' class='axis' text-anchor='end'>{_money(value)}</text>"
        )
    for index, record in enumerate(months.to_dict("records")):
        x = left + index * step
        bar = max(step * 0.6, 2)
        centre = x + step / 2
        expected = float(record["expected"])
        parts.append(
            f"<rect class='bar' x='{centre - bar / 2:.1f}' y='{y(expected):.1f}' width='{bar:.1f}' "
            f"height='{max(y(0) - y(expected), 0):.1f}'><title>{html.escape(str(record['period']))}: "
            f"expected {_money(expected)}, P10 {_money(float(record['p10']))}, "
            f"P90 {_money(float(record['p90']))}, {int(record['deals'])} deals</title></rect>"
            f"<line class='range' x1='{centre:.1f}' x2='{centre:.1f}' y1='{y(float(record['p10'])):.1f}' "
            f"y2='{y(float(record['p90'])):.1f}'/>"
            f"<line class='range' x1='{centre - bar / 4:.1f}' x2='{centre + bar / 4:.1f}' "
            f"y1='{y(float(record['p90'])):.1f}' y2='{y(float(record['p90'])):.1f}'/>"
            f"<line class='range' x1='{centre - bar / 4:.1f}' x2='{centre + bar / 4:.1f}' "
            f"y1='{y(float(record['p10'])):.1f}' y2='{y(float(record['p10'])):.1f}'/>"
        )
        if len(months) <= 18 or index % 2 == 0:
            parts.append(
                f"<text x='{centre:.1f}' y='{height - bottom + 16}' class='axis' text-anchor='middle'>"
                f"{html.escape(str(record['period']))}</text>"
            )
    parts.append("</svg>")
    total = forecast[forecast["period"] == "total"]
    if len(total):
        whole = total.to_dict("records")[0]
        parts.append(
            f"<p class='note'>Whole pipeline: expected {_money(float(whole['expected']))} "
            f"(P10 {_money(float(whole['p10']))}, P50 {_money(float(whole['p50']))}, "
            f"P90 {_money(float(whole['p90']))}) from {int(whole['deals']):,} deals; bars are the "
            "expected bookings, whiskers the P10-P90 range (8 in 10 outcomes).</p>"
        )
    return "".join(parts)


_STYLE = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2a44;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;opacity:.85}main{padding:16px 24px;max-width:1400px}
section{background:#fff;border-radius:6px;padding:12px 16px;margin-bottom:16px;box-shadow:0 1px 2px #0001}
h2{font-size:16px;margin:0 0 8px}.note{color:#555;font-size:13px}
table{border-collapse:collapse;width:100%}th,td{padding:4px 8px;text-align:right;border-bottom:1px solid #e4e6ea}
th:first-child,td:first-child{text-align:left}.summary tr.total{font-weight:600}
#deals td,#deals th{white-space:nowrap}#deals th{cursor:pointer;position:sticky;top:0;background:#eef0f4;user-select:none}
#deals th.sorted-asc::after{content:' \\25B2'}#deals th.sorted-desc::after{content:' \\25BC'}
#deals tbody tr{cursor:pointer}#deals tbody tr:hover{background:#f0f4ff}#deals tbody tr.selected{background:#dfe8ff}
.scroll{max-height:520px;overflow:auto}.filters{display:flex;gap:12px;margin-bottom:8px;flex-wrap:wrap}
.filters input,.filters select{padding:4px 6px}.pill{padding:1px 8px;border-radius:10px;font-size:12px;color:#fff}
.pursue{background:#1f8a4c}.qualify{background:#c98a00}.decline{background:#b23b3b}
#forecast-chart{max-width:860px;width:100%;height:auto;display:block}
.grid{stroke:#e4e6ea}.axis{font-size:11px;fill:#555}.bar{fill:#4c6ef5}.range{stroke:#1d2330;stroke-width:1.5}
.layout{display:grid;grid-template-columns:minmax(0,3fr) minmax(320px,2fr);gap:16px}
#card h3{margin:0 0 4px}#card .big{font-size:28px;font-weight:700}#card dl{display:grid;grid-template-columns:140px 1fr;gap:4px 8px;margin:8px 0}
#card dt{color:#555}#card dd{margin:0}.pos{fill:#1f8a4c}.neg{fill:#b23b3b}.base{fill:#8a94a6}.label{font-size:11px;fill:#1d2330}
.warn{color:#b23b3b}
"""

_SCRIPT = r"""
(function () {
  'use strict';
  var deals = JSON.parse(document.getElementById('deal-data').textContent);
  var body = document.querySelector('#deals tbody');
  var columns = [
    ['opportunity_id', 'deal', 'text'], ['owner_id', 'owner', 'text'], ['amount', 'amount', 'money'],
    ['close_date', 'expected close', 'text'], ['win_probability', 'win chance', 'percent'],
    ['band', 'band', 'text'], ['recommendation', 'recommendation', 'pill'],
    ['decision_rule', 'rule', 'text'], ['expected_margin', 'expected margin', 'money']
  ];
  var sortKey = 'expected_margin', sortDesc = true;
  function money(v) {
    if (v === null || v === undefined) { return '—'; }
    var a = Math.abs(v), s = v < 0 ? '\u2212' : '';
    if (a >= 1e6) { return s + (a / 1e6).toFixed(1) + ' M'; }
    if (a >= 1e3) { return s + Math.round(a / 1e3).toLocaleString('en') + ' k'; }
    return s + Math.round(a).toLocaleString('en');
  }
  function cell(value, kind) {
    var td = document.createElement('td');
    if (kind === 'money') { td.textContent = money(value); }
    else if (kind === 'percent') { td.textContent = value === null ? '—' : (100 * value).toFixed(0) + '%'; }
    else if (kind === 'pill') { var s = document.createElement('span'); s.className = 'pill ' + value; s.textContent = value; td.appendChild(s); }
    else { td.textContent = value === null ? '' : value; }
    return td;
  }
  function matches(deal) {
    var text = document.getElementById('filter-text').value.toLowerCase();
    var kind = document.getElementById('filter-recommendation').value;
    var band = document.getElementById('filter-band').value;
    if (kind && deal.recommendation !== kind) { return false; }
    if (band && deal.band !== band) { return false; }
    if (text) {
      var hay = [deal.opportunity_id, deal.owner_id, deal.decision_rule, deal.recommendation_reason].join(' ').toLowerCase();
      if (hay.indexOf(text) < 0) { return false; }
    }
    return true;
  }
  function render() {
    var shown = deals.filter(matches);
    shown.sort(function (a, b) {
      var x = a[sortKey], y = b[sortKey];
      if (x === y) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      return (x < y ? -1 : 1) * (sortDesc ? -1 : 1);
    });
    body.textContent = '';
    var fragment = document.createDocumentFragment();
    shown.forEach(function (deal) {
      var tr = document.createElement('tr');
      tr.className = 'deal';
      tr.dataset.id = deal.opportunity_id;
      columns.forEach(function (c) { tr.appendChild(cell(deal[c[0]], c[2])); });
      tr.addEventListener('click', function () { showCard(deal, tr); });
      fragment.appendChild(tr);
    });
    body.appendChild(fragment);
    document.getElementById('shown-count').textContent = shown.length.toLocaleString('en') + ' of ' + deals.length.toLocaleString('en') + ' deals shown';
    document.querySelectorAll('#deals th').forEach(function (th) {
      th.classList.remove('sorted-asc', 'sorted-desc');
      if (th.dataset.key === sortKey) { th.classList.add(sortDesc ? 'sorted-desc' : 'sorted-asc'); }
    });
  }
  function svg(name, attributes) {
    var node = document.createElementNS('http://www.w3.org/2000/svg', name);
    Object.keys(attributes).forEach(function (k) { node.setAttribute(k, attributes[k]); });
    return node;
  }
  function waterfall(deal) {
    var b = deal.balance || {};
    var steps = [['Baseline', b.baseline || 0, 'base', true]];
    deal['for'].forEach(function (r) { steps.push([r[0], r[1], 'pos', false]); });
    deal.against.forEach(function (r) { steps.push([r[0], r[1], 'neg', false]); });
    steps.push(['Other factors', b.other || 0, (b.other || 0) >= 0 ? 'pos' : 'neg', false]);
    steps.push(['Calibration', b.calibration || 0, (b.calibration || 0) >= 0 ? 'pos' : 'neg', false]);
    var width = 470, row = 22, left = 240, scale = (width - left - 46) / 100;
    var chart = svg('svg', {viewBox: '0 0 ' + width + ' ' + (row * (steps.length + 1) + 6), id: 'reason-chart'});
    var level = 0;
    steps.forEach(function (s, i) {
      var start = s[3] ? 0 : level, end = s[3] ? s[1] : level + s[1];
      level = end;
      var x = left + Math.min(start, end) * scale, w = Math.max(Math.abs(end - start) * scale, 1);
      var label = svg('text', {x: left - 6, y: row * i + 15, 'text-anchor': 'end', 'class': 'label'});
      label.textContent = (s[0].length > 38 ? s[0].slice(0, 37) + '\u2026' : s[0]);
      var title = svg('title', {}); title.textContent = s[0] + ': ' + (s[1] >= 0 && !s[3] ? '+' : '') + s[1].toFixed(1) + ' pts';
      var rect = svg('rect', {x: x, y: row * i + 4, width: w, height: row - 8, 'class': s[2]});
      rect.appendChild(title);
      var value = svg('text', {x: x + w + 3, y: row * i + 15, 'class': 'label'});
      value.textContent = (s[1] >= 0 && !s[3] ? '+' : '') + s[1].toFixed(1);
      chart.appendChild(label); chart.appendChild(rect); chart.appendChild(value);
    });
    var total = svg('text', {x: left, y: row * steps.length + 16, 'class': 'label'});
    total.textContent = '= ' + (100 * deal.win_probability).toFixed(1) + '% win chance';
    chart.appendChild(total);
    return chart;
  }
  function showCard(deal, tr) {
    document.querySelectorAll('#deals tr.selected').forEach(function (r) { r.classList.remove('selected'); });
    if (tr) { tr.classList.add('selected'); }
    var card = document.getElementById('card');
    card.textContent = '';
    var h = document.createElement('h3'); h.textContent = deal.opportunity_id + (deal.owner_id ? ' \u00b7 ' + deal.owner_id : '');
    var big = document.createElement('div'); big.className = 'big';
    big.textContent = (100 * deal.win_probability).toFixed(0) + '% \u00b7 band ' + deal.band + ' \u00b7 ';
    var pill = document.createElement('span'); pill.className = 'pill ' + deal.recommendation; pill.textContent = deal.recommendation;
    big.appendChild(pill);
    card.appendChild(h); card.appendChild(big);
    var dl = document.createElement('dl');
    [['Amount', money(deal.amount) + (deal.amount_implausible ? ' (implausible: check it)' : '')],
     ['Expected close', deal.close_date || '—'],
     ['Expected margin', money(deal.expected_margin)], ['Expected value', money(deal.expected_value)],
     ['Decision rule', deal.decision_rule || '—'], ['Why', deal.recommendation_reason || '—'],
     ['Next best milestone', deal.next_best_milestone ? deal.next_best_milestone + ' (+' + Number(deal.next_best_milestone_uplift || 0).toFixed(1) + ' pts)' : 'none'],
     ['Deal desk', deal.deal_desk_flags || 'no flag']].forEach(function (pair) {
      var dt = document.createElement('dt'); dt.textContent = pair[0];
      var dd = document.createElement('dd'); dd.textContent = pair[1];
      dl.appendChild(dt); dl.appendChild(dd);
    });
    card.appendChild(dl);
    var caption = document.createElement('div'); caption.className = 'note';
    caption.textContent = 'Reasons in points: from the baseline, each reason, other factors and calibration add up to the win chance.';
    card.appendChild(caption);
    card.appendChild(waterfall(deal));
  }
  document.querySelectorAll('#deals th').forEach(function (th) {
    th.addEventListener('click', function () {
      if (sortKey === th.dataset.key) { sortDesc = !sortDesc; } else { sortKey = th.dataset.key; sortDesc = true; }
      render();
    });
  });
  ['filter-text', 'filter-recommendation', 'filter-band'].forEach(function (id) {
    document.getElementById(id).addEventListener('input', render);
  });
  render();
  if (deals.length) {
    var first = deals.slice().sort(function (a, b) { return (b.expected_margin || 0) - (a.expected_margin || 0); })[0];
    showCard(first, document.querySelector('#deals tr.deal'));
  }
  document.body.dataset.rendered = String(document.querySelectorAll('#deals tr.deal').length);
}());
"""


def render_report(
    scored: pd.DataFrame,
    forecast: pd.DataFrame,
    *,
    title: str = "Pipeline review",
    subtitle: str = "",
    notes: tuple[str, ...] = (),
) -> str:
    """Give the pipeline review page (self-contained HTML) for a scored pipeline and its forecast table."""
    records = deal_records(scored)
    data = json.dumps(records, ensure_ascii=False, separators=(",", ":"))
    # A JSON text inside a <script> element must not close it.
    data = data.replace("</", "<\\/").replace("<!--", "<\\!--")
    headers = "".join(
        f"<th data-key='{key}'>{label}</th>"
        for key, label in (
            ("opportunity_id", "deal"),
            ("owner_id", "owner"),
            ("amount", "amount"),
            ("close_date", "expected close"),
            ("win_probability", "win chance"),
            ("band", "band"),
            ("recommendation", "recommendation"),
            ("decision_rule", "rule"),
            ("expected_margin", "expected margin"),
        )
    )
    options = "".join(f"<option value='{kind}'>{kind}</option>" for kind in RECOMMENDATIONS)
    band_options = "".join(f"<option value='{band}'>band {band}</option>" for band in BANDS)
    note_html = "".join(f"<p class='note warn'>{html.escape(note)}</p>" for note in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>{html.escape(title)}</title><style>{_STYLE}</style></head>
<body data-deals="{len(records)}">
<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>
<main>
<section><h2>Count and value by band and recommendation</h2>{_summary_html(summary_table(scored))}{note_html}</section>
<section><h2>Forecast by expected close month</h2>{_forecast_svg(forecast)}</section>
<div class="layout">
<section><h2>Deals</h2>
<div class="filters"><input id="filter-text" type="search" placeholder="Filter: deal, owner, rule, reason" size="34">
<select id="filter-recommendation"><option value="">every recommendation</option>{options}</select>
<select id="filter-band"><option value="">every band</option>{band_options}</select>
<span id="shown-count" class="note"></span></div>
<div class="scroll"><table id="deals"><thead><tr>{headers}</tr></thead><tbody></tbody></table></div>
<p class="note">Click a column to sort, a row to open its card.</p></section>
<section id="card-section"><h2>Deal card</h2><div id="card"></div></section>
</div>
</main>
<script type="application/json" id="deal-data">{data}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
