/**
 * The node page's script and style sheet, served by the exporter itself (`/node-page.js`,
 * `/node-page.css`) so the page loads nothing from elsewhere and its Content-Security-Policy can
 * forbid inline script and style. They live in this module (not in files beside it) so the
 * compiled exporter carries them wherever dist/ goes.
 *
 * The script fetches `api/v1/node` every few seconds and rebuilds the table from it with
 * createElement and textContent only: no data ever passes through an HTML parser. Paths are
 * relative, so the page also works behind a path prefix (kubectl proxy, an ingress).
 */

export const NODE_PAGE_SCRIPT = String.raw`'use strict';
(function () {
  var REFRESH_MS = 2000;
  var GIB = 1073741824;
  var lastView = null;

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function add(parent, child) {
    parent.appendChild(child);
    return child;
  }
  function chip(text, kind, title) {
    var c = el('span', 'chip ' + kind, text);
    if (title) c.title = title;
    return c;
  }
  function percent(ratio) {
    var p = ratio * 100;
    return (p < 10 ? p.toFixed(1) : p.toFixed(0)) + ' %';
  }
  function gib(bytes) {
    return (bytes / GIB).toFixed(1);
  }
  function seconds(s) {
    if (s < 10) return s.toFixed(1) + ' s';
    if (s < 120) return s.toFixed(0) + ' s';
    return (s / 60).toFixed(0) + ' min';
  }
  /** 1 -> "1 GPU", 0.25 -> "1/4 GPU", 3/7 -> "3/7 GPU". */
  function share(s) {
    if (Math.abs(s - 1) < 1e-9) return '1 GPU';
    for (var d = 2; d <= 16; d++) {
      var n = Math.round(s * d);
      if (n > 0 && Math.abs(s * d - n) < 1e-6) return n + '/' + d + ' GPU';
    }
    return percent(s) + ' of the GPU';
  }
  function meter(value, max, low, high) {
    var m = el('meter');
    m.min = 0;
    m.max = max;
    if (low !== undefined) m.low = low;
    if (high !== undefined) m.high = high;
    m.optimum = 0;
    m.value = Math.min(value, max);
    return m;
  }
  function none(td, why) {
    td.classList.add('na');
    td.textContent = '\u2014';
    if (why) td.title = why;
    return td;
  }

  function utilizationCell(td, device, view) {
    td.className = 'util';
    if (device.utilization === null) return none(td, 'needs two samples of the busy-seconds counter (none on a MIG-enabled GPU: see its instances)');
    add(td, el('span', 'value', percent(device.utilization)));
    add(td, meter(device.utilization, 1));
    var w = device.utilizationWindowSeconds;
    add(td, el('span', 'window', w >= view.utilizationWindowSeconds * 0.9 ? 'last ' + seconds(view.utilizationWindowSeconds) : 'last ' + seconds(w)));
    return td;
  }
  function memoryCell(td, device) {
    td.className = 'memory';
    if (device.memoryUsedBytes === null || device.memoryTotalBytes === null) return none(td);
    add(td, el('span', 'value', gib(device.memoryUsedBytes) + ' / ' + gib(device.memoryTotalBytes) + ' GiB'));
    if (device.memoryTotalBytes > 0) add(td, meter(device.memoryUsedBytes, device.memoryTotalBytes, device.memoryTotalBytes * 0.9, device.memoryTotalBytes * 0.98));
    return td;
  }
  function holdersCell(td, device) {
    td.className = 'holders';
    if (device.holders.length === 0 && device.usage.length === 0) return none(td, 'no pod holds this device');
    var list = add(td, el('ul'));
    // one line per container: the replicas it holds of a shared GPU, their shares summed
    var groups = [];
    device.holders.forEach(function (h) {
      var g = groups.filter(function (x) {
        return x.namespace === h.namespace && x.pod === h.pod && x.container === h.container;
      })[0];
      if (!g) {
        g = { namespace: h.namespace, pod: h.pod, container: h.container, replicas: [], share: null, idle: false, claims: [] };
        groups.push(g);
      }
      if (h.replica !== null) g.replicas.push(h.replica);
      if (h.share !== null) g.share = (g.share || 0) + h.share;
      if (h.idle) g.idle = true;
      if (h.draClaim !== null && g.claims.indexOf(h.draClaim) < 0) g.claims.push(h.draClaim);
    });
    groups.forEach(function (h) {
      var li = add(list, el('li', 'holder'));
      li.dataset.pod = h.namespace + '/' + h.pod;
      add(li, el('span', 'pod', h.namespace + '/' + h.pod));
      add(li, el('span', 'container', h.container));
      if (h.replicas.length) add(li, el('span', 'replica', (h.replicas.length === 1 ? 'replica ' : 'replicas ') + h.replicas.join(', ')));
      if (h.share !== null) add(li, el('span', 'share', share(h.share)));
      if (h.claims.length) add(li, el('span', 'claim', 'claim ' + h.claims.join(', ')));
      var used = device.usage.filter(function (u) {
        return u.namespace === h.namespace && u.pod === h.pod && u.container === h.container;
      })[0];
      if (used && used.memoryUsedBytes !== null) add(li, el('span', 'used', 'uses ' + gib(used.memoryUsedBytes) + ' GiB'));
      if (h.idle) add(li, chip('idle', 'warn', 'allocated, and below ' + percent(lastView.idleUtilizationRatio) + ' utilization over the window'));
    });
    device.usage.forEach(function (u) {
      if (u.pod !== null) return;
      var li = add(list, el('li', 'outside'));
      add(li, el('span', 'pod', u.processes + (u.processes === 1 ? ' process' : ' processes') + ' outside any pod'));
      if (u.memoryUsedBytes !== null) add(li, el('span', 'used', 'uses ' + gib(u.memoryUsedBytes) + ' GiB'));
    });
    return td;
  }
  function healthCell(td, gpu) {
    td.className = 'health';
    if (!gpu.answering) add(td, chip('not answering', 'bad', gpu.error));
    if (!gpu.answering && gpu.error) add(td, el('span', 'error', gpu.error));
    var h = gpu.health;
    if (h.lastXid) add(td, chip('Xid ' + h.lastXid.xid + ': ' + h.lastXid.message, 'bad', h.xidEvents + ' Xid events since the exporter started; last at ' + new Date(h.lastXid.atMs).toLocaleString()));
    var dbe = Math.max(h.doubleBitEcc.volatile || 0, h.doubleBitEcc.events);
    if (dbe > 0) add(td, chip(dbe + ' double-bit ECC', 'bad', 'uncorrectable ECC errors since the driver loaded (volatile), or events since the exporter started'));
    if (h.rowRemapFailure) add(td, chip('row remap failed', 'bad', 'no spare row left: replace the GPU'));
    if (h.rowRemapPending) add(td, chip('row remap pending', 'warn', 'drain and reset the GPU'));
    if (h.retiredPagesPending) add(td, chip('retired pages pending', 'warn', 'drain and reset the GPU'));
    if (td.childNodes.length === 0) add(td, chip('ok', 'ok'));
    return td;
  }

  function gpuRow(gpu, view) {
    var tr = el('tr', gpu.answering ? 'gpu' : 'gpu lost');
    tr.dataset.gpu = String(gpu.index);
    if (gpu.uuid) tr.dataset.uuid = gpu.uuid;
    var dev = add(tr, el('td', 'device'));
    add(dev, el('span', 'name', 'GPU ' + gpu.index));
    if (gpu.uuid) add(dev, el('span', 'uuid', gpu.uuid));
    var model = add(tr, el('td', 'model'));
    if (gpu.model === null) none(model, 'never answered');
    else add(model, el('span', 'model-name', gpu.model));
    if (gpu.pciBusId) add(model, el('span', 'bus', gpu.pciBusId));
    if (!gpu.answering) {
      ['util', 'memory', 'temp', 'power', 'clocks'].forEach(function (c) {
        none(add(tr, el('td', c)), 'not answering');
      });
    } else {
      utilizationCell(add(tr, el('td')), gpu, view);
      memoryCell(add(tr, el('td')), gpu);
      var temp = add(tr, el('td', 'temp'));
      if (gpu.temperatureCelsius === null) none(temp);
      else temp.textContent = gpu.temperatureCelsius.toFixed(0) + ' \u00b0C';
      var power = add(tr, el('td', 'power'));
      if (gpu.powerWatts === null) none(power);
      else {
        add(power, el('span', 'value', gpu.powerWatts.toFixed(0) + (gpu.powerLimitWatts === null ? '' : ' / ' + gpu.powerLimitWatts.toFixed(0)) + ' W'));
        if (gpu.powerLimitWatts) add(power, meter(gpu.powerWatts, gpu.powerLimitWatts, gpu.powerLimitWatts * 0.95, gpu.powerLimitWatts * 0.99));
      }
      var clocks = add(tr, el('td', 'clocks'));
      if (gpu.throttleReasons.length === 0) none(clocks, 'no reason holds the clocks down');
      gpu.throttleReasons.forEach(function (r) {
        add(clocks, chip(r.reason, r.kind === 'harmless' ? 'muted' : r.kind === 'protection' ? 'bad' : 'warn', r.kind));
      });
    }
    holdersCell(add(tr, el('td')), gpu);
    healthCell(add(tr, el('td')), gpu);
    return tr;
  }

  function migRow(gpu, mig, view) {
    var tr = el('tr', 'mig');
    tr.dataset.gpu = String(gpu.index);
    tr.dataset.mig = String(mig.gpuInstanceId);
    tr.dataset.uuid = mig.uuid;
    var dev = add(tr, el('td', 'device'));
    add(dev, el('span', 'name', 'GPU ' + gpu.index + ' \u00b7 MIG GI ' + mig.gpuInstanceId + (mig.computeInstanceId ? ' CI ' + mig.computeInstanceId : '')));
    add(dev, el('span', 'uuid', mig.uuid));
    add(add(tr, el('td', 'model')), el('span', 'model-name', mig.profile));
    utilizationCell(add(tr, el('td')), mig, view);
    memoryCell(add(tr, el('td')), mig);
    ['temp', 'power', 'clocks'].forEach(function (c) {
      none(add(tr, el('td', c)), 'per GPU: see GPU ' + gpu.index);
    });
    holdersCell(add(tr, el('td')), mig);
    none(add(tr, el('td', 'health')), 'per GPU: see GPU ' + gpu.index);
    return tr;
  }

  function statusLine(view) {
    var p = document.getElementById('status');
    var items = [];
    items.push(view.ready.ok ? chip('ready', 'ok') : chip('not ready: ' + view.ready.reason, 'bad'));
    items.push(view.exporter.nvmlUp ? chip('NVML up', 'ok') : chip('NVML down', 'bad'));
    var k = view.exporter.kubelet;
    if (k === null) items.push(chip('kubelet: attribution off', 'muted'));
    else if (k.up) items.push(chip('kubelet up \u00b7 ' + k.pods + (k.pods === 1 ? ' pod' : ' pods'), 'ok'));
    else items.push(chip('kubelet down', 'bad', k.lastSuccessMs ? 'last answered ' + new Date(k.lastSuccessMs).toLocaleString() + '; pods as of then' : 'never answered'));
    if (view.exporter.eventWatchUp === false) items.push(chip('event watch down', 'warn'));
    if (view.exporter.enumerationError) items.push(chip('enumeration failed: ' + view.exporter.enumerationError, 'bad'));
    if (view.exporter.gpusNotAnswering > 0) items.push(chip(view.exporter.gpusNotAnswering + (view.exporter.gpusNotAnswering === 1 ? ' GPU' : ' GPUs') + ' not answering', 'bad'));
    if (view.exporter.collectorsFailing.length === 0) items.push(chip('collectors ok', 'ok'));
    view.exporter.collectorsFailing.forEach(function (c) {
      items.push(chip('collector ' + c.name + ' failing', 'bad', c.error || ''));
    });
    if (view.sample) {
      var stale = view.sample.ageSeconds > Math.max(3 * view.sample.intervalSeconds, 5);
      var age = chip('sample ' + seconds(view.sample.ageSeconds) + ' old', stale ? 'bad' : 'ok', 'taken ' + new Date(view.sample.takenAtMs).toLocaleString() + ', every ' + seconds(view.sample.intervalSeconds));
      age.id = 'sample-age';
      items.push(age);
    } else items.push(chip('no sample yet', 'warn'));
    p.replaceChildren.apply(p, items);
  }

  function render(view) {
    lastView = view;
    document.title = view.node + ' \u00b7 kube-gpu-exporter';
    document.getElementById('node').textContent = view.node;
    var about = 'kube-gpu-exporter ' + view.version + (view.sample ? ' \u00b7 driver ' + view.sample.driverVersion : '');
    document.getElementById('about').textContent = about;
    statusLine(view);
    var rows = [];
    view.gpus.forEach(function (g) {
      rows.push(gpuRow(g, view));
      g.mig.forEach(function (m) {
        rows.push(migRow(g, m, view));
      });
    });
    var body = document.getElementById('devices-body');
    body.replaceChildren.apply(body, rows);
    document.getElementById('devices').hidden = false;
    var empty = document.getElementById('empty');
    empty.hidden = view.gpus.length > 0;
    empty.textContent = view.sample ? 'NVML lists no GPU on this node.' : 'No sample yet.';
  }

  function connection(ok, text) {
    var c = document.getElementById('connection');
    c.className = ok ? 'connection ok' : 'connection bad';
    c.textContent = text;
  }

  function poll() {
    fetch('api/v1/node', { cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (view) {
        render(view);
        connection(true, 'updated ' + new Date().toLocaleTimeString() + ', every ' + REFRESH_MS / 1000 + ' s');
      })
      .catch(function (err) {
        connection(false, 'cannot update: ' + (err && err.message ? err.message : String(err)) + (lastView ? '; showing the last view' : ''));
      })
      .then(function () {
        setTimeout(poll, REFRESH_MS);
      });
  }

  document.addEventListener('DOMContentLoaded', poll);
})();
`;

