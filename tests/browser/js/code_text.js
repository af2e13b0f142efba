(selector) => {
  const code = document.querySelector(selector);
  if (!code) return null;
  const copy = code.cloneNode(true);
  copy.querySelectorAll('.md-annotation, .linenos, .linenodiv').forEach(el => el.remove());
  return copy.textContent;
}
