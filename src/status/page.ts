/**
 * The status page as HTML: a pure function of a StatusView, no I/O. Server-rendered with
 * inline CSS, no JavaScript (it reloads itself with a meta refresh), readable on a phone
 * (viewport meta, one column below 640px). Every text that comes from outside the code is
 * escaped; numbers in style attributes are formatted here and clamped.
 */

export interface BucketStatus {
  readonly name: string;
  /** `unknown`: the store holds objects on a bucket the configuration no longer lists. */
  readonly state: 'active' | 'draining' | 'unknown';
  readonly weight: number;
  readonly count: number;
  /** count / total objects of the kind, 0 to 1. */
  readonly share: number;
  /** The share emptiest-bin aims at (see targetShares), or null: it receives no new objects. */
  readonly target: number | null;
  /** New assignments in the recent window. */
  readonly recent: number;
}

export interface KindStatus {
  readonly name: string;
  readonly total: number;
  readonly recent: number;
  readonly buckets: readonly BucketStatus[];
}

export interface AuditLine {
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly kind: string;
  readonly name: string | null;
  readonly from: string | null;
  readonly to: string | null;
  readonly reason: string | null;
}

export interface StatusView {
  /** Unix ms. */
  readonly generatedAt: number;
  readonly version: string;
  readonly mode: string;
  readonly store: {
    readonly backend: string;
    readonly location: string;
    readonly up: boolean;
    readonly error: string | null;
  };
  readonly uptimeSeconds: number;
  readonly workers: number;
  /** Seconds between reloads; 0: no reload. */
  readonly refreshSeconds: number;
  /** Since when the "new" counts are complete (unix ms): an hour ago, or the latest start. */
  readonly recentSince: number;
  /** Null when the store did not answer. */
  readonly kinds: readonly KindStatus[] | null;
  readonly audit: readonly AuditLine[] | null;
}

/**
 * The share each bucket would hold once emptiest-bin has balanced the kind: objects on
 * draining (or unconfigured) buckets stay there; the rest are spread over the active buckets
 * in proportion to their weights. Null for buckets that take no new objects.
 */
export function targetShares(buckets: readonly { state: string; weight: number; count: number }[]): (number | null)[] {
  const total = buckets.reduce((a, b) => a + b.count, 0);
  const held = buckets.reduce((a, b) => a + (b.state === 'active' ? 0 : b.count), 0);
  const weights = buckets.reduce((a, b) => a + (b.state === 'active' ? b.weight : 0), 0);
  const free = total === 0 ? 1 : 1 - held / total;
  return buckets.map((b) => (b.state === 'active' && weights > 0 ? (free * b.weight) / weights : null));
}

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const int = new Intl.NumberFormat('en-US');
const pct = (x: number): string => `${(Math.min(Math.max(x, 0), 1) * 100).toFixed(1)}%`;
/** A width for a style attribute: a plain number, never anything else. */
const width = (x: number): string => `${(Math.min(Math.max(Number.isFinite(x) ? x : 0, 0), 1) * 100).toFixed(2)}%`;

function utc(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return m > 0 ? `${m}m ${s % 60}s` : `${s}s`;
}

function bucketHtml(b: BucketStatus): string {
  const badge =
    b.state === 'draining'
      ? '<span class="badge draining">draining · no new objects</span>'
      : b.state === 'unknown'
        ? '<span class="badge unknown">not in configuration</span>'
        : '<span class="badge active">active</span>';
  const target =
    b.target === null
      ? ''
      : `<div class="target" style="left:${width(b.target)}" title="target ${pct(b.target)}"></div>`;
  const label = `${pct(b.share)} of objects${b.target === null ? '' : `, target ${pct(b.target)}`}`;
  const count = `<b class="n">${int.format(b.count)}</b> ${b.count === 1 ? 'object' : 'objects'} · ${pct(b.share)}`;
  return `<li class="bucket ${b.state}" data-bucket="${escapeHtml(b.name)}"
    data-count="${b.count}" data-state="${b.state}">
  <div class="head"><span class="name">${escapeHtml(b.name)}</span>${badge}<span class="count">${count}</span></div>
  <div class="bar" role="img"
    aria-label="${escapeHtml(label)}"><div class="fill" style="width:${width(b.share)}"></div>${target}</div>
  <div class="meta"><span>weight ${escapeHtml(String(b.weight))}</span><span
    >target ${b.target === null ? '—' : pct(b.target)}</span><span
    class="recent">${int.format(b.recent)} new in the last hour</span></div>
</li>`;
}