export const NODE_PAGE_CSS = String.raw`:root {
  color-scheme: light dark;
  --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #6e7781;
  --line: #d0d7de; --lost: #ffebe9; --mig: #f6f8fa;
}
@media (prefers-color-scheme: dark) {
  :root { --ok: #3fb950; --warn: #d29922; --bad: #f85149; --muted: #8b949e; --line: #30363d; --lost: #3a1d1d; --mig: #161b22; }
}
* { box-sizing: border-box; }
body { margin: 0; padding: 1rem 1.5rem; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.25rem 1rem; margin-bottom: 0.75rem; }
h1 { font-size: 1.3rem; margin: 0; }
#about, nav, .connection { color: var(--muted); font-size: 0.85rem; }
nav a { color: inherit; }
.connection.bad { color: var(--bad); font-weight: 600; }
#status { display: flex; flex-wrap: wrap; gap: 0.35rem; margin: 0 0 0.75rem; width: 100%; }
.chip { display: inline-block; padding: 0 0.5em; border: 1px solid currentColor; border-radius: 1em; font-size: 0.8rem; white-space: nowrap; margin: 0.1em 0.2em 0.1em 0; }
.chip.ok { color: var(--ok); } .chip.warn { color: var(--warn); } .chip.bad { color: var(--bad); } .chip.muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.35rem 0.6rem; border-bottom: 1px solid var(--line); }
th { position: sticky; top: 0; background: Canvas; font-weight: 600; white-space: nowrap; }
tr.mig td { background: var(--mig); }
tr.mig td.device { padding-left: 1.6rem; }
tr.lost td { background: var(--lost); }
td.device .name { font-weight: 600; display: block; white-space: nowrap; }
.uuid, .bus { display: block; color: var(--muted); font: 0.72rem ui-monospace, SFMono-Regular, Menlo, monospace; }
td.na { color: var(--muted); }
td.util, td.memory, td.power, td.temp { white-space: nowrap; }
meter { display: block; width: 8rem; height: 0.6rem; }
.window { display: block; color: var(--muted); font-size: 0.75rem; }
td.holders ul { list-style: none; margin: 0; padding: 0; }
td.holders li { margin-bottom: 0.2rem; }
td.holders li > span { margin-right: 0.5em; white-space: nowrap; }
.pod { font-weight: 600; }
.container, .replica, .share, .claim, .used { color: var(--muted); }
.error { display: block; color: var(--bad); font-size: 0.8rem; }
#empty { color: var(--muted); }
`;
