// The catalog's own views, added to the generic page (see package web's
// app.js): an author's books under the author, and the books with their
// author and chapters. Loaded before the page's script, it registers
// them on window.pageExtensions.
'use strict';

(window.pageExtensions = window.pageExtensions || []).push((kit) => {
  const { $, el, enc, api, bindForm, fillList, flash, go, mount, staleNotice, timeline, deletedSince, app } = kit;

  const authorName = (a) => kit.label(kit.aggregate('authors'), a);

  // loadAuthorCodes offers the authors' codes in the book forms.
  async function loadAuthorCodes() {
    try {
      const page = await api('GET', '/authors?limit=200');
      $('#author-codes').replaceChildren(...page.items.map((a) => el('option', { value: a.code }, authorName(a))));
    } catch {
      // Only a convenience: typing the code works without it.
    }
  }

  const authorLink = (code) => el('a', { href: `#/authors/${enc(code)}`, text: code });

  // An author's books, from the books-by-author read model, under the
  // author's details.
  function authorBooks(box, ctx) {
    box.replaceChildren($('#tpl-author-books').content.cloneNode(true));
    const code = ctx.key;
    let bookIds = new Set();
    const loadBooks = async () => {
      const status = $('[data-books-status]', box);
      try {
        const v = await api('GET', `/authors/${enc(code)}/books`);
        bookIds = new Set(v.books.map((b) => b.id));
        $('[data-books]', box).replaceChildren(...v.books.map((b) => el('li', {}, el('a', { href: `#/books/${enc(b.id)}`, text: b.title }))));
        status.textContent = v.books.length ? `${v.books.length} book${v.books.length === 1 ? '' : 's'}.` : 'No books yet.';
      } catch (err) {
        status.textContent = `Could not load the books: ${err.message}`;
      }
    };
    loadBooks();
    $('[data-refresh]', box).addEventListener('click', loadBooks);
    let refresh;
    return {
      onEvent(ev) {
        if (ev.aggregate === 'books' && (bookIds.has(ev.key) || (ev.event && ev.event.authorCode === code))) {
          // The books-by-author read model follows the events a moment later.
          clearTimeout(refresh);
          refresh = setTimeout(() => { loadBooks(); refresh = setTimeout(loadBooks, 1500); }, 300);
        }
      },
    };
  }

  async function showBooks(query) {
    const root = mount('tpl-books');
    document.title = `Books · ${app.title}`;
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
        b.authorCode ? el('span', { class: 'by' }, 'by ', authorLink(b.authorCode)) : el('span', { class: 'by', text: 'no author' })),
      '#/books', 'No books yet: create the first one below.');
  }

  async function showBook(id) {
    const books = kit.aggregate('books');
    let book;
    try {
      book = await api('GET', `/books/${enc(id)}`);
    } catch (err) {
      if (await deletedSince(err, books, id)) return kit.showPast('books', id, 0);
      throw err;
    }
    const root = mount('tpl-book');
    const history = timeline(root, books, id);
    loadAuthorCodes();
    // After this page's own writes: the timeline follows them even
    // without the live events.
    const reload = async () => {
      book = await api('GET', `/books/${enc(id)}`);
      render();
      history.refresh();
    };
    const render = () => {
      document.title = `${book.title} · ${app.title}`;
      $('[data-title]', root).textContent = book.title;
      $('[data-author]', root).replaceChildren(book.authorCode ? authorLink(book.authorCode) : el('span', { text: 'none' }));
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
    kit.setCurrent({
      onEvent(ev) {
        history.onEvent(ev);
        if (ev.aggregate === 'books' && ev.key === id && ev.version > book.version) {
          staleNotice(root, `This book changed since you loaded it (${ev.type}, now version ${ev.version}); saving now would be refused.`);
        }
      },
    });
  }

  return {
    authors: { sections: authorBooks },
    books: {
      list: showBooks,
      detail: showBook,
      pastMeta(state, row) {
        row('Author', state.authorCode ? authorLink(state.authorCode) : 'none');
        row('Version', String(state.version));
        row('Id', el('code', { text: state.id }));
      },
      pastExtra(box, state) {
        box.replaceChildren($('#tpl-past-chapters').content.cloneNode(true));
        $('[data-chapters-status]', box).textContent = state.chapters.length ? '' : 'No chapters then.';
        $('[data-chapters]', box).replaceChildren(...state.chapters.map((c) => el('li', {},
          el('article', { class: 'chapter' }, el('h3', { text: `${c.id}. ${c.title}` }), el('div', { class: 'content', text: c.content })))));
      },
    },
  };
});
