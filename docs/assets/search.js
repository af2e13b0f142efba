// The site's search box (hooks/theme/partials/search.html), answered by Pagefind.
//
// Pagefind (hooks/search_pagefind.py) indexes every built page under the language of its
// <html lang>; pagefind.js loads the index of the language of the page it runs on, so a reader
// on the English site gets English pages only. The results are drawn with Material's own
// classes. A search runs on every `input` event, which the browser fires for typed keys, for
// text committed by an input method (Japanese), for a paste and for a phone's keyboard alike:
// no key press is needed.
(() => {
  "use strict";
  const box = document.querySelector("[data-site-search]");
  if (!box) return;
  const toggle = document.getElementById("__search");
  const form = box.querySelector("form");
  const input = box.querySelector(".md-search__input");
  const result = box.querySelector(".md-search-result");
  const meta = box.querySelector(".md-search-result__meta");
  const list = box.querySelector(".md-search-result__list");
  const bundle = new URL(box.dataset.bundle, document.baseURI);
  const MAX_PAGES = 10;
  const MAX_SECTIONS = 3;
  const HIGHLIGHT = "highlight";
  const META_WEIGHTS = { names: 20, keys: 10, topics: 3 };
  const PAGE_LENGTH = 0.5; // Pagefind: 0.75; the value measured with the metadata fields

  let engine = null; // the promise of the initialised pagefind module
  const load = () => {
    if (!engine) {
      engine = import(new URL("pagefind.js", bundle).href).then(async (pagefind) => {
        await pagefind.options({
          // Result URLs are relative to the site root, wherever the site is hosted.
          baseUrl: new URL("..", bundle).pathname,
          excerptLength: 24,
          highlightParam: HIGHLIGHT,
          // hooks/search_pagefind.py's metadata fields: what a page is (its title and the
          // glossary's names for what its title names), what its sections treat.
          // (The title is one of the keys: its own weight would count it twice.)
          ranking: { pageLength: PAGE_LENGTH, metaWeights: { title: 0, ...META_WEIGHTS } },
        });
        await pagefind.init();
        return pagefind;
      });
    }
    return engine;
  };

  const count = (n) => {
    if (n === 0) return box.dataset.resultNone;
    if (n === 1) return box.dataset.resultOne;
    return box.dataset.resultOther.replace("#", String(n));
  };

  const element = (tag, attributes = {}, html = null) => {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
    if (html !== null) el.innerHTML = html; // Pagefind's excerpts: escaped text and <mark>
    return el;
  };
  const escape = (text) => {
    const el = document.createElement("span");
    el.textContent = text;
    return el.innerHTML;
  };

  // The words a result link asks its page to mark: the query's own words, as typed (Pagefind
  // would pass the pieces its segmenter cut them into, 用語 and 集 for 用語集).
  const highlighted = (url, words) => {
    const target = new URL(url, location.href);
    target.searchParams.delete(HIGHLIGHT);
    for (const word of words) target.searchParams.append(HIGHLIGHT, word);
    return target.pathname + target.search + target.hash;
  };

  // A mark that stops inside a Latin word grows to the whole word: the Japanese index cuts
  // label_smoothing into label, _ and smoothing, so Pagefind's excerpt marks "label" alone.
  const WORD_CHARS = "[A-Za-z0-9_]";
  const partial = new RegExp(`(${WORD_CHARS}*)<mark>([^<]*)</mark>(${WORD_CHARS}*)`, "g");
  const wholeWords = (excerpt) =>
    excerpt
      .replace(partial, (all, before, marked, after) => `<mark>${before}${marked}${after}</mark>`)
      .replaceAll("</mark><mark>", "");

  const render = (query, pages, total) => {
    const words = query.split(/\s+/).filter(Boolean);
    const items = pages.map((page) => {
      const item = element("li", { class: "md-search-result__item" });
      const link = element("a", { href: highlighted(page.url, words), class: "md-search-result__link", tabindex: "-1" });
      const article = element("article", {
        class: "md-search-result__article md-search-result__article--document md-typeset",
      });
      article.append(element("div", { class: "md-search-result__icon md-icon" }));
      article.append(element("h1", {}, escape(page.meta.title || page.url)));
      article.append(element("p", {}, wholeWords(page.excerpt)));
      link.append(article);
      item.append(link);
      const sections = (page.sub_results || [])
        .filter((sub) => sub.anchor)
        .sort((a, b) => b.weighted_locations.length - a.weighted_locations.length)
        .slice(0, MAX_SECTIONS);
      for (const section of sections) {
        const sublink = element("a", {
          href: highlighted(section.url, words),
          class: "md-search-result__link", tabindex: "-1" });
        const sub = element("article", { class: "md-search-result__article md-typeset" });
        sub.append(element("h2", {}, escape(section.title)));
        sub.append(element("p", {}, wholeWords(section.excerpt)));
        sublink.append(sub);
        item.append(sublink);
      }
      return item;
    });
    list.replaceChildren(...items);
    meta.textContent = count(total);
    result.dataset.query = query; // what the list shows the results of (read by the tests)
  };

  let latest = 0;
  const search = async () => {
    const query = input.value.normalize("NFKC").trim();
    const ticket = ++latest;
    if (!query) {
      list.replaceChildren();
      meta.textContent = box.dataset.resultPlaceholder;
      result.dataset.query = "";
      return;
    }
    try {
      const pagefind = await load();
      const found = await pagefind.search(query);
      if (ticket !== latest) return; // a later query has started
      const pages = await Promise.all(found.results.slice(0, MAX_PAGES).map((r) => r.data()));
      if (ticket !== latest) return;
      render(query, pages, found.results.length);
    } catch (error) {
      meta.textContent = String(error);
      throw error;
    }
  };

  const open = () => {
    if (!toggle.checked) toggle.click();
    input.focus();
    input.select();
  };
  const close = () => {
    if (toggle.checked) toggle.click();
    input.blur();
  };

  input.addEventListener("input", search);
  input.addEventListener("compositionend", search);
  input.addEventListener("focus", () => {
    load();
    if (!toggle.checked) toggle.click(); // opens the result list, as Material's search does
  });
  form.addEventListener("reset", () => setTimeout(() => { search(); input.focus(); }));
  form.addEventListener("submit", (event) => event.preventDefault());
  toggle.addEventListener("change", () => {
    if (toggle.checked) {
      load();
      input.focus();
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.isComposing || event.keyCode === 229) return; // the input method's own keys
    const target = event.target;
    const typing = target instanceof HTMLElement &&
      (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    if (!toggle.checked) {
      if (!typing && !event.ctrlKey && !event.metaKey && !event.altKey &&
          ["f", "s", "/"].includes(event.key)) {
        event.preventDefault();
        open();
      }
      return;
    }
    const links = [input, ...list.querySelectorAll(".md-search-result__link")];
    const at = links.indexOf(document.activeElement);
    switch (event.key) {
      case "Escape":
      case "Tab":
        close();
        break;
      case "Enter":
        if (document.activeElement === input && links.length > 1) {
          event.preventDefault();
          links[1].click();
        }
        break;
      case "ArrowDown":
      case "ArrowUp": {
        event.preventDefault();
        const step = event.key === "ArrowUp" ? -1 : 1;
        links[(Math.max(0, at) + step + links.length) % links.length].focus();
        break;
      }
    }
  });
  list.addEventListener("click", (event) => {
    if (event.target instanceof Element && event.target.closest("a")) close();
  });

  // A page reached from a result: mark the searched words (Pagefind adds them to the link).
  if (new URLSearchParams(location.search).has(HIGHLIGHT)) {
    const script = document.createElement("script"); // a classic script: window.PagefindHighlight
    script.src = new URL("pagefind-highlight.js", bundle).href;
    script.addEventListener("load", () => {
      // Material's own style for <mark>; English words only where a whole word matches (not
      // "loss" inside CrossEntropyLoss); Japanese, written without spaces, wherever it occurs.
      const english = document.documentElement.lang !== "ja";
      const accuracy = english ? { value: "exactly", limiters: [...",.;:!?()[]{}'\"`/"] } : "partially";
      new window.PagefindHighlight({
        highlightParam: HIGHLIGHT,
        markContext: ".md-content__inner",
        markOptions: { className: "search-highlight", accuracy },
        addStyles: false,
      });
    });
    document.head.append(script);
  }
})();
