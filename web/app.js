// The page of `ustcp demo --web`: asks the ustcp process to run a scenario
// (/api/run, the same JSON as `ustcp demo --json`) and draws it as a table,
// one row per event. Click a segment to lose it and run again; step through the
// events with each side's state and the seeds' term for the segment. No
// libraries, no build step.
'use strict';

const UI = {
  en: { scenario: 'scenario', connection: 'connection', loss: 'loss', delay: 'delay (ms)', seed: 'seed', run: 'Run',
        drops: 'dropped segments (click a segment to lose it):', clear: 'clear', all: 'all',
        pcap: 'download pcap', svg: 'download SVG', none: 'none', step: 'event',
        of: 'of', flood: 'more flood segments not drawn', running: 'running…' },
  zh: { scenario: '场景', connection: '连接', loss: '丢包率', delay: '延迟 (毫秒)', seed: '随机种子', run: '运行',
        drops: '丢弃的报文段 (点击一个报文段使其丢失):', clear: '清除', all: '全部',
        pcap: '下载 pcap', svg: '下载 SVG', none: '无', step: '事件',
        of: '/', flood: '个洪泛报文段未画出', running: '运行中…' },
};

const st = { lang: 'en', drops: [], data: null, rows: [], step: -1 };
const $ = (id) => document.getElementById(id);
const t = (k) => UI[st.lang][k];

function query() {
  const q = new URLSearchParams();
  q.set('scenario', $('scenario').value || 'normal');
  q.set('lang', st.lang);
  q.set('loss', $('loss').value || '0');
  q.set('delay', $('delay').value || '5');
  q.set('seed', $('seed').value || '1');
  for (const d of st.drops) q.append('drop', d);
  return q.toString();
}

function translate() {
  document.documentElement.lang = st.lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  if (st.trace) $('pick').textContent = t('connection');
  $('lang-en').classList.toggle('on', st.lang === 'en');
  $('lang-zh').classList.toggle('on', st.lang === 'zh');
}

function td(cls, text, span) {
  const c = document.createElement('td');
  if (cls) c.className = cls;
  if (text !== undefined) c.textContent = text;
  if (span) c.colSpan = span;
  return c;
}

function stateBox(s) {
  const b = document.createElement('span');
  b.className = 'stbox';
  b.textContent = s;
  return b;
}

