() => {
  const root = document.scrollingElement;
  const width = root.clientWidth;
  const describe = (el) => {
    let name = el.tagName.toLowerCase();
    if (el.id) name += '#' + el.id;
    if (el.classList.length) name += '.' + [...el.classList].slice(0, 3).join('.');
    const box = el.getBoundingClientRect();
    return `${name} (right edge at ${Math.round(box.right)} px)`;
  };
  const clips = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (style.overflowX !== 'visible' || style.position === 'fixed') return true;
    }
    return false;
  };
  const offenders = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.right <= width + 1) continue;
    if (getComputedStyle(el).position === 'fixed' || clips(el)) continue;
    const parent = el.parentElement;
    if (parent && parent !== document.body && parent.getBoundingClientRect().right > width + 1
        && !clips(parent)) continue;  // report the outermost element that sticks out
    offenders.push(describe(el));
  }
  return {
    lang: document.documentElement.getAttribute('lang') || '',
    scrollWidth: root.scrollWidth,
    clientWidth: width,
    overflowing: offenders.slice(0, 10),
  };
}
