async ([selector, skip]) => {
  const copies = [];
  for (const [index, button] of [...document.querySelectorAll(selector)].entries()) {
    const sentinel = `nothing copied by copy button ${index}`;
    const target = button.dataset.clipboardTarget || '';
    if (index === skip) { copies.push({target, sentinel}); continue; }
    await navigator.clipboard.writeText(sentinel);
    button.click();
    copies.push({target, sentinel, copied: await navigator.clipboard.readText()});
  }
  return copies;
}
