() => {
  const content = document.querySelector('.md-content') || document.body;
  const skip = 'pre, code, script, style, textarea, .katex, .highlight, .highlight-ipynb';
  const walker = document.createTreeWalker(content, NodeFilter.SHOW_TEXT);
  const raw = new RegExp([
    String.raw`\\[()[\]]`,  // \( \) \[ \] delimiters
    String.raw`\$\$`,  // display delimiters
    String.raw`\\(?:frac|sum|log|exp|mathrm|operatorname|left|right|begin|end)\b`,  // commands
    String.raw`(?:^|[^\w$])\$[^$\s][^$]*\$`,  // $inline$
  ].join('|'));
  const leftovers = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.parentElement || node.parentElement.closest(skip)) continue;
    const text = node.textContent;
    if (raw.test(text)) leftovers.push(text.trim().slice(0, 120));
  }
  const math = [...content.querySelectorAll('.arithmatex')];
  return {
    arithmatex: math.length,
    unrendered: math.filter(el => !el.querySelector('.katex')).length,
    katex: content.querySelectorAll('.katex').length,
    errors: [...content.querySelectorAll('.katex-error')].map(el => el.textContent.slice(0, 120)),
    leftovers: leftovers.slice(0, 10),
  };
}
