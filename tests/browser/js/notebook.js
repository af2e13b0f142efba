async () => {
  const content = document.querySelector('.md-content') || document.body;
  const outputs = [...content.querySelectorAll('.jp-OutputArea-output')];
  const links = [...document.querySelectorAll('a[href$=".ipynb"]')];
  const downloads = [];
  for (const link of links) {
    const entry = {href: link.href, visible: link.getClientRects().length > 0};
    try {
      const response = await fetch(link.href);
      entry.status = response.status;
      const notebook = JSON.parse(await response.text());
      entry.cells = Array.isArray(notebook.cells) ? notebook.cells.length : null;
    } catch (error) {
      entry.error = String(error);
    }
    downloads.push(entry);
  }
  return {
    outputs: outputs.length,
    visible_outputs: outputs.filter(el => el.getClientRects().length > 0 && el.textContent.trim()
                                         || el.querySelector('img, svg')).length,
    downloads,
  };
}
