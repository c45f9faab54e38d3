// A table fed by one of the API's paged lists: sorting and paging happen
// on the server (?limit=&offset=&sort=&order=), so lists of 100 000 stay
// quick in the browser.

import { api, query } from './api.js';
import { h, fmtNum, toast } from './dom.js';

const PAGE = 50;

export class DataTable {
  // columns: [{label, sort, num, primary, render(row)}]; params() adds
  // the page's filters; onData(page) sees each page loaded.
  constructor({ endpoint, columns, sort, order = 'asc', params, empty, onData, id }) {
    this.endpoint = endpoint;
    this.columns = columns;
    this.sort = sort;
    this.order = order;
    this.params = params || (() => ({}));
    this.empty = empty || 'Nothing here.';
    this.onData = onData;
    this.offset = 0;
    this.seq = 0;

    this.thead = h('thead', null, h('tr', null, columns.map((c) => this.header(c))));
    this.tbody = h('tbody');
    this.table = h('table', { class: 'responsive', id }, this.thead, this.tbody);
    this.info = h('span');
    this.prev = h('button', { class: 'small', type: 'button', onclick: () => this.page(-1) }, '‹ Previous');
    this.next = h('button', { class: 'small', type: 'button', onclick: () => this.page(1) }, 'Next ›');
    this.pager = h('div', { class: 'pager' }, this.info, h('div', { class: 'row' }, this.prev, this.next));
    this.el = h('div', null, h('div', { class: 'table-wrap' }, this.table), this.pager);
  }

  header(c) {
    const th = h('th', { class: (c.num ? 'num ' : '') + (c.sort ? 'sortable' : ''), scope: 'col' }, c.label);
    if (c.sort) {
      th.addEventListener('click', () => {
        if (this.sort === c.sort) this.order = this.order === 'asc' ? 'desc' : 'asc';
        else { this.sort = c.sort; this.order = c.num ? 'desc' : 'asc'; }
        this.offset = 0;
        this.load();
      });
    }
    c.th = th;
    return th;
  }

  page(dir) {
    this.offset = Math.max(0, this.offset + dir * PAGE);
    this.load();
  }

  // reset goes back to the first page (after a filter changed).
  reset() {
    this.offset = 0;
    return this.load();
  }

  async load() {
    const seq = ++this.seq;
    let data;
    try {
      data = await api(this.endpoint + query({ ...this.params(), limit: PAGE, offset: this.offset, sort: this.sort, order: this.order }));
    } catch (err) {
      if (err.status !== 401) toast(err.message, 'error');
      return;
    }
    if (seq !== this.seq) return; // a newer load has started
    if (data.items.length === 0 && this.offset > 0 && data.total > 0) {
      this.offset = Math.max(0, Math.floor((data.total - 1) / PAGE) * PAGE);
      return this.load();
    }
    this.render(data);
    if (this.onData) this.onData(data);
  }

  render(data) {
    for (const c of this.columns) {
      if (!c.sort) continue;
      if (c.sort === this.sort) c.th.setAttribute('aria-sort', this.order === 'asc' ? 'ascending' : 'descending');
      else c.th.removeAttribute('aria-sort');
    }
    const rows = data.items.map((row) => h('tr', null, this.columns.map((c) => {
      const td = h('td', { class: [c.num ? 'num' : '', c.primary ? 'primary' : '', c.actions ? 'actions' : ''].join(' ').trim() || null, dataset: { label: c.label } });
      const v = c.render(row);
      if (v !== undefined && v !== null) td.append(v instanceof Node ? v : String(v));
      return td;
    })));
    if (rows.length === 0) {
      rows.push(h('tr', null, h('td', { class: 'empty-state', colspan: this.columns.length }, this.empty)));
    }
    this.tbody.replaceChildren(...rows);
    const from = data.total ? data.offset + 1 : 0;
    const to = data.offset + data.items.length;
    this.info.textContent = data.total ? `${fmtNum(from)}–${fmtNum(to)} of ${fmtNum(data.total)}` : 'None';
    this.prev.disabled = data.offset === 0;
    this.next.disabled = to >= data.total;
    this.pager.hidden = data.total <= PAGE;
  }
}
