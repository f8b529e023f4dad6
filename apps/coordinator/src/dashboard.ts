/**
 * The dashboard page: one self-contained HTML document (inline CSS, inline script, inline SVG chart; no
 * CDN). It loads the socket.io client the coordinator itself serves from node_modules
 * (/socket.io/socket.io.min.js) and re-renders on every `snapshot` pushed on the /dashboard namespace.
 */
export const dashboardHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>fedcxr coordinator</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5rem; color: #1d2733; background: #f7f9fb; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; } h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
  table { border-collapse: collapse; background: #fff; } td, th { padding: .25rem .6rem; border-bottom: 1px solid #e3e8ee; text-align: left; }
  .online { color: #137333; } .offline { color: #a50e0e; } .muted { color: #5f6b7a; }
  #audit { max-height: 18rem; overflow: auto; font: 12px ui-monospace, monospace; background: #fff; padding: .5rem; }
  svg { background: #fff; border: 1px solid #e3e8ee; }
  .bar { height: .6rem; background: #e3e8ee; width: 16rem; display: inline-block; vertical-align: middle; }
  .bar > span { display: block; height: 100%; background: #1a73e8; }
</style>
</head>
<body>
<h1>fedcxr federated coordinator</h1>
<div class="muted">model round <span id="model-round">–</span> · <code id="model-hash">–</code> · <span id="conn">connecting…</span> · <form method="post" action="/logout" style="display:inline"><button type="submit">sign out</button></form></div>
<h2>Round</h2>
<div id="round">–</div>
<h2>Sites</h2>
<table id="sites"><thead><tr><th>site</th><th>status</th><th>last seen</th><th>examples</th><th>activity</th></tr></thead><tbody></tbody></table>
<h2>Metrics per round</h2>
<svg id="chart" width="640" height="240" viewBox="0 0 640 240" role="img" aria-label="metrics per round"></svg>
<div id="legend" class="muted"></div>
<h2>Audit log</h2>
<div id="audit"></div>
<script src="/socket.io/socket.io.min.js"></script>
<script>
(function () {
  var colors = ['#1a73e8', '#d93025', '#188038', '#f29900', '#9334e6', '#12b5cb'];
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
  function ago(ms) { if (!ms) return 'never'; var s = Math.round((Date.now() - ms) / 1000); return s < 60 ? s + ' s ago' : Math.round(s / 60) + ' min ago'; }
  function series(history) {
    var out = {};
    history.forEach(function (h) {
      if (h.outcome !== 'aggregated') return;
      Object.keys(h.train || {}).forEach(function (k) { (out['train ' + k] = out['train ' + k] || []).push([h.round, h.train[k]]); });
      Object.keys(h.validation || {}).forEach(function (k) { (out['val ' + k] = out['val ' + k] || []).push([h.round - 1, h.validation[k]]); });
    });
    return out;
  }
  function drawChart(history) {
    var svg = document.getElementById('chart'), ns = 'http://www.w3.org/2000/svg';
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var data = series(history), names = Object.keys(data).sort();
    var points = [].concat.apply([], names.map(function (n) { return data[n]; }));
    svg.setAttribute('data-points', String(points.length));
    var legend = document.getElementById('legend'); legend.textContent = '';
    if (points.length === 0) { var t = document.createElementNS(ns, 'text'); t.setAttribute('x', 20); t.setAttribute('y', 120); t.textContent = 'no aggregated round yet'; svg.appendChild(t); return; }
    var xs = points.map(function (p) { return p[0]; }), ys = points.map(function (p) { return p[1]; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs) || 1, y0 = Math.min(0, Math.min.apply(null, ys)), y1 = Math.max.apply(null, ys) || 1;
    var W = 640, H = 240, L = 40, R = 10, T = 10, B = 25;
    function px(x) { return L + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (W - L - R); }
    function py(y) { return H - B - (y1 === y0 ? 0.5 : (y - y0) / (y1 - y0)) * (H - T - B); }
    var axis = document.createElementNS(ns, 'path'); axis.setAttribute('d', 'M' + L + ' ' + T + 'V' + (H - B) + 'H' + (W - R)); axis.setAttribute('stroke', '#99a'); axis.setAttribute('fill', 'none'); svg.appendChild(axis);
    [[x0, H - 8, 'round ' + x0, L], [x1, H - 8, 'round ' + x1, W - R - 50]].forEach(function (a) { var t = document.createElementNS(ns, 'text'); t.setAttribute('x', a[3]); t.setAttribute('y', a[1]); t.setAttribute('font-size', '11'); t.textContent = a[2]; svg.appendChild(t); });
    [[y1, T + 10], [y0, H - B]].forEach(function (a) { var t = document.createElementNS(ns, 'text'); t.setAttribute('x', 2); t.setAttribute('y', a[1]); t.setAttribute('font-size', '11'); t.textContent = a[0].toPrecision(3); svg.appendChild(t); });
    names.forEach(function (name, i) {
      var pts = data[name], color = colors[i % colors.length];
      var path = document.createElementNS(ns, 'polyline');
      path.setAttribute('points', pts.map(function (p) { return px(p[0]) + ',' + py(p[1]); }).join(' '));
      path.setAttribute('fill', 'none'); path.setAttribute('stroke', color); path.setAttribute('stroke-width', '2'); path.setAttribute('class', 'series');
      svg.appendChild(path);
      var key = el('span', '■ ' + name + '  '); key.style.color = color; legend.appendChild(key);
    });
  }
  function render(s) {
    document.getElementById('model-round').textContent = s.modelRound;
    document.getElementById('model-hash').textContent = s.modelHash.slice(0, 16);
    var r = s.round, round = document.getElementById('round'); round.textContent = '';
    if (r.open) {
      round.appendChild(el('span', 'round ' + r.number + ' open: ' + r.accepted + ' of ' + r.participants + ' updates (quorum ' + r.quorum + ') '));
      var bar = el('span', undefined, 'bar'), fill = el('span'); fill.style.width = (r.participants ? 100 * r.accepted / r.participants : 0) + '%'; bar.appendChild(fill); round.appendChild(bar);
      if (r.deadline) round.appendChild(el('span', ' deadline in ' + Math.max(0, Math.round((r.deadline - Date.now()) / 1000)) + ' s', 'muted'));
    } else round.textContent = 'no round open; ' + s.history.filter(function (h) { return h.outcome === 'aggregated'; }).length + ' aggregated so far';
    var body = document.querySelector('#sites tbody'); body.textContent = '';
    s.sites.forEach(function (site) {
      var tr = el('tr'); tr.setAttribute('data-site', site.id);
      tr.appendChild(el('td', site.id));
      tr.appendChild(el('td', site.online ? 'online' : 'offline', site.online ? 'online' : 'offline'));
      tr.appendChild(el('td', ago(site.lastSeen)));
      tr.appendChild(el('td', String(site.examples)));
      tr.appendChild(el('td', site.state + (site.round ? ' (round ' + site.round + ')' : '')));
      body.appendChild(tr);
    });
    drawChart(s.history);
    var audit = document.getElementById('audit'); audit.textContent = '';
    s.audit.slice().reverse().forEach(function (e) {
      var extra = Object.keys(e).filter(function (k) { return ['seq', 'time', 'event', 'prev'].indexOf(k) < 0; }).map(function (k) { return k + '=' + (typeof e[k] === 'object' ? JSON.stringify(e[k]) : e[k]); }).join(' ');
      audit.appendChild(el('div', e.time.slice(11, 19) + ' ' + e.event + ' ' + extra));
    });
  }
  var socket = io('/dashboard', { transports: ['websocket'] });
  socket.on('connect', function () { document.getElementById('conn').textContent = 'live'; });
  socket.on('disconnect', function () { document.getElementById('conn').textContent = 'disconnected'; });
  socket.on('connect_error', function (err) { if (err && /sign in/.test(err.message)) window.location.href = '/login'; });
  socket.on('snapshot', render);
})();
</script>
</body>
</html>
`;
