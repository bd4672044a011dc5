// The page: a small client of the service's JSON API. Every rule and
// every error message is the service's own: a rejection's problem+json
// "detail" is shown next to the field it names, or next to the action.
//
// It knows no aggregate of its own. The service describes each one in
// the body's data-app attribute (see package web's Aggregate): its names,
// key, paths, fields, forms and how to label its events. From those the
// page draws its navigation, a list, a detail and a past-state view of
// each aggregate, their timelines, and the live panel.
//
// A service may add views of its own with scripts loaded before this one
// (web.Config's Extension). Each pushes onto window.pageExtensions a
// function that is called with the page's toolkit (kit, below) and
// returns hooks by aggregate name, each optional:
//
//   { orders: {
//       list(query), detail(key),  // views of its own, in place of the generic ones
//       sections(root, { key, state }) → { onEvent(ev) },  // added to the generic detail view
//       pastMeta(state, row), pastExtra(root, state),  // in place of, and added to, a past state's fields
//   } }
'use strict';

(() => {
  const PAGE_SIZE = 20;
  const MAX_EVENTS = 100;

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const enc = encodeURIComponent;
  const view = $('#view');
  const flashEl = $('#flash');

  // app is what the service says of itself: its title and aggregates.
  const app = JSON.parse(document.body.dataset.app || '{"aggregates":[]}');
  const aggregates = app.aggregates || [];
  const byName = new Map(aggregates.map((a, i) => [a.name, { ...a, hue: i }]));
  const aggregateOf = (name) => byName.get(name);

  // current is the shown view's hook into the live events.
  let current = null;
  // While a write of this page is in flight, the live events are held
  // back: its own events must not look like someone else's change.
  let writing = 0;
  let heldBack = [];

  function dispatch(ev) {
    if (writing) heldBack.push(ev);
    else if (current && current.onEvent) current.onEvent(ev);
  }

  // ---- the bearer token: asked for when the service answers 401 (it
  // needs one for writes, and for reads with AUTH_READS), kept for this
  // tab only (sessionStorage, gone when the tab closes), sent only to
  // this origin.

  const TOKEN_KEY = 'bearer-token';
  let memoryToken = ''; // when sessionStorage is unavailable

  function getToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch {
      return memoryToken;
    }
  }

  function setToken(token) {
    const changed = token !== getToken();
    memoryToken = token;
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // Kept in memoryToken only.
    }
    $('#token-status').hidden = !token;
    if (changed) restartLive();
  }

  // askToken shows the token dialog, saying why, and resolves to the token
  // entered, or '' when cancelled. Requests that need a token at the same
  // time share one dialog.
  let asking = null;
  function askToken(why) {
    if (asking) return asking;
    const dialog = $('#token-dialog');
    const input = $('#token-input');
    const whyEl = $('#token-why');
    whyEl.textContent = why;
    whyEl.hidden = !why;
    input.value = '';
    dialog.returnValue = '';
    asking = new Promise((resolve) => {
      dialog.addEventListener('close', () => {
        asking = null;
        const token = dialog.returnValue === 'use' ? input.value.trim() : '';
        input.value = '';
        resolve(token);
      }, { once: true });
    });
    dialog.showModal();
    input.focus();
    return asking;
  }

  // ---- the JSON API

  class ApiError extends Error {
    constructor(problem) {
      super(problem.detail || problem.title || 'request failed');
      this.problem = problem;
    }
  }

  // api calls the JSON API and returns the decoded body (null for 204).
  // version, when given, is sent as If-Match: a concurrent change is then
  // refused (412) instead of overwritten. A 401 asks for a token and tries
  // again with it: the request was not applied.
  async function api(method, path, { body, version } = {}) {
    for (let attempt = 0; ; attempt++) {
      const headers = { Accept: 'application/json, application/problem+json' };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      if (version !== undefined) headers['If-Match'] = `"${version}"`;
      const token = getToken();
      if (token) headers.Authorization = `Bearer ${token}`;
      let res;
      try {
        res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      } catch (err) {
        throw new ApiError({ status: 0, title: 'Network error', detail: `The service could not be reached (${err.message}).` });
      }
      if (res.status === 204) return null;
      const type = res.headers.get('Content-Type') || '';
      const data = type.includes('json') ? await res.json().catch(() => null) : null;
      if (res.ok) return data;
      const p = data && typeof data === 'object' ? data : {};
      const problem = { ...p, status: res.status, title: p.title || res.statusText, detail: p.detail || `${res.status} ${res.statusText}` };
      if (res.status === 401 && attempt < 3) {
        // Unless another request has set a new token meanwhile, this
        // one was refused or missing: forget it and ask.
        if (getToken() === token) {
          if (token) setToken('');
          const next = await askToken(token ? `That token was refused: ${sentence(problem.detail)}` : sentence(problem.detail));
          if (!next) throw new ApiError(problem);
          setToken(next);
        }
        continue;
      }
      throw new ApiError(problem);
    }
  }

  // ---- small DOM helpers

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    e.append(...children.filter((c) => c !== undefined && c !== null));
    return e;
  }

  function mount(id) {
    const frag = $(`#${id}`).content.cloneNode(true);
    view.replaceChildren(frag);
    view.removeAttribute('aria-busy');
    return view;
  }

  function flash(text) {
    flashEl.textContent = text;
    flashEl.hidden = !text;
  }

  // go shows another page, with a message about what just happened.
  let pendingFlash = '';
  function go(hash, message) {
    pendingFlash = message;
    location.hash = hash;
  }

  // sentence makes a problem's detail read as a sentence of its own.
  function sentence(text) {
    const s = String(text || '');
    return s && `${s[0].toUpperCase()}${s.slice(1)}${/[.!?]$/.test(s) ? '' : '.'}`;
  }

  function shortId(id) {
    return id && id.length > 12 ? `${id.slice(0, 8)}…` : id;
  }

  // ---- forms: errors next to the field or the action

  function clearErrors(form) {
    for (const e of $$('.field-error, .form-error', form)) {
      e.hidden = true;
      e.replaceChildren();
    }
    for (const e of $$('[aria-invalid]', form)) e.removeAttribute('aria-invalid');
  }

  function showProblem(form, err) {
    const p = err instanceof ApiError ? err.problem : { status: 0, detail: String(err && err.message ? err.message : err) };
    const input = p.field && p.status !== 412 ? form.elements.namedItem(p.field) : null;
    if (input && input.id && document.getElementById(`${input.id}-error`)) {
      const e = document.getElementById(`${input.id}-error`);
      e.textContent = p.detail;
      e.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    const box = $('.form-error', form);
    box.replaceChildren();
    box.classList.remove('auth');
    if (p.status === 401 || p.status === 403) {
      // Said plainly: who may do what is the service's to decide, and
      // the remedy is another token.
      box.classList.remove('conflict');
      box.classList.add('auth');
      box.append(
        el('strong', { text: p.status === 401 ? 'This needs a token (401 Unauthorized).' : 'Your token does not allow this (403 Forbidden).' }), ' ',
        el('span', { text: sentence(p.detail) }), ' ',
        el('button', { type: 'button', class: 'secondary small', 'data-token': true, text: p.status === 401 ? 'Enter a token' : 'Use another token' }),
      );
      $('[data-token]', box).addEventListener('click', async () => {
        const token = await askToken('');
        if (token) {
          setToken(token);
          box.hidden = true;
          flash('Token set for this tab: try again.');
        }
      });
    } else if (p.status === 412) {
      box.classList.add('conflict');
      box.append(
        el('strong', { text: 'Someone else changed this since you loaded it (412 Precondition Failed).' }), ' ',
        el('span', { text: /[.!?]$/.test(p.detail) ? p.detail : `${p.detail}.` }), ' ',
        el('span', { text: 'Your change was not applied. Reload to see the current version, then try again.' }), ' ',
        el('button', { type: 'button', class: 'secondary small', 'data-reload': true, text: 'Reload' }),
      );
      $('[data-reload]', box).addEventListener('click', () => route());
    } else {
      box.classList.remove('conflict');
      box.textContent = p.detail;
    }
    box.hidden = false;
  }

  // bindForm runs submit(values) on submit, with the buttons disabled
  // meanwhile, and shows its failure in the form.
  function bindForm(form, submit) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      flash('');
      const buttons = $$('button', form);
      buttons.forEach((b) => { b.disabled = true; });
      form.setAttribute('aria-busy', 'true');
      writing++;
      try {
        await submit(Object.fromEntries(new FormData(form)), ev.submitter);
      } catch (err) {
        if (!(err instanceof ApiError)) console.error(err);
        showProblem(form, err);
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
        form.removeAttribute('aria-busy');
        writing--;
        if (!writing) {
          const held = heldBack;
          heldBack = [];
          held.forEach(dispatch);
        }
      }
    });
  }

  // ---- labels: templates over a resource's or an event's fields

  // fill returns the first of templates whose "{field}"s are all present
  // and not empty in obj, filled in; '' if none is.
  function fill(templates, obj) {
    for (const t of templates || []) {
      let ok = true;
      const s = t.replace(/\{([A-Za-z0-9_]+)\}/g, (_, f) => {
        const v = obj ? obj[f] : undefined;
        if (v === undefined || v === null || v === '') {
          ok = false;
          return '';
        }
        return String(v);
      });
      if (ok) return s;
    }
    return '';
  }

  const cap = (s) => (s ? `${s[0].toUpperCase()}${s.slice(1)}` : s);
  const keyOf = (agg, state) => String(state[agg.key] ?? '');
  // label names one resource: its label, else its key.
  const label = (agg, state) => fill(agg.label, state) || keyOf(agg, state);
  const shownKey = (agg, key) => (agg.shortKey ? shortId(key) : key);
  const itemPath = (agg, key) => `${agg.path}/${enc(key)}`;
  const fieldLabel = (agg, name) => {
    const f = (agg.fields || []).find((x) => x.name === name);
    return f ? f.label : cap(name);
  };
  const eventLabel = (agg, type) => (agg && (agg.events || []).find((x) => x.type === type)) || {};
  // hooksOf returns the extensions' hooks for agg.
  const hooksOf = (agg) => extensions[agg.name] || {};

  // fields renders agg's fields for which want(f) is true as the inputs
  // of a form: ids are prefix-<field>, errors at prefix-<field>-error.
  function fieldInputs(agg, want, prefix) {
    return (agg.fields || []).filter(want).map((f) => {
      const id = `${prefix}-${f.name}`;
      const hint = f.hint ? `${id}-hint` : null;
      const attrs = {
        id, name: f.name, required: !f.optional, autocomplete: 'off',
        'aria-describedby': [hint, `${id}-error`].filter(Boolean).join(' '),
      };
      if (f.name === agg.key) Object.assign(attrs, { autocapitalize: 'none', spellcheck: 'false' });
      return el('div', { class: 'field' },
        el('label', { for: id }, f.label, f.optional ? ' ' : null, f.optional ? el('span', { class: 'optional', text: '(optional)' }) : null),
        f.multiline ? el('textarea', { ...attrs, rows: '5' }) : el('input', attrs),
        hint ? el('p', { class: 'hint', id: hint, text: f.hint }) : null,
        el('p', { class: 'field-error', id: `${id}-error`, hidden: true }));
    });
  }

  // body returns the values of agg's fields for which want(f) is true;
  // an optional field left empty is not sent.
  function bodyOf(agg, want, values) {
    const body = {};
    for (const f of (agg.fields || []).filter(want)) {
      if (f.optional && values[f.name] === '') continue;
      body[f.name] = values[f.name];
    }
    return body;
  }

  // shownFields are the fields a view lists beside the key and version:
  // those its label does not show already.
  function shownFields(agg) {
    const inLabel = new Set();
    for (const t of agg.label || []) for (const m of t.matchAll(/\{([A-Za-z0-9_]+)\}/g)) inLabel.add(m[1]);
    return (agg.fields || []).filter((f) => f.name !== agg.key && !inLabel.has(f.name));
  }

  function metaRows(agg, state, meta, withVersion) {
    const row = (dt, dd) => meta.append(el('dt', { text: dt }), el('dd', {}, dd));
    row(fieldLabel(agg, agg.key), el('code', { text: keyOf(agg, state) }));
    if (withVersion) row('Version', String(state.version));
    for (const f of shownFields(agg)) {
      const v = state[f.name];
      row(f.label, v === undefined || v === null || v === '' ? 'none' : String(v));
    }
    return row;
  }

  // ---- lists, paged with the API's cursor

  async function fillList(root, path, after, render, base, empty) {
    const status = $('[data-status]', root);
    const list = $('[data-list]', root);
    const next = $('[data-next]', root);
    $('[data-first]', root).hidden = !after;
    status.textContent = 'Loading…';
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (after) q.set('after', after);
    try {
      const page = await api('GET', `${path}?${q}`);
      list.replaceChildren(...page.items.map(render));
      status.textContent = page.items.length ? '' : (after ? 'No more items.' : empty);
      if (page.next) {
        next.href = `${base}?after=${enc(page.next)}`;
        next.hidden = false;
      }
      return page.items;
    } catch (err) {
      status.textContent = `Could not load the list: ${err.message}`;
      return [];
    }
  }

  // ---- the history of one resource: a timeline of its events, newest
  // first, and its state as of any of them (read-only)

  // describe says in a few words what an event of agg changed.
  function describe(agg, type, e) {
    return fill(eventLabel(agg, type).describe, e) || type || 'An event';
  }

  // timeline fills root's [data-timeline] with the events of agg's
  // resource key, a page at a time; here, if given, is the position being
  // viewed. It returns the hooks the view calls: onEvent with each live
  // event, refresh after its own writes.
  function timeline(root, agg, key, here) {
    const box = $('[data-timeline]', root);
    box.replaceChildren($('#tpl-timeline').content.cloneNode(true));
    const list = $('[data-timeline-events]', box);
    const status = $('[data-timeline-status]', box);
    const older = $('[data-older]', box);
    const path = `${itemPath(agg, key)}/history`;
    const shown = new Set(); // the positions listed
    let newest = 0;
    let total = 0;
    let next = '';
    let loaded = false;

    const count = () => {
      status.textContent = total ? `${total} event${total === 1 ? '' : 's'} in all, newest first.` : 'No events yet.';
    };
    const item = (h) => {
      const when = new Date(h.time);
      const at = h.position === here;
      return el('li', { class: 'tl-event', 'data-position': String(h.position), 'data-type': h.type, 'aria-current': at ? 'step' : null },
        el('p', { class: 'tl-what', text: describe(agg, h.type, h.event || {}) }),
        el('p', { class: 'tl-meta' },
          el('span', { 'data-tl-position': true, text: `Position ${h.position}` }), ' · ',
          el('span', { 'data-tl-version': true, text: `version ${h.version}` }), ' · ',
          el('time', { datetime: when.toISOString(), text: when.toLocaleString() }),
          h.subject ? ` · by ${h.subject}` : '', ' · ',
          el('code', { text: h.type })),
        at
          ? el('p', { class: 'tl-here', text: 'You are viewing the state as of this event.' })
          : el('p', { class: 'tl-link' }, el('a', {
            href: `#/${agg.name}/${enc(key)}@${h.position}`,
            'aria-label': `View as it was here, at position ${h.position}`,
            text: 'View as it was here',
          })));
    };
    // add lists h in its place by position, once.
    const add = (h) => {
      if (!h.position || shown.has(h.position)) return;
      shown.add(h.position);
      newest = Math.max(newest, h.position);
      total = Math.max(total, h.position);
      const before = $$(':scope > li', list).find((li) => Number(li.dataset.position) < h.position);
      list.insertBefore(item(h), before || null);
    };
    const load = async (after) => {
      const q = new URLSearchParams({ order: 'desc', limit: String(PAGE_SIZE) });
      if (after) q.set('after', after);
      const page = await api('GET', `${path}?${q}`);
      page.items.forEach(add);
      total = Math.max(total, page.total || 0);
      return page;
    };
    const first = async () => {
      status.textContent = 'Loading the history…';
      try {
        const page = await load('');
        if (!loaded) next = page.next || '';
        loaded = true;
        count();
      } catch (err) {
        status.textContent = err.problem && err.problem.status === 404 && !shown.size ? 'No events yet.' : `Could not load the history: ${err.message}`;
      }
      older.hidden = !next;
    };
    older.addEventListener('click', async () => {
      older.disabled = true;
      try {
        const page = await load(next);
        next = page.next || '';
        count();
      } catch (err) {
        status.textContent = `Could not load older events: ${err.message}`;
      } finally {
        older.disabled = false;
        older.hidden = !next;
      }
    });
    first();
    return {
      refresh: first,
      onEvent(ev) {
        if (ev.aggregate !== agg.name || ev.key !== key) return;
        const gap = loaded && ev.position > newest + 1;
        add({ position: ev.position, version: ev.version, type: ev.type, time: ev.timestamp, msgId: ev.msgId, subject: ev.subject, event: ev.event });
        count();
        // An event without a position, or after one this page missed:
        // the history has them all.
        if (!ev.position || gap) first();
      },
    };
  }

  // deletedSince tells whether err is a 404 for a key of agg that has a
  // history nonetheless: one deleted since.
  async function deletedSince(err, agg, key) {
    if (!(err instanceof ApiError) || err.problem.status !== 404) return false;
    try {
      const page = await api('GET', `${itemPath(agg, key)}/history?limit=1`);
      return page.items.length > 0;
    } catch {
      return false;
    }
  }

  // showPast shows agg's resource key as of position (read-only), with
  // its timeline; without a position, as it is now: deleted.
  async function showPast(agg, key, position) {
    const hooks = hooksOf(agg);
    const noun = agg.singular;
    let state = null;
    let missing = !position;
    if (position) {
      try {
        state = await api('GET', `${itemPath(agg, key)}?position=${position}`);
      } catch (err) {
        if (!(err instanceof ApiError) || err.problem.status !== 404) throw err;
        missing = true;
      }
    }
    const root = mount('tpl-past');
    const now = `#/${agg.name}/${enc(key)}`;
    $('[data-crumb]', root).replaceChildren(el('a', { href: `#/${agg.name}`, text: agg.title }));
    const name = state ? label(agg, state) : key;
    document.title = `${name}${position ? ` at position ${position}` : ''} · ${app.title}`;
    $('[data-title]', root).textContent = name;
    const banner = $('[data-banner]', root);
    if (!position) {
      banner.append(el('strong', { text: `This ${noun} does not exist now.` }), ' ',
        `It was ${agg.forms.deleted}; its history is below, and each event shows how it was then.`);
    } else {
      banner.append(el('strong', { text: 'A past state, read-only.' }), ' ',
        missing
          ? `At position ${position} of its history this ${noun} did not exist.`
          : `This is how this ${noun} was at position ${position} of its history, version ${state.version}.`,
        ' ', el('a', { href: now, text: 'Back to now' }));
    }
    const meta = $('[data-meta]', root);
    if (state && hooks.pastMeta) {
      hooks.pastMeta(state, (dt, dd) => meta.append(el('dt', { text: dt }), el('dd', {}, dd)));
    } else if (state) {
      metaRows(agg, state, meta, true);
    } else {
      meta.append(el('dt', { text: fieldLabel(agg, agg.key) }), el('dd', {}, el('code', { text: key })));
    }
    if (state && hooks.pastExtra) hooks.pastExtra($('[data-past-extra]', root), state);
    const history = timeline(root, agg, key, position);
    current = { onEvent: history.onEvent };
  }

  // ---- the generic views of an aggregate

  // showList lists agg's resources, with a form to create one.
  async function showList(agg, query) {
    const root = mount('tpl-list');
    document.title = `${agg.title} · ${app.title}`;
    $('[data-title]', root).textContent = agg.title;
    $('[data-pager]', root).setAttribute('aria-label', `Pages of ${agg.title.toLowerCase()}`);
    for (const a of $$('[data-first], [data-next]', root)) a.href = `#/${agg.name}`;
    if (agg.forms.create) {
      const panel = $('[data-create]', root);
      panel.hidden = false;
      $('[data-create-title]', panel).textContent = `New ${agg.singular}`;
      const form = $('form', panel);
      form.dataset.form = `create-${agg.singular}`;
      $('[data-fields]', form).replaceChildren(...fieldInputs(agg, (f) => f.create, `create-${agg.singular}`));
      $('[data-submit]', form).textContent = `Create ${agg.singular}`;
      bindForm(form, async (v) => {
        const r = await api('POST', agg.path, { body: bodyOf(agg, (f) => f.create, v) });
        go(`#/${agg.name}/${enc(keyOf(agg, r))}`, `${cap(agg.singular)} ${label(agg, r)} created.`);
      });
    }
    await fillList(root, agg.path, query.get('after'),
      (r) => el('li', {}, el('a', { href: `#/${agg.name}/${enc(keyOf(agg, r))}`, text: label(agg, r) }), ' ',
        el('code', { text: shownKey(agg, keyOf(agg, r)) })),
      `#/${agg.name}`, agg.forms.create ? `No ${agg.name} yet: create the first one below.` : `No ${agg.name} yet.`);
  }

  // showDetail shows agg's resource key, with its forms, its timeline
  // and what the extensions add (sections).
  async function showDetail(agg, key) {
    let state;
    try {
      state = await api('GET', itemPath(agg, key));
    } catch (err) {
      if (await deletedSince(err, agg, key)) return showPast(agg, key, 0);
      throw err;
    }
    const root = mount('tpl-detail');
    const history = timeline(root, agg, key);
    $('[data-crumb]', root).replaceChildren(el('a', { href: `#/${agg.name}`, text: agg.title }));
    const edit = $('[data-edit]', root);
    const update = $('[data-update]', root);
    const del = $('[data-delete]', root);
    const editable = (f) => f.update;
    if (agg.forms.update && agg.fields.some(editable)) {
      update.hidden = false;
      update.dataset.form = `update-${agg.singular}`;
      $('[data-fields]', update).replaceChildren(...fieldInputs(agg, editable, `update-${agg.singular}`));
      $('[data-submit]', update).textContent = agg.forms.updateLabel;
    }
    if (agg.forms.delete) {
      del.hidden = false;
      del.dataset.form = `delete-${agg.singular}`;
      $('[data-submit]', del).textContent = `${agg.forms.deleteVerb} this ${agg.singular}`;
    }
    edit.hidden = update.hidden && del.hidden;
    $('[data-edit-title]', root).textContent = `Edit this ${agg.singular}`;
    const render = () => {
      document.title = `${label(agg, state)} · ${app.title}`;
      $('[data-name]', root).textContent = label(agg, state);
      const meta = $('[data-meta]', root);
      meta.replaceChildren();
      metaRows(agg, state, meta, true);
      for (const f of agg.fields.filter(editable)) {
        const input = update.elements.namedItem(f.name);
        if (input) input.value = state[f.name] ?? '';
      }
      $('[data-stale]', root).hidden = true;
    };
    render();
    const hooks = hooksOf(agg);
    const sections = hooks.sections ? hooks.sections($('[data-sections]', root), { key, state: () => state }) : null;
    bindForm(update, async (v) => {
      state = await api('PUT', itemPath(agg, key), { body: bodyOf(agg, editable, v), version: state.version });
      render();
      history.refresh();
      flash(`Saved: ${label(agg, state)}, version ${state.version}.`);
    });
    bindForm(del, async () => {
      const warning = agg.forms.deleteWarning ? ` ${agg.forms.deleteWarning}` : '';
      if (!window.confirm(`${agg.forms.deleteVerb} the ${agg.singular} ${label(agg, state)}?${warning}`)) return;
      await api('DELETE', itemPath(agg, key), { version: state.version });
      go(`#/${agg.name}`, `${cap(agg.singular)} ${label(agg, state)} ${agg.forms.deleted}.`);
    });
    current = {
      onEvent(ev) {
        history.onEvent(ev);
        if (ev.aggregate === agg.name && ev.key === key && ev.version > state.version) {
          staleNotice(root, `This ${agg.singular} changed since you loaded it (${ev.type}, now version ${ev.version}); saving now would be refused.`);
        }
        if (sections && sections.onEvent) sections.onEvent(ev);
      },
    };
  }

  function staleNotice(root, text) {
    const n = $('[data-stale]', root);
    n.replaceChildren(el('span', { text }), ' ', el('button', { type: 'button', class: 'secondary small', text: 'Reload' }));
    $('button', n).addEventListener('click', () => route());
    n.hidden = false;
  }

  function showError(title, detail) {
    const root = mount('tpl-error');
    document.title = `${title} · ${app.title}`;
    $('[data-title]', root).textContent = title;
    $('[data-detail]', root).textContent = detail;
    const home = $('[data-home]', root);
    if (aggregates.length) {
      home.href = `#/${aggregates[0].name}`;
      home.textContent = `Back to the ${aggregates[0].title.toLowerCase()}`;
    }
  }

  // ---- routing: #/{name}, #/{name}/{key} and #/{name}/{key}@{position}
  // (a past state), for each aggregate's name

  async function route(moveFocus) {
    const hash = location.hash.replace(/^#/, '');
    if (!hash.startsWith('/') || hash === '/') {
      if ((!hash || hash === '/') && aggregates.length) location.replace(`#/${aggregates[0].name}`);
      return; // an in-page link such as #live
    }
    const [p, q] = hash.split('?');
    const raw = p.split('/').filter(Boolean);
    const parts = raw.map(decodeURIComponent);
    // The key is encoded, so an '@' of its own is not the separator.
    const past = raw.length === 2 ? /^(.+)@([1-9][0-9]*)$/.exec(raw[1]) : null;
    const query = new URLSearchParams(q || '');
    current = null;
    flash(pendingFlash);
    pendingFlash = '';
    for (const a of $$('[data-nav]')) {
      if (a.dataset.nav === parts[0]) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    view.setAttribute('aria-busy', 'true');
    const agg = aggregateOf(parts[0]);
    const hooks = agg ? hooksOf(agg) : {};
    try {
      if (agg && past) await showPast(agg, decodeURIComponent(past[1]), Number(past[2]));
      else if (agg && parts.length === 1) await (hooks.list ? hooks.list(query) : showList(agg, query));
      else if (agg && parts.length === 2) await (hooks.detail ? hooks.detail(parts[1]) : showDetail(agg, parts[1]));
      else showError('Not found', `There is no page at ${location.hash}.`);
    } catch (err) {
      const pr = err instanceof ApiError ? err.problem : { title: 'Error', detail: String(err) };
      showError(pr.status === 404 ? 'Not found' : pr.title || 'Error', pr.detail);
    }
    if (moveFocus) {
      const h1 = $('h1', view);
      if (h1) {
        h1.tabIndex = -1;
        h1.focus();
      }
    }
  }

  // ---- live events

  function summary(agg, ev) {
    if (ev.error) return `undecodable: ${ev.error}`;
    return fill(eventLabel(agg, ev.type).summary, ev.event || {});
  }

  // The events listed already, by place, so that the recent events a
  // stream sends again when it reconnects are listed once; bounded.
  const listed = new Set();

  function addEvent(ev) {
    const place = `${ev.topic}/${ev.partition}/${ev.offset}`;
    if (listed.has(place)) return;
    listed.add(place);
    if (listed.size > 4 * MAX_EVENTS) listed.delete(listed.values().next().value);
    const agg = aggregateOf(ev.aggregate);
    const when = ev.timestamp ? new Date(ev.timestamp) : new Date();
    const item = el('li', { class: 'event', 'data-aggregate': ev.aggregate || '', 'data-hue': agg ? String(agg.hue % 4) : null, 'data-type': ev.type },
      el('p', { class: 'event-head' },
        el('strong', { text: ev.type || '(unknown)' }), ' ',
        agg
          ? el('a', { href: `#/${agg.name}/${enc(ev.key)}`, text: shownKey(agg, ev.key), title: `${cap(agg.singular)} ${ev.key}` })
          : el('span', { text: ev.key })),
      el('p', { class: 'event-summary', text: summary(agg, ev) }),
      el('p', { class: 'event-meta' },
        `${agg ? `${agg.singular} · ` : ''}v${ev.version}${ev.subject ? ` · by ${ev.subject}` : ''} · ${ev.topic} · `,
        el('time', { datetime: when.toISOString(), text: when.toLocaleTimeString() })),
      el('details', {},
        el('summary', { text: 'Record' }),
        el('pre', { text: JSON.stringify({ aggregate: ev.aggregate, topic: ev.topic, partition: ev.partition, offset: ev.offset, key: ev.key, msgId: ev.msgId, subject: ev.subject, version: ev.version, position: ev.position, event: ev.event, error: ev.error }, null, 2) })));
    const list = $('#events');
    list.prepend(item);
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  }

  function setLive(text, live) {
    const status = $('#live-status');
    status.textContent = text;
    status.dataset.live = String(live);
  }

  // What each kind of server-sent event does, however it arrives.
  const liveHandlers = {
    status(data) {
      const s = JSON.parse(data);
      setLive(s.live ? 'Live: new events appear as they are committed.' : `Not live yet: ${s.detail}…`, s.live);
    },
    event(data) {
      const ev = JSON.parse(data);
      addEvent(ev);
      dispatch(ev);
    },
    // An event committed before the stream went live (the last few, sent
    // first): listed, but not news to the page's view.
    recent(data) {
      addEvent(JSON.parse(data));
    },
    dropped() {
      setLive('This page fell behind and missed some events; reconnecting…', false);
    },
  };

  // The live stream in use: an EventSource, or, with a token (which an
  // EventSource cannot send), a fetch; and the timer of a retry.
  let liveSource = null;
  let liveAbort = null;
  let liveRetry = 0;

  function startLive() {
    clearTimeout(liveRetry);
    const token = getToken();
    if (token) {
      streamWithToken(token);
      return;
    }
    const source = new EventSource(document.body.dataset.stream);
    liveSource = source;
    for (const [name, handle] of Object.entries(liveHandlers)) {
      source.addEventListener(name, (e) => handle(e.data));
    }
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        setLive('The live events are unavailable; trying again in a few seconds…', false);
        liveRetry = setTimeout(startLive, 5000);
      } else {
        setLive('Connection lost; reconnecting…', false);
      }
    });
  }

  // restartLive follows a change of token: a stream with the old token
  // starts again with the new one (or as an EventSource without one); an
  // EventSource that is live needs no token and goes on.
  function restartLive() {
    if (liveSource && $('#live-status').dataset.live === 'true') return;
    if (liveSource) liveSource.close();
    if (liveAbort) liveAbort.abort();
    liveSource = null;
    liveAbort = null;
    startLive();
  }

  // streamWithToken reads the server-sent events with fetch, which can
  // send the token, and parses them as an EventSource would.
  async function streamWithToken(token) {
    const ctl = new AbortController();
    liveAbort = ctl;
    try {
      const res = await fetch(document.body.dataset.stream, {
        headers: { Accept: 'text/event-stream', Authorization: `Bearer ${token}` }, signal: ctl.signal, cache: 'no-store',
      });
      if (!res.ok || !res.body) throw new Error(`${res.status} ${res.statusText}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let name = 'message';
          const data = [];
          for (const line of frame.split('\n')) {
            if (line.startsWith('event:')) name = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          const handle = liveHandlers[name];
          if (handle && data.length) handle(data.join('\n'));
        }
      }
    } catch (err) {
      if (ctl.signal.aborted) return;
      console.warn('live events:', err);
    }
    if (ctl.signal.aborted) return;
    setLive('Connection lost; reconnecting…', false);
    liveRetry = setTimeout(startLive, 2000);
  }

  // ---- the extensions and the page's frame, from the aggregates

  // kit is what an extension's views may use.
  const kit = {
    PAGE_SIZE, app, $, $$, el, enc, api, ApiError, mount, flash, go, sentence, shortId, fill, label,
    bindForm, fillList, timeline, deletedSince, staleNotice, route,
    aggregate: aggregateOf,
    showPast: (name, key, position) => showPast(aggregateOf(name), key, position),
    // setCurrent makes hooks the shown view's hook into the live events.
    setCurrent: (hooks) => { current = hooks; },
  };
  const extensions = {};
  for (const ext of window.pageExtensions || []) {
    try {
      for (const [name, hooks] of Object.entries(ext(kit) || {})) extensions[name] = { ...extensions[name], ...hooks };
    } catch (err) {
      console.error('page extension:', err);
    }
  }

  const nav = $('[data-nav-list]');
  nav.prepend(...aggregates.map((a) => el('li', {}, el('a', { href: `#/${a.name}`, 'data-nav': a.name, text: a.title }))));
  const apiLinks = $('[data-api-links]');
  aggregates.forEach((a, i) => apiLinks.append(i ? ', ' : '', el('a', { href: a.path, text: a.path })));
  for (const a of $$('[data-home]')) if (aggregates.length) a.href = `#/${aggregates[0].name}`;
  if (app.tokenHint) $('[data-token-hint]').textContent = app.tokenHint;

  $('#live-clear').addEventListener('click', () => $('#events').replaceChildren());
  $('#token-forget').addEventListener('click', () => {
    setToken('');
    flash('Token forgotten.');
  });
  $('#token-status').hidden = !getToken();
  window.addEventListener('hashchange', () => route(true));
  startLive();
  route(false);
})();
