// A time-series line chart drawn as SVG, sized to its container. It shows
// a fixed window (five minutes) ending at the newest point.

import { s, fmtCompact } from './dom.js';

const PAD = { top: 10, right: 12, bottom: 24, left: 44 };

// niceStep rounds a grid step up to 1, 2, 2.5, 3 or 5 times a power of ten,
// so the axis reads 0, 2, 4, 6, 8 rather than 0, 1.3, 2.5.
function niceStep(raw, integer) {
  if (!(raw > 0)) return 1;
  if (integer && raw <= 1) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 3, 5, 10]) {
    if (raw <= m * p && (!integer || Number.isInteger(m * p))) return m * p;
  }
  return 10 * p;
}

const TICKS = 4;

export class LineChart {
  // series: [{key, label, color}]; value(sample, key) reads a point.
  constructor(el, { series, windowMs = 300000, format = fmtCompact, integer = false }) {
    this.integer = integer;
    this.el = el;
    this.series = series;
    this.windowMs = windowMs;
    this.format = format;
    this.samples = [];
    this.observer = new ResizeObserver(() => this.render());
    this.observer.observe(el);
  }

  set(samples) {
    this.samples = samples.slice(-Math.ceil(this.windowMs / 1000) - 1);
    this.render();
  }

  push(sample) {
    this.samples.push(sample);
    const from = sample.t - this.windowMs;
    while (this.samples.length && this.samples[0].t < from) this.samples.shift();
    this.render();
  }

  destroy() {
    this.observer.disconnect();
  }

  render() {
    const w = this.el.clientWidth;
    const ht = this.el.clientHeight;
    if (!w || !ht) return;
    const pts = this.samples;
    const end = pts.length ? pts[pts.length - 1].t : Date.now();
    const start = end - this.windowMs;
    let max = 0;
    for (const p of pts) for (const sr of this.series) max = Math.max(max, p[sr.key] || 0);
    const step = niceStep(max / TICKS, this.integer);
    max = step * TICKS;
    const iw = w - PAD.left - PAD.right;
    const ih = ht - PAD.top - PAD.bottom;
    const x = (t) => PAD.left + ((t - start) / this.windowMs) * iw;
    const y = (v) => PAD.top + ih - (v / max) * ih;

    const svg = s('svg', {
      viewBox: `0 0 ${w} ${ht}`, role: 'img', 'aria-label': this.series.map((sr) => sr.label).join(', '),
      'data-points': pts.length, 'data-last': end,
    });
    for (let i = 0; i <= TICKS; i++) {
      const v = step * i;
      const yy = Math.round(y(v)) + 0.5;
      svg.append(s('line', { class: 'grid-line', x1: PAD.left, x2: w - PAD.right, y1: yy, y2: yy }));
      const label = s('text', { class: 'axis-label', x: PAD.left - 8, y: yy + 4, 'text-anchor': 'end' });
      label.textContent = this.format(v);
      svg.append(label);
    }
    const minutes = Math.round(this.windowMs / 60000);
    for (let m = minutes; m >= 0; m--) {
      const xx = x(end - m * 60000);
      const label = s('text', {
        class: 'axis-label', x: xx, y: ht - 6,
        'text-anchor': m === minutes ? 'start' : m === 0 ? 'end' : 'middle',
      });
      label.textContent = m === 0 ? 'now' : `-${m}m`;
      svg.append(label);
    }
    if (pts.length < 2) {
      const t = s('text', { class: 'empty', x: PAD.left + iw / 2, y: PAD.top + ih / 2, 'text-anchor': 'middle' });
      t.textContent = 'Collecting data…';
      svg.append(t);
    } else {
      for (const sr of this.series) {
        let d = '';
        for (const p of pts) d += (d ? 'L' : 'M') + x(p.t).toFixed(1) + ',' + y(p[sr.key] || 0).toFixed(1);
        const base = y(0).toFixed(1);
        const area = d + `L${x(pts[pts.length - 1].t).toFixed(1)},${base}L${x(pts[0].t).toFixed(1)},${base}Z`;
        svg.append(s('path', { d: area, fill: sr.color, 'fill-opacity': 0.1, stroke: 'none' }));
        svg.append(s('path', {
          d, fill: 'none', stroke: sr.color, 'stroke-width': 2,
          'stroke-linejoin': 'round', 'stroke-linecap': 'round', class: 'series', 'data-series': sr.key,
        }));
      }
    }
    this.el.replaceChildren(svg);
  }
}