function kindHtml(k: KindStatus): string {
  const objects = k.total === 1 ? 'object' : 'objects';
  const counts = `${int.format(k.total)} ${objects} · ${int.format(k.recent)} new in the last hour`;
  return `<section class="kind" data-kind="${escapeHtml(k.name)}">
<h2>${escapeHtml(k.name)} <small>${counts}</small></h2>
<ul class="buckets">
${k.buckets.map(bucketHtml).join('\n')}
</ul>
</section>`;
}

function auditHtml(audit: readonly AuditLine[] | null): string {
  if (audit === null) return '<p class="muted">The audit log could not be read.</p>';
  if (audit.length === 0) return '<p class="muted">No admin changes yet.</p>';
  const rows = audit.map((e) => {
    const change = `${e.from === null ? '∅' : escapeHtml(e.from)} → ${e.to === null ? '∅' : escapeHtml(e.to)}`;
    return (
      '<tr><td data-label="time"><time ' +
      `datetime="${escapeHtml(e.at)}">${escapeHtml(e.at.replace('T', ' ').slice(0, 19))}</time></td>` +
      `<td data-label="who">${escapeHtml(e.actor)}</td><td data-label="action">${escapeHtml(e.action)}</td>` +
      `<td data-label="object">${escapeHtml(e.kind)}${e.name === null ? '' : ` / ${escapeHtml(e.name)}`}</td>` +
      `<td data-label="change">${change}</td><td ` +
      `data-label="reason">${e.reason === null ? '' : escapeHtml(e.reason)}</td></tr>`
    );
  });
  return `<table class="audit">
<thead><tr><th>time (UTC)</th><th>who</th><th>action</th><th>object</th><th>change</th><th>reason</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>`;
}