// One table row per event; a run of undrawn flood segments is one row.
function render() {
  const d = st.data;
  const tb = $('diagram').tBodies[0];
  tb.textContent = '';
  st.rows = [];
  $('about').textContent = d.about || (st.trace ? $('scenario').selectedOptions[0].textContent : '');
  $('cname').textContent = d.columns[0];
  $('sname').textContent = d.columns[1];
  const named = d.connections.filter((c) => !c.flood);
  const floods = d.connections.filter((c) => c.flood);
  let head = named.length > 1 || floods.length ?
    named.map((c) => c.name + '  ' + c.client + ' <-> ' + c.server).join('\n') : '';
  if (floods.length) head += '\n' + floods[0].name + '-' + floods[floods.length - 1].name + '  ' +
    floods.length + (st.lang === 'zh' ? ' 个伪造源地址的连接 (洪泛)' : ' connections from spoofed addresses (the flood)');
  $('conns').textContent = head;
  const shown = {};   // conn -> [left, right] last drawn states
  let hidden = 0;
  const flush = () => {
    if (!hidden) return;
    const tr = document.createElement('tr');
    tr.className = 'note flood';
    tr.append(td('t', ''), td('c', 'f..'), td('text', '… ' + hidden + ' ' + t('flood'), 4));
    tb.append(tr);
    st.rows.push({ tr, ev: null });
    hidden = 0;
  };
  d.events.forEach((ev, i) => {
    if (ev.hidden) { hidden++; return; }
    if (!(ev.conn && ev.conn[0] === 'f')) flush();
    const tr = document.createElement('tr');
    tr.className = ev.kind + ' s' + ev.side;
    tr.dataset.i = i;
    tr.append(td('t', (ev.t_us / 1e6).toFixed(3)), td('c', ev.conn || ''));
    const sh = shown[ev.conn || ''] || (shown[ev.conn || ''] = [null, null]);
    if (ev.kind === 'segment') {
      const cells = [td('st l'), td('arrow'), td('st r'), td('label', ev.label)];
      for (const k of [0, 1]) {
        const s = ev['state' + k];
        if (s && s !== sh[k]) { cells[k === 0 ? 0 : 2].append(stateBox(s)); sh[k] = s; }
      }
      const lost = ev.lost ? ' ✗' : '';
      cells[1].textContent = ev.side === 0 ? '── ' + ev.text + (ev.lost ? ' ──✗' : ' ──▶')
                                           : (ev.lost ? '✗── ' : '◀── ') + ev.text + ' ──';
      if (ev.lost) tr.classList.add('lost');
      tr.title = ev.drop ? 'click: lose this segment (--drop ' + ev.drop + ')' + lost : '';
      if (ev.drop) tr.addEventListener('click', () => dropSegment(ev.drop));
      tr.append(...cells);
    } else if (ev.kind === 'state') {
      sh[ev.side] = ev.to;
      const l = td('st l'), r = td('st r');
      (ev.side === 0 ? l : r).append(stateBox(ev.to));
      tr.append(l, td('arrow'), r, td('label'));
    } else if (ev.kind === 'call') {
      if (ev.side === 0) tr.append(td('text', ev.text, 2), td('st'), td('label'));
      else tr.append(td('st'), td('arrow'), td('text', ev.text, 2));
    } else {
      tr.append(td('text', '# ' + ev.text, 4));
    }
    tb.append(tr);
    st.rows.push({ tr, ev });
  });
  flush();
  drawTsg();
  st.step = -1;
  showStep();
  $('dl-pcap').href = '/api/pcap?' + query();
  $('dl-svg').href = '/api/svg?' + query();
  const drops = $('drops');
  drops.textContent = st.drops.length ? '' : t('none');
  st.drops.forEach((dspec, k) => {
    const c = document.createElement('span');
    c.className = 'chip';
    c.textContent = dspec + ' ×';
    c.title = 'remove';
    c.addEventListener('click', () => { st.drops.splice(k, 1); run(); });
    drops.append(c);
  });
}

