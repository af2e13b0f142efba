() => {
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
  };
  const shown = (el) => {
    const style = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return style.display !== 'none' && style.visibility !== 'hidden' && r.width > 0
      && r.height > 0;
  };
  const names = [...document.querySelectorAll('.md-header__topic:first-child .md-ellipsis')]
    .filter(shown)
    .map(el => ({text: el.textContent.trim(), scrollWidth: el.scrollWidth,
                 clientWidth: el.clientWidth, box: box(el)}));
  const sidebar = document.querySelector('.md-sidebar--primary .md-sidebar__scrollwrap');
  const title = document.querySelector('.md-nav--primary > .md-nav__title');
  let entries = [];
  if (sidebar && title && shown(title) && shown(sidebar)) {
    const visible = box(sidebar);
    entries = [...document.querySelectorAll('.md-nav--primary .md-nav__link')]
      .filter(shown)
      .map(el => ({text: el.textContent.trim().slice(0, 60), box: box(el)}))
      .filter(e => e.box.bottom > visible.top && e.box.top < visible.bottom);
  }
  return {
    header_names: names,
    sidebar_title: title && shown(title)
      ? {text: title.textContent.trim(), box: box(title)} : null,
    sidebar_entries: entries,
  };
}
