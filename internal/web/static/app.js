// The catalog's web page: a small client of the JSON API. Every rule and
// every error message is the service's own: a rejection's problem+json
// "detail" is shown next to the field it names, or next to the action.
'use strict';

(() => {
  const PAGE_SIZE = 20;
  const MAX_EVENTS = 100;

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const enc = encodeURIComponent;
  const view = $('#view');
  const flashEl = $('#flash');

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

  const TOKEN_KEY = 'catalog.token';
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

  function fullName(a) {
    return `${a.firstName} ${a.lastName}`.trim() || a.code;
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

  async function loadAuthorCodes() {
    try {
      const page = await api('GET', '/authors?limit=200');
      $('#author-codes').replaceChildren(...page.items.map((a) => el('option', { value: a.code }, fullName(a))));
    } catch {
      // Only a convenience: typing the code works without it.
    }
  }

  // ---- the history of an author or a book: a timeline of its events,
  // newest first, and its state as of any of them (read-only)

  // describe says in a few words what an event changed.
  function describe(type, e) {
    switch (type) {
      case 'AuthorCreated': return `Created as ${e.firstName} ${e.lastName}`;
      case 'AuthorUpdated': return `Names changed to ${e.firstName} ${e.lastName}`;
      case 'AuthorDeleted': return 'Deleted';
      case 'BookCreated': return `Created as “${e.title}”`;
      case 'BookUpdated': return `Renamed to “${e.title}”`;
      case 'BookAuthorSet': return e.authorCode ? `Author set to ${e.authorCode}` : 'Author cleared';
      case 'ChapterAdded': return `Chapter ${e.chapterId} added: “${e.title}”`;
      case 'ChapterRemoved': return `Chapter ${e.chapterId} removed`;
      case 'BookRemoved': return 'Removed';
      default: return type || 'An event';
    }
  }

  // timeline fills root's [data-timeline] with the events of the author
  // or book key (kind: 'authors' or 'books'), a page at a time; here, if
  // given, is the position being viewed. It returns the hooks the view
  // calls: onEvent with each live event, refresh after its own writes.
  function timeline(root, kind, key, here) {
    const box = $('[data-timeline]', root);
    box.replaceChildren($('#tpl-timeline').content.cloneNode(true));
    const list = $('[data-timeline-events]', box);
    const status = $('[data-timeline-status]', box);
    const older = $('[data-older]', box);
    const path = `/${kind}/${enc(key)}/history`;
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
        el('p', { class: 'tl-what', text: describe(h.type, h.event || {}) }),
        el('p', { class: 'tl-meta' },
          el('span', { 'data-tl-position': true, text: `Position ${h.position}` }), ' · ',
          el('span', { 'data-tl-version': true, text: `version ${h.version}` }), ' · ',
          el('time', { datetime: when.toISOString(), text: when.toLocaleString() }),
          h.subject ? ` · by ${h.subject}` : '', ' · ',
          el('code', { text: h.type })),
        at
          ? el('p', { class: 'tl-here', text: 'You are viewing the state as of this event.' })
          : el('p', { class: 'tl-link' }, el('a', {
            href: `#/${kind}/${enc(key)}@${h.position}`,
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
        if (!ev.topic.endsWith(`.${kind}.events`) || ev.key !== key) return;
        const gap = loaded && ev.position > newest + 1;
        add({ position: ev.position, version: ev.version, type: ev.type, time: ev.timestamp, msgId: ev.msgId, subject: ev.subject, event: ev.event });
        count();
        // An event without a position, or after one this page missed:
        // the history has them all.
        if (!ev.position || gap) first();
      },
    };
  }

  // deletedSince tells whether err is a 404 for a key that has a history
  // nonetheless: one deleted since (or removed).
  async function deletedSince(err, kind, key) {
    if (!(err instanceof ApiError) || err.problem.status !== 404) return false;
    try {
      const page = await api('GET', `/${kind}/${enc(key)}/history?limit=1`);
      return page.items.length > 0;
    } catch {
      return false;
    }
  }

  // showPast shows the author or book key as of position (read-only),
  // with its timeline; without a position, as it is now: deleted.
  async function showPast(kind, key, position) {
    const author = kind === 'authors';
    const noun = author ? 'author' : 'book';
    let state = null;
    let missing = !position;
    if (position) {
      try {
        state = await api('GET', `/${kind}/${enc(key)}?position=${position}`);
      } catch (err) {
        if (!(err instanceof ApiError) || err.problem.status !== 404) throw err;
        missing = true;
      }
    }
    const root = mount('tpl-past');
    const now = `#/${kind}/${enc(key)}`;
    $('[data-crumb]', root).replaceChildren(el('a', { href: `#/${kind}`, text: author ? 'Authors' : 'Books' }));
    const name = state ? (author ? fullName(state) : state.title) : key;
    document.title = `${name}${position ? ` at position ${position}` : ''} · Books catalog`;
    $('[data-title]', root).textContent = name;
    const banner = $('[data-banner]', root);
    if (!position) {
      banner.append(el('strong', { text: `This ${noun} does not exist now.` }), ' ',
        `It was ${author ? 'deleted' : 'removed'}; its history is below, and each event shows how it was then.`);
    } else {
      banner.append(el('strong', { text: 'A past state, read-only.' }), ' ',
        missing
          ? `At position ${position} of its history this ${noun} did not exist.`
          : `This is how this ${noun} was at position ${position} of its history, version ${state.version}.`,
        ' ', el('a', { href: now, text: 'Back to now' }));
    }
    const meta = $('[data-meta]', root);
    const row = (dt, dd) => meta.append(el('dt', { text: dt }), el('dd', {}, dd));
    if (state && author) {
      row('Code', el('code', { text: state.code }));
      row('Version', String(state.version));
    } else if (state) {
      row('Author', state.authorCode ? el('a', { href: `#/authors/${enc(state.authorCode)}`, text: state.authorCode }) : 'none');
      row('Version', String(state.version));
      row('Id', el('code', { text: state.id }));
      $('[data-past-chapters]', root).hidden = false;
      $('[data-chapters-status]', root).textContent = state.chapters.length ? '' : 'No chapters then.';
      $('[data-chapters]', root).replaceChildren(...state.chapters.map((c) => el('li', {},
        el('article', { class: 'chapter' }, el('h3', { text: `${c.id}. ${c.title}` }), el('div', { class: 'content', text: c.content })))));
    } else {
      row(author ? 'Code' : 'Id', el('code', { text: key }));
    }
    const history = timeline(root, kind, key, position);
    current = { onEvent: history.onEvent };
  }

  // ---- views

  async function showAuthors(query) {
    const root = mount('tpl-authors');
    document.title = 'Authors · Books catalog';
    bindForm($('[data-form=create-author]', root), async (v) => {
      const a = await api('POST', '/authors', { body: { code: v.code, firstName: v.firstName, lastName: v.lastName } });
      go(`#/authors/${enc(a.code)}`, `Author ${fullName(a)} created.`);
    });
    await fillList(root, '/authors', query.get('after'),
      (a) => el('li', {}, el('a', { href: `#/authors/${enc(a.code)}`, text: fullName(a) }), ' ', el('code', { text: a.code })),
      '#/authors', 'No authors yet: create the first one below.');
  }

  async function showAuthor(code) {
    let author;
    try {
      author = await api('GET', `/authors/${enc(code)}`);
    } catch (err) {
      if (await deletedSince(err, 'authors', code)) return showPast('authors', code, 0);
      throw err;
    }
    const root = mount('tpl-author');
    const history = timeline(root, 'authors', code);
    let bookIds = new Set();
    const render = () => {
      document.title = `${fullName(author)} · Books catalog`;
      $('[data-name]', root).textContent = fullName(author);
      $('[data-code]', root).textContent = author.code;
      $('[data-version]', root).textContent = author.version;
      const form = $('[data-form=update-author]', root);
      form.elements.firstName.value = author.firstName;
      form.elements.lastName.value = author.lastName;
      $('[data-stale]', root).hidden = true;
    };
    const loadBooks = async () => {
      const status = $('[data-books-status]', root);
      try {
        const v = await api('GET', `/authors/${enc(code)}/books`);
        bookIds = new Set(v.books.map((b) => b.id));
        $('[data-books]', root).replaceChildren(...v.books.map((b) => el('li', {}, el('a', { href: `#/books/${enc(b.id)}`, text: b.title }))));
        status.textContent = v.books.length ? `${v.books.length} book${v.books.length === 1 ? '' : 's'}.` : 'No books yet.';
      } catch (err) {
        status.textContent = `Could not load the books: ${err.message}`;
      }
    };
    render();
    loadBooks();
    $('[data-refresh]', root).addEventListener('click', loadBooks);
    bindForm($('[data-form=update-author]', root), async (v) => {
      author = await api('PUT', `/authors/${enc(code)}`, { body: { firstName: v.firstName, lastName: v.lastName }, version: author.version });
      render();
      history.refresh();
      flash(`Saved: ${fullName(author)}, version ${author.version}.`);
    });
    bindForm($('[data-form=delete-author]', root), async () => {
      if (!window.confirm(`Delete the author ${fullName(author)}? Their books stay, without an author.`)) return;
      await api('DELETE', `/authors/${enc(code)}`, { version: author.version });
      go('#/authors', `Author ${fullName(author)} deleted.`);
    });
    let refresh;
    current = {
      onEvent(ev) {
        history.onEvent(ev);
        if (ev.topic.endsWith('.authors.events') && ev.key === code && ev.version > author.version) {
          staleNotice(root, `This author changed since you loaded it (${ev.type}, now version ${ev.version}); saving now would be refused.`);
        }
        if (ev.topic.endsWith('.books.events') && (bookIds.has(ev.key) || (ev.event && ev.event.authorCode === code))) {
          // The books-by-author read model follows the events a moment later.
          clearTimeout(refresh);
          refresh = setTimeout(() => { loadBooks(); refresh = setTimeout(loadBooks, 1500); }, 300);
        }
      },
    };
  }

  async function showBooks(query) {
    const root = mount('tpl-books');
    document.title = 'Books · Books catalog';
    loadAuthorCodes();
    const form = $('[data-form=create-book]', root);
    if (query.get('author')) form.elements.authorCode.value = query.get('author');
    bindForm(form, async (v) => {
      const body = { title: v.title };
      if (v.authorCode !== '') body.authorCode = v.authorCode;
      const b = await api('POST', '/books', { body });
      go(`#/books/${enc(b.id)}`, `Book “${b.title}” created.`);
    });
    await fillList(root, '/books', query.get('after'),
      (b) => el('li', {},
        el('a', { href: `#/books/${enc(b.id)}`, text: b.title }), ' ',
        b.authorCode ? el('span', { class: 'by' }, 'by ', el('a', { href: `#/authors/${enc(b.authorCode)}`, text: b.authorCode })) : el('span', { class: 'by', text: 'no author' })),
      '#/books', 'No books yet: create the first one below.');
  }

  async function showBook(id) {
    let book;
    try {
      book = await api('GET', `/books/${enc(id)}`);
    } catch (err) {
      if (await deletedSince(err, 'books', id)) return showPast('books', id, 0);
      throw err;
    }
    const root = mount('tpl-book');
    const history = timeline(root, 'books', id);
    loadAuthorCodes();
    // After this page's own writes: the timeline follows them even
    // without the live events.
    const reload = async () => {
      book = await api('GET', `/books/${enc(id)}`);
      render();
      history.refresh();
    };
    const render = () => {
      document.title = `${book.title} · Books catalog`;
      $('[data-title]', root).textContent = book.title;
      $('[data-author]', root).replaceChildren(book.authorCode
        ? el('a', { href: `#/authors/${enc(book.authorCode)}`, text: book.authorCode })
        : el('span', { text: 'none' }));
      $('[data-version]', root).textContent = book.version;
      $('[data-id]', root).textContent = book.id;
      $('[data-form=rename-book]', root).elements.title.value = book.title;
      $('[data-form=set-author]', root).elements.authorCode.value = book.authorCode || '';
      $('[data-chapters-status]', root).textContent = book.chapters.length ? '' : 'No chapters yet.';
      $('[data-chapters]', root).replaceChildren(...book.chapters.map(chapter));
      $('[data-stale]', root).hidden = true;
    };
    const chapter = (c) => {
      const li = $('#tpl-chapter').content.firstElementChild.cloneNode(true);
      $('[data-chapter-title]', li).textContent = `${c.id}. ${c.title}`;
      $('[data-content]', li).textContent = c.content;
      $('[data-remove]', li).textContent = `Remove chapter ${c.id}`;
      bindForm($('[data-form=remove-chapter]', li), async () => {
        await api('DELETE', `/books/${enc(id)}/chapters/${c.id}`, { version: book.version });
        await reload();
        flash(`Chapter ${c.id} removed.`);
      });
      return li;
    };
    render();
    bindForm($('[data-form=rename-book]', root), async (v) => {
      book = await api('PUT', `/books/${enc(id)}`, { body: { title: v.title }, version: book.version });
      render();
      history.refresh();
      flash(`Renamed to “${book.title}”.`);
    });
    const setAuthor = $('[data-form=set-author]', root);
    bindForm(setAuthor, async (v, submitter) => {
      const clear = submitter && submitter.hasAttribute('data-clear-author');
      book = await api('PUT', `/books/${enc(id)}/author`, { body: { authorCode: clear ? null : v.authorCode }, version: book.version });
      render();
      history.refresh();
      flash(book.authorCode ? `Author set to ${book.authorCode}.` : 'Author cleared.');
    });
    const addChapter = $('[data-form=add-chapter]', root);
    bindForm(addChapter, async (v) => {
      const c = await api('POST', `/books/${enc(id)}/chapters`, { body: { title: v.title, content: v.content }, version: book.version });
      addChapter.reset();
      await reload();
      flash(`Chapter ${c.id} added.`);
    });
    bindForm($('[data-form=remove-book]', root), async () => {
      if (!window.confirm(`Remove the book “${book.title}” and its chapters?`)) return;
      await api('DELETE', `/books/${enc(id)}`, { version: book.version });
      go('#/books', `Book “${book.title}” removed.`);
    });
    current = {
      onEvent(ev) {
        history.onEvent(ev);
        if (ev.topic.endsWith('.books.events') && ev.key === id && ev.version > book.version) {
          staleNotice(root, `This book changed since you loaded it (${ev.type}, now version ${ev.version}); saving now would be refused.`);
        }
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
    document.title = `${title} · Books catalog`;
    $('[data-title]', root).textContent = title;
    $('[data-detail]', root).textContent = detail;
  }

  // ---- routing: #/authors, #/authors/{code}, #/books, #/books/{id}, and
  // #/authors/{code}@{position}, #/books/{id}@{position}: a past state

  async function route(moveFocus) {
    const hash = location.hash.replace(/^#/, '');
    if (!hash.startsWith('/')) {
      if (!hash) location.replace('#/authors');
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
    try {
      if ((parts[0] === 'authors' || parts[0] === 'books') && past) await showPast(parts[0], decodeURIComponent(past[1]), Number(past[2]));
      else if (parts[0] === 'authors' && parts.length === 1) await showAuthors(query);
      else if (parts[0] === 'authors' && parts.length === 2) await showAuthor(parts[1]);
      else if (parts[0] === 'books' && parts.length === 1) await showBooks(query);
      else if (parts[0] === 'books' && parts.length === 2) await showBook(parts[1]);
      else showError('Not found', `There is no page at ${location.hash}.`);
    } catch (err) {
      const p = err instanceof ApiError ? err.problem : { title: 'Error', detail: String(err) };
      showError(p.status === 404 ? 'Not found' : p.title || 'Error', p.detail);
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

  function summary(ev) {
    const e = ev.event || {};
    switch (ev.type) {
      case 'AuthorCreated':
      case 'AuthorUpdated':
        return `${e.firstName} ${e.lastName}`;
      case 'BookCreated':
      case 'BookUpdated':
        return `“${e.title}”`;
      case 'BookAuthorSet':
        return e.authorCode ? `author ${e.authorCode}` : 'no author';
      case 'ChapterAdded':
        return `chapter ${e.chapterId}: ${e.title}`;
      case 'ChapterRemoved':
        return `chapter ${e.chapterId}`;
      default:
        return ev.error ? `undecodable: ${ev.error}` : '';
    }
  }

  // The events listed already, by place, so that the recent events a
  // stream sends again when it reconnects are listed once; bounded.
  const listed = new Set();

  function addEvent(ev) {
    const place = `${ev.topic}/${ev.partition}/${ev.offset}`;
    if (listed.has(place)) return;
    listed.add(place);
    if (listed.size > 4 * MAX_EVENTS) listed.delete(listed.values().next().value);
    const isAuthor = ev.topic.endsWith('.authors.events');
    const href = isAuthor ? `#/authors/${enc(ev.key)}` : `#/books/${enc(ev.key)}`;
    const when = ev.timestamp ? new Date(ev.timestamp) : new Date();
    const item = el('li', { class: `event ${isAuthor ? 'author' : 'book'}`, 'data-type': ev.type },
      el('p', { class: 'event-head' },
        el('strong', { text: ev.type || '(unknown)' }), ' ',
        el('a', { href, text: isAuthor ? ev.key : shortId(ev.key), title: ev.key })),
      el('p', { class: 'event-summary', text: summary(ev) }),
      el('p', { class: 'event-meta' },
        `v${ev.version}${ev.subject ? ` · by ${ev.subject}` : ''} · ${ev.topic} · `,
        el('time', { datetime: when.toISOString(), text: when.toLocaleTimeString() })),
      el('details', {},
        el('summary', { text: 'Record' }),
        el('pre', { text: JSON.stringify({ topic: ev.topic, partition: ev.partition, offset: ev.offset, key: ev.key, msgId: ev.msgId, subject: ev.subject, version: ev.version, position: ev.position, event: ev.event, error: ev.error }, null, 2) })));
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
