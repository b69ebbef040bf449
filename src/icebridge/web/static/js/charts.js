// Small charts drawn as inline SVG; every label is a text node. Each chart is a <figure> whose <svg>
// has role="img" and a title, and whose caption says in words what the picture shows.

import { h, s } from './dom.js';

const PHASE_COLOURS = {
  scaffold: '#5b3cc4',
  copy: '#0b5cad',
  validate: '#9a5b00',
  cutover: '#1f6f43',
  rollback: '#8a1c4a',
};
let serial = 0;

function figure(title, caption, width, height, body) {
  serial += 1;
  const id = `chart-${serial}`;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': id, class: 'chart' });
  svg.append(s('title', { id, text: title }), ...body);
  return h('figure', { class: 'figure' }, svg, h('figcaption', { text: caption }));
}

export function lineChart(points, { title, caption, format = String, width = 560, height = 180 }) {
  const left = 64;
  const bottom = 24;
  const plotW = width - left - 12;
  const plotH = height - bottom - 12;
  const maxX = Math.max(1, ...points.map((p) => p.x));
  const maxY = Math.max(1, ...points.map((p) => p.y));
  const x = (v) => left + (v / maxX) * plotW;
  const y = (v) => 12 + plotH - (v / maxY) * plotH;
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ');
  const body = [
    s('line', { x1: left, y1: 12 + plotH, x2: left + plotW, y2: 12 + plotH, class: 'axis' }),
    s('line', { x1: left, y1: 12, x2: left, y2: 12 + plotH, class: 'axis' }),
    s('text', { x: left - 6, y: 18, 'text-anchor': 'end', class: 'tick', text: format(maxY) }),
    s('text', { x: left - 6, y: 12 + plotH, 'text-anchor': 'end', class: 'tick', text: format(0) }),
    s('text', { x: left + plotW, y: height - 6, 'text-anchor': 'end', class: 'tick', text: `${Math.round(maxX)} s` }),
  ];
  if (points.length > 1) body.push(s('path', { d: path, class: 'line' }));
  return figure(title, caption, width, height, body);
}

export function barChart(items, { title, caption, format = String, width = 560 }) {
  const rowH = 22;
  const labelW = 220;
  const height = Math.max(1, items.length) * rowH + 8;
  const max = Math.max(1, ...items.map((i) => i.value));
  const body = items.map((item, index) => {
    const y = 4 + index * rowH;
    const w = Math.max(1, (item.value / max) * (width - labelW - 90));
    return s(
      'g',
      {},
      s('text', { x: labelW - 8, y: y + 15, 'text-anchor': 'end', class: 'label', text: shorten(item.label, 34) }),
      s('rect', { x: labelW, y: y + 3, width: w.toFixed(1), height: rowH - 8, class: item.cls || 'bar' }),
      s('text', { x: labelW + w + 6, y: y + 15, class: 'tick', text: format(item.value) }),
    );
  });
  return figure(title, caption, width, height, body);
}

export function timeline(rows, { title, caption, width = 560 }) {
  const rowH = 24;
  const labelW = 220;
  const height = Math.max(1, rows.length) * rowH + 40;
  const start = Math.min(...rows.flatMap((r) => r.segments.map((g) => g.start)), Date.now());
  const end = Math.max(...rows.flatMap((r) => r.segments.map((g) => g.end)), start + 1);
  const scale = (width - labelW - 12) / (end - start);
  const body = [];
  rows.forEach((row, index) => {
    const y = 4 + index * rowH;
    body.push(s('text', { x: labelW - 8, y: y + 15, 'text-anchor': 'end', class: 'label', text: shorten(row.label, 34) }));
    for (const seg of row.segments) {
      const rect = s('rect', {
        x: (labelW + (seg.start - start) * scale).toFixed(1),
        y: y + 3,
        width: Math.max(2, (seg.end - seg.start) * scale).toFixed(1),
        height: rowH - 8,
        fill: PHASE_COLOURS[seg.phase] || '#555',
      });
      rect.append(s('title', { text: `${row.label}: ${seg.phase} ${((seg.end - seg.start) / 1000).toFixed(1)} s` }));
      body.push(rect);
    }
  });
  const legendY = height - 8;
  Object.entries(PHASE_COLOURS).forEach(([phase, colour], i) => {
    body.push(s('rect', { x: 8 + i * 76, y: legendY - 10, width: 10, height: 10, fill: colour }));
    body.push(s('text', { x: 8 + i * 76 + 14, y: legendY, class: 'tick', text: phase }));
  });
  body.push(s('text', { x: width - 12, y: legendY - 14, 'text-anchor': 'end', class: 'tick', text: `${((end - start) / 1000).toFixed(1)} s` }));
  return figure(title, caption, width, height, body);
}

export function passFail(passed, failed, { title, caption }) {
  const total = passed + failed;
  const r = 42;
  const c = 2 * Math.PI * r;
  const share = total ? passed / total : 0;
  const body = [
    s('circle', { cx: 60, cy: 60, r, class: total ? 'ring-fail' : 'ring-empty', 'stroke-width': 16, fill: 'none' }),
  ];
  if (total && passed) {
    body.push(
      s('circle', {
        cx: 60,
        cy: 60,
        r,
        class: 'ring-pass',
        'stroke-width': 16,
        fill: 'none',
        'stroke-dasharray': `${(share * c).toFixed(2)} ${c.toFixed(2)}`,
        transform: 'rotate(-90 60 60)',
      }),
    );
  }
  body.push(s('text', { x: 60, y: 66, 'text-anchor': 'middle', class: 'big', text: `${passed}/${total}` }));
  return figure(title, caption, 120, 120, body);
}

function shorten(text, n) {
  const value = String(text);
  return value.length > n ? `${value.slice(0, n - 1)}…` : value;
}