// The time-sequence graph of the main data sender (as Wireshark's tcptrace
// graph): each data segment a vertical bar from seq to seq+len at its send time
// (red: retransmission, a cross: lost), the receiver's ACKs as a line and
// ACK + window (the right edge the sender may fill) as a second one.
function drawTsg() {
  const box = $('tsg');
  box.textContent = '';
  const segs = st.data.events.filter((e) => e.kind === 'segment' && e.conn && e.conn[0] === 'c');
  const bytes = [0, 0];
  for (const e of segs) bytes[e.side] += e.len;
  const s = bytes[1] > bytes[0] ? 1 : 0;
  const conn = (segs.find((e) => e.side === s && e.len > 0) || {}).conn;
  if (!conn || bytes[s] < 2000) return;   // only for a real transfer
  const data = segs.filter((e) => e.conn === conn && e.side === s && e.len > 0);
  const acks = segs.filter((e) => e.conn === conn && e.side !== s && e.flags.includes('.') && !e.lost);
  const t0 = Math.min(...data.map((e) => e.t_us)), t1 = Math.max(...data.concat(acks).map((e) => e.arrive_us || e.t_us));
  // the window line may run far above the data: the scale follows the data
  // (and ACKs), the window line is clipped at the top
  const dmax = Math.max(...data.map((e) => e.seq + e.len), ...acks.map((e) => e.ack));
  const smin = Math.min(...data.map((e) => e.seq));
  const smax = dmax + Math.max(1, Math.round((dmax - smin) * 0.25));
  const W = 900, H = 360, L = 70, B = 30;
  const x = (us) => L + (W - L - 10) * (us - t0) / Math.max(1, t1 - t0);
  const y = (sq) => H - B - (H - B - 10) * (sq - smin) / Math.max(1, smax - smin);
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('width', W); svg.setAttribute('height', H);
  const add = (tag, attrs) => { const el = document.createElementNS(NS, tag); for (const k in attrs) el.setAttribute(k, attrs[k]); svg.append(el); return el; };
  add('line', { x1: L, y1: H - B, x2: W - 10, y2: H - B, stroke: '#888' });
  add('line', { x1: L, y1: 10, x2: L, y2: H - B, stroke: '#888' });
  const lab = (xx, yy, txt, anchor) => { const el = add('text', { x: xx, y: yy, 'font-size': 11, 'text-anchor': anchor || 'start', fill: '#555' }); el.textContent = txt; };
  lab(L, H - 8, (t0 / 1e6).toFixed(3) + ' s');
  lab(W - 10, H - 8, (t1 / 1e6).toFixed(3) + ' s', 'end');
  lab(L - 4, y(smin) + 4, String(smin), 'end');
  lab(L - 4, y(smax) + 4, String(smax), 'end');
  let pa = '', pw = '';
  for (const a of acks) {
    const xa = x(a.arrive_us || a.t_us);
    pa += (pa ? ' L' : 'M') + xa.toFixed(1) + ',' + y(a.ack).toFixed(1);
    pw += (pw ? ' L' : 'M') + xa.toFixed(1) + ',' + y(Math.min(smax, a.ack + a.win)).toFixed(1);
  }
  if (pa) add('path', { d: pa, fill: 'none', stroke: '#2e7d32', 'stroke-width': 1.5, class: 'ackline' });
  if (pw) add('path', { d: pw, fill: 'none', stroke: '#b07000', 'stroke-dasharray': '4 3', class: 'winline' });
  for (const e of data) {
    const retr = /retransmission|重传/.test(e.label);
    const xx = x(e.t_us);
    add('line', { x1: xx, y1: y(e.seq), x2: xx, y2: y(e.seq + e.len), stroke: retr ? '#c00' : '#0060b0',
                  'stroke-width': 3, class: 'dataseg' + (retr ? ' retrans' : '') + (e.lost ? ' lost' : '') });
    if (e.lost) add('path', { d: `M${xx - 4},${y(e.seq + e.len / 2) - 4} l8,8 m0,-8 l-8,8`, stroke: '#c00', 'stroke-width': 2 });
  }
  const h = document.createElement('h2');
  h.textContent = (st.lang === 'zh' ? '时间-序号图 ' : 'time-sequence graph ') + conn + ' (' + st.data.columns[s] + ')' +
    (st.lang === 'zh' ? ': 蓝 = 数据, 红 = 重传, × = 丢失, 绿 = ACK, 虚线 = ACK + 窗口'
                      : ': blue = data, red = retransmission, × = lost, green = ACK, dashed = ACK + window');
  box.append(h, svg);
}

// Each side's state as of row n (for the row's connection), the term for it.
function showStep() {
  const n = st.step < 0 ? st.rows.length - 1 : st.step;
  st.rows.forEach((r, k) => {
    r.tr.classList.toggle('future', st.step >= 0 && k > n);
    r.tr.classList.toggle('current', st.step >= 0 && k === n);
  });
  const cur = st.rows[n] && st.rows[n].ev;
  const conn = cur ? cur.conn || '' : '';
  const states = [null, null], prev = [null, null];
  for (let k = 0; k <= n; k++) {
    const ev = st.rows[k].ev;
    if (!ev || (ev.conn || '') !== conn) continue;
    const now = [ev.state0, ev.state1];
    if (ev.kind === 'state') now[ev.side] = ev.to;
    for (const s of [0, 1]) if (now[s]) { prev[s] = states[s]; states[s] = now[s]; }
  }
  for (const [s, id] of [[0, 'cstate'], [1, 'sstate']]) {
    $(id).textContent = states[s] || '—';
    $(id).classList.toggle('changed', !!cur && st.step >= 0 && states[s] !== prev[s] &&
                           (cur.kind === 'segment' || (cur.kind === 'state' && cur.side === s)));
  }
  $('term').textContent = !cur ? '' : cur.kind === 'segment' ? (conn ? conn + ': ' : '') + (cur.label || cur.text)
                                   : cur.text || cur.to || '';
  $('stepinfo').textContent = st.step < 0 ? '' : t('step') + ' ' + (n + 1) + ' ' + t('of') + ' ' + st.rows.length;
}

