"""The contact sheet of a run (``report.html``): one self-contained page, thumbnail / before /
after / mask per photo, sortable by name, damage, resyncs and status."""
from __future__ import annotations

import html

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
h1{font-size:1.4em} .counts span{margin-right:1.2em}
table{border-collapse:collapse;width:100%} th,td{border-bottom:1px solid #ddd;padding:6px;vertical-align:top;text-align:left}
th button{font:inherit;background:none;border:0;cursor:pointer;text-decoration:underline}
img{max-width:240px;max-height:160px;display:block;background:#eee}
.restored,.truncated{color:#0a5} .clean{color:#06c} .skipped{color:#a60} .failed{color:#c00}
td.num{font-variant-numeric:tabular-nums;text-align:right} td:first-child{min-width:14em}
"""

_SCRIPT = """
function sortBy(key, numeric){
  const body=document.querySelector('#photos tbody');
  const rows=[...body.rows];
  const dir=body.dataset.sort===key&&body.dataset.dir==='desc'?'asc':'desc';
  rows.sort((a,b)=>{const x=a.dataset[key],y=b.dataset[key];
    const c=numeric?(parseFloat(x)-parseFloat(y)):x.localeCompare(y);return dir==='asc'?c:-c;});
  rows.forEach(r=>body.appendChild(r));body.dataset.sort=key;body.dataset.dir=dir;
}
// report.html#sort=name (or damage, resyncs, status; add -asc) opens the sheet sorted that way
document.addEventListener('DOMContentLoaded',()=>{
  const m=location.hash.match(/sort=(name|damage|resyncs|status)(-asc)?/);
  if(!m)return;
  const body=document.querySelector('#photos tbody');
  body.dataset.sort=m[1];body.dataset.dir=m[2]?'desc':'asc';
  sortBy(m[1],m[1]==='damage'||m[1]==='resyncs');
});
"""


def report_html(records: list[dict], summary) -> str:
    """The page for ``records`` and their ``acir_engine.run.Summary``."""
    def img(rec: dict, key: str) -> str:
        p = rec.get("outputs", {}).get(f"preview_{key}")
        return f'<img loading="lazy" src="{html.escape(p)}" alt="{key}">' if p else "—"

    rows = []
    for r in sorted(records, key=lambda r: -float(r.get("damaged_fraction", 0) or 0)):
        dmg = float(r.get("damaged_fraction", 0) or 0)
        status = r.get("status", "failed")
        note = r.get("reason", "") or f"stage {r.get('stage', '')}, thumbnail {r.get('thumbnail', '')}"
        if "header" in r:
            note += f"; header put back from {r['header'].get('donor', '?')}"
        note = html.escape(note)
        rows.append(
            f'<tr data-name="{html.escape(r.get("name", ""))}" data-damage="{dmg:.6f}" '
            f'data-resyncs="{int(r.get("resyncs", 0) or 0)}" data-status="{status}">'
            f'<td>{html.escape(r.get("name", ""))}<br><small>{note}</small></td>'
            f'<td class="{status}">{status}</td><td class="num">{100 * dmg:.2f}%</td>'
            f'<td class="num">{int(r.get("resyncs", 0) or 0)}</td>'
            f'<td>{img(r, "thumbnail")}</td><td>{img(r, "before")}</td><td>{img(r, "after")}</td>'
            f'<td>{img(r, "mask")}</td></tr>')
    s = summary
    counts = (f'<span>{s.total} photos</span><span class="restored">{s.restored} restored'
              f'{f" ({s.truncated} truncated)" if s.truncated else ""}</span>'
              f'<span class="clean">{s.clean} intact (copied)</span><span class="skipped">{s.skipped} skipped</span>'
              f'<span class="failed">{s.failed} failed</span><span>{s.seconds:.1f} s</span>')
    head = ('<tr><th><button onclick="sortBy(\'name\',false)">photo</button></th>'
            '<th><button onclick="sortBy(\'status\',false)">status</button></th>'
            '<th><button onclick="sortBy(\'damage\',true)">damaged</button></th>'
            '<th><button onclick="sortBy(\'resyncs\',true)">resyncs</button></th>'
            '<th>thumbnail</th><th>before</th><th>after</th><th>mask</th></tr>')
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>acir restore report</title>'
            f'<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body><h1>acir restore report</h1>'
            f'<p class="counts">{counts}</p><table id="photos"><thead>{head}</thead>'
            f'<tbody data-sort="damage" data-dir="desc">{"".join(rows)}</tbody></table></body></html>')