const CSS = `
:root{color-scheme:light dark;--bg:#f6f7f9;--fg:#1d2330;--muted:#5d6677;--card:#fff;
  --line:#dde1e8;--track:#e8ebf0;--fill:#3b6fd8;--drain:#d97a06;
  --bad:#c62f2f;--ok:#1d8a4b}
@media (prefers-color-scheme:dark){:root{--bg:#14171c;--fg:#e6e9ef;
  --muted:#9aa3b2;--card:#1d2128;--line:#2e343e;--track:#2a3038;
  --fill:#5b8ff0;--drain:#f0a030;--bad:#ef5b5b;--ok:#3cc57a}}
*{box-sizing:border-box}
body{margin:0;
  font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
main{max-width:960px;margin:0 auto;padding:16px}
h1{font-size:1.35rem;margin:0 0 4px}
h2{font-size:1.1rem;margin:0 0 10px}
h2 small{font-weight:400;color:var(--muted);font-size:.85rem}
.facts{display:flex;flex-wrap:wrap;gap:4px 14px;
  color:var(--muted);font-size:.85rem;margin:0 0 16px;padding:0;list-style:none}
.facts b{color:var(--fg);font-weight:600}
.up{color:var(--ok)}.down{color:var(--bad)}
.kind,.log{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px;margin:0 0 16px}
.buckets{list-style:none;margin:0;padding:0;display:grid;gap:14px}
.head{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px 10px}
.name{font-weight:600;word-break:break-all}
.count{margin-left:auto;font-variant-numeric:tabular-nums}
.badge{font-size:.75rem;padding:1px 7px;border-radius:9px;border:1px solid currentColor}
.badge.active{color:var(--muted)}
.badge.draining{color:var(--drain);font-weight:700;text-transform:uppercase;letter-spacing:.02em}
.badge.unknown{color:var(--bad);font-weight:700}
.bar{position:relative;height:14px;background:var(--track);border-radius:7px;margin:6px 0 4px;overflow:visible}
.fill{height:100%;border-radius:7px;background:var(--fill);min-width:2px}
.draining .fill{
  background:repeating-linear-gradient(135deg,var(--drain) 0 6px,transparent 6px 10px),var(--track);
  border:1px solid var(--drain)}
.unknown .fill{background:var(--bad)}
.target{position:absolute;top:-4px;bottom:-4px;width:0;border-left:2px solid var(--fg)}
.meta{display:flex;flex-wrap:wrap;gap:2px 14px;color:var(--muted);font-size:.85rem}
.legend{color:var(--muted);font-size:.8rem;margin:-4px 0 12px}
.legend i{display:inline-block;
  width:0;height:12px;border-left:2px solid var(--fg);vertical-align:middle;margin:0 4px}
.muted{color:var(--muted)}
.problem{background:var(--card);border:2px solid var(--bad);border-radius:10px;padding:12px 14px;margin:0 0 16px}
table.audit{width:100%;border-collapse:collapse;font-size:.85rem}
.audit th,.audit td{text-align:left;padding:6px 8px;border-top:1px solid var(--line);vertical-align:top}
.audit th,.audit td:nth-child(-n+4){white-space:nowrap}
.audit td:nth-child(n+5){overflow-wrap:anywhere}
.audit th{color:var(--muted);font-weight:600;border-top:0}
@media (max-width:640px){
  main{padding:10px}
  .count{margin-left:0;width:100%}
  .audit thead{display:none}
  .audit tr{display:block;border-top:1px solid var(--line);padding:6px 0}
  .audit td,.audit td:nth-child(-n+4){display:flex;gap:8px;
    border:0;padding:2px 0;white-space:normal;overflow-wrap:anywhere}
  .audit td::before{content:attr(data-label);color:var(--muted);min-width:64px}
}`;

export function renderStatus(v: StatusView): string {
  const refresh = v.refreshSeconds > 0 ? `<meta http-equiv="refresh" content="${Math.trunc(v.refreshSeconds)}">` : '';
  const partial = v.recentSince > v.generatedAt - 3_600_000 + 60_000;
  const since = partial ? `, since ${utc(v.recentSince)} UTC (its start)` : '';
  const facts = [
    `<li>sharder <b>${escapeHtml(v.version)}</b></li>`,
    `<li>mode <b>${escapeHtml(v.mode)}</b></li>`,
    `<li>store <b>${escapeHtml(v.store.backend)}</b> ${escapeHtml(v.store.location)} ` +
      `${v.store.up ? '<b class="up">up</b>' : '<b class="down">not answering</b>'}</li>`,
    `<li>up <b>${duration(v.uptimeSeconds)}</b></li>`,
    `<li>workers <b>${v.workers}</b></li>`,
    `<li>as of <b>${utc(v.generatedAt)} ` +
      `UTC</b>${v.refreshSeconds > 0 ? ` · reloads every ${Math.trunc(v.refreshSeconds)} s` : ''}</li>`,
  ];
  const problem = v.store.up
    ? ''
    : `<div class="problem" role="alert"><b>The store did not answer.</b> ${escapeHtml(v.store.error ?? '')} ` +
      'Known users are still routed from memory; new users get 503 until it answers.</div>';
  const kinds = v.kinds === null ? '' : v.kinds.map(kindHtml).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh}
<title>sharder status</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>sharder status</h1>
<ul class="facts">${facts.join('')}</ul>
${problem}
<p class="legend"
>Bars: each bucket's share of its kind's objects; <i></i> marks the share emptiest-bin aims at (objects on draining
buckets stay; active buckets share the rest by weight).
"New" counts first assignments made by this instance${since}.</p>
${kinds}
<section class="log">
<h2>Recent admin changes</h2>
${auditHtml(v.audit)}
</section>
</main>
</body>
</html>
`;
}