function step(delta) {
  if (!st.rows.length) return;
  if (st.step < 0) st.step = delta > 0 ? 0 : st.rows.length - 1;
  else st.step = Math.max(0, Math.min(st.rows.length - 1, st.step + delta));
  showStep();
  st.rows[st.step].tr.scrollIntoView({ block: 'nearest' });
}

function dropSegment(spec) {
  if (!st.drops.includes(spec)) st.drops.push(spec);
  return run();
}

async function run() {
  $('error').textContent = t('running');
  const p = (async () => {
    const r = await fetch('/api/run?' + query());
    if (!r.ok) { $('error').textContent = await r.text(); return; }
    st.data = await r.json();
    $('error').textContent = '';
    render();
  })();
  window.lastRun = p;
  return p;
}

async function init() {
  const r = await fetch('/api/scenarios');
  const list = await r.json();
  // `ustcp trace FILE --web`: the capture's connections instead of scenarios
  st.trace = list.length > 0 && !!list[0].trace;
  document.body.classList.toggle('trace', st.trace);
  for (const s of list) {
    const o = document.createElement('option');
    o.value = s.name;
    o.textContent = st.trace ? s.name + '  ' + s.about : s.name;
    o.title = s.about;
    $('scenario').append(o);
  }
  $('controls').addEventListener('submit', (e) => { e.preventDefault(); st.drops = []; run(); });
  $('scenario').addEventListener('change', () => { st.drops = []; run(); });
  $('cleardrops').addEventListener('click', () => { st.drops = []; run(); });
  $('lang-en').addEventListener('click', () => { st.lang = 'en'; translate(); run(); });
  $('lang-zh').addEventListener('click', () => { st.lang = 'zh'; translate(); run(); });
  $('prev').addEventListener('click', () => step(-1));
  $('next').addEventListener('click', () => step(1));
  $('all').addEventListener('click', () => { st.step = -1; showStep(); });
  document.addEventListener('keydown', (e) => {
    if (e.target.tagName === 'INPUT' || e.target.tagName === 'SELECT') return;
    if (e.key === 'ArrowRight' || e.key === 'j') step(1);
    if (e.key === 'ArrowLeft' || e.key === 'k') step(-1);
  });
  const params = new URLSearchParams(location.search);
  // a link can name a run: ?scenario=lost-fin1&drop=client:fin%231&lang=zh&step=5
  if (params.get('scenario')) $('scenario').value = params.get('scenario');
  if (params.get('lang') === 'zh') st.lang = 'zh';
  for (const k of ['loss', 'delay', 'seed']) if (params.get(k)) $(k).value = params.get(k);
  st.drops = params.getAll('drop');
  translate();
  await run();
  if (params.get('step') && st.rows.length) {
    st.step = Math.min(st.rows.length - 1, Math.max(0, (parseInt(params.get('step'), 10) || 1) - 1));
    showStep();
  }
  if (params.get('selftest') === '1') await selftest();
}

