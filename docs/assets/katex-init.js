// Render the formulas that pymdownx.arithmatex (pages) and nbconvert (notebooks) leave as TeX.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "\\[", right: "\\]", display: true },
      { left: "\\(", right: "\\)", display: false },
      { left: "$", right: "$", display: false },
    ],
    throwOnError: true,
  });
  fixAccessibility(body);
});

// Accessibility fixes for markup we do not write ourselves (checked by axe-core in
// tests/browser/test_pages.py). Kept here because this script runs on every page after
// Material's own.
function fixAccessibility(body) {
  // Material's search overlay has role="dialog" but no accessible name: name it after the
  // search field, whose label Material translates ("検索" / "Search").
  const dialog = body.querySelector(".md-search[role=dialog]");
  const field = body.querySelector(".md-search__input");
  if (dialog && field && !dialog.hasAttribute("aria-label")) {
    dialog.setAttribute("aria-label", field.getAttribute("aria-label") || field.placeholder);
  }
  // A region that scrolls sideways (a wide formula, notebook code or output, a wide table)
  // must be reachable with the keyboard to be scrolled without a mouse. Material does this
  // for its own code blocks on devices with a mouse only.
  const scrollers = ".katex-display, .highlight-ipynb, .jp-OutputArea-output pre, " +
    ".md-typeset__scrollwrap, .highlight pre > code";
  const update = () => {
    for (const el of body.querySelectorAll(scrollers)) {
      const scrolls = el.scrollWidth > el.clientWidth + 1;
      if (scrolls && !el.hasAttribute("tabindex")) {
        el.setAttribute("tabindex", "0");
        el.dataset.scrollFocus = "";
      } else if (!scrolls && el.dataset.scrollFocus !== undefined) {
        el.removeAttribute("tabindex");
        delete el.dataset.scrollFocus;
      }
    }
  };
  update();
  let pending = 0;
  window.addEventListener("resize", () => {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(update);
  });
}