// ?selftest=1: drives the page through its own controls (real click events)
// and writes what it found into #selftest (tests/sh/demo_web.sh reads it).
async function selftest() {
  const out = [];
  let fail = 0;
  const check = (ok, what) => { out.push((ok ? 'PASS ' : 'FAIL ') + what); if (!ok) fail++; };
  const segRows = () => st.rows.filter((r) => r.ev && r.ev.kind === 'segment');
  const labels = () => segRows().map((r) => r.ev.label).join('|');
  const runVia = async (fn) => { fn(); await window.lastRun; };

  $('scenario').value = 'normal';
  await runVia(() => $('run').click());
  check(segRows().length === 11, 'normal: 11 segments drawn (' + segRows().length + ')');
  check(/first handshake/.test(labels()) && /fourth wave/.test(labels()), 'normal: handshake and waves labelled');

  $('scenario').value = 'backlog-full';
  await runVia(() => $('scenario').dispatchEvent(new Event('change')));
  check(st.data.scenario === 'backlog-full', 'second scenario: backlog-full ran');
  check(/c5 /.test($('conns').textContent), 'backlog-full: the header lists c1..c5');
  check(segRows().some((r) => r.ev.conn === 'c4' && r.ev.flags === '.' && r.ev.state1 === 'SYN_RCVD'),
        'backlog-full: c4\'s third handshake leaves the server in SYN_RCVD');

  $('scenario').value = 'data-loss';
  await runVia(() => $('scenario').dispatchEvent(new Event('change')));
  const nData = st.data.events.filter((e) => e.kind === 'segment' && e.side === 0 && e.len > 0).length;
  check(document.querySelectorAll('#tsg .dataseg').length === nData && nData >= 10,
        'data-loss: the time-sequence graph draws every data segment (' + nData + ')');
  check(document.querySelectorAll('#tsg .dataseg.retrans').length === 2 && document.querySelectorAll('#tsg .dataseg.lost').length === 2 &&
        document.querySelector('#tsg .ackline') && document.querySelector('#tsg .winline'),
        'data-loss: two retransmissions and two losses in red, the ACK and window lines');

  $('scenario').value = 'normal';
  await runVia(() => $('scenario').dispatchEvent(new Event('change')));
  check(!document.querySelector('#tsg svg'), 'normal: no graph for a few bytes');
  const fin = segRows().find((r) => /first wave/.test(r.ev.label));
  check(!!fin, 'normal: a first-wave row to click');
  if (fin) await runVia(() => fin.tr.dispatchEvent(new MouseEvent('click', { bubbles: true })));
  check(st.drops.length === 1 && st.drops[0] === 'client:fin#1', 'click on the first wave drops client:fin#1 (' + st.drops + ')');
  const finRows = segRows().filter((r) => /first wave/.test(r.ev.label));
  check(finRows.length >= 2 && finRows[0].ev.lost, 'after the click: the first FIN is LOST');
  check(finRows.length >= 2 && /retransmission/.test(finRows[1].ev.label) && !finRows[1].ev.lost,
        'after the click: the FIN is retransmitted and arrives');
  check(document.querySelectorAll('#drops .chip').length === 1, 'the dropped segment is listed');

  await runVia(() => $('lang-zh').click());
  check(/第一次握手/.test(labels()) && $('run').textContent === '运行', 'zh: seed terms and controls in Chinese');
  check(st.drops[0] === 'client:fin#1' && segRows().some((r) => r.ev.lost), 'zh: the drop is kept');

  $('next').click(); $('next').click();
  check(st.step === 1 && document.querySelectorAll('#diagram tr.future').length === st.rows.length - 2,
        'stepping: two events shown, the rest dimmed');
  for (let k = 0; k < 5; k++) $('next').click();
  check($('cstate').textContent !== '—' && $('sstate').textContent !== '—', 'stepping: both states shown (' +
        $('cstate').textContent + ', ' + $('sstate').textContent + ')');
  check(/握手|挥手|数据|listen|connect/.test($('term').textContent), 'stepping: the term for the event (' + $('term').textContent + ')');
  check(/\/api\/pcap\?.*drop=client%3Afin%231/.test($('dl-pcap').href) && /\/api\/svg\?/.test($('dl-svg').href),
        'download links carry the run');
  out.push('SELFTEST DONE ' + (out.length - fail) + ' passed, ' + fail + ' failed');
  $('selftest').textContent = out.join('\n');
}

init().catch((e) => { $('error').textContent = String(e); $('selftest').textContent = 'SELFTEST DONE 0 passed, 1 failed: ' + e; });
