"""The guide page (docs/guide/index.md): the decision diagram and the evidence for each branch,
all read at build time from the committed results of snippets/guide/experiment_run.py."""

# --8<-- [start:load]
import sys
from html import escape
from pathlib import Path

# experiment_report.py is in this file's folder, imported from the snippets root. The site runs
# this code from the repository root, where __file__ is not set.
here = Path(globals().get("__file__", "snippets/guide/index.py")).resolve().parent
sys.path.insert(0, str(here.parent))  # the snippets root
from guide import experiment_report as lc  # noqa: E402

results = lc.load()
print(lc.provenance(results))
# --8<-- [end:load]

# --8<-- [start:diagram]
# The decision flow. Questions are numbered; the page states each one in the reader's language,
# so the diagram holds only numbers, symbols, loss names and measured values. A cue is a list
# of (text, "" | "sub" | "sup") pieces. Evidence is a list of (regime, metric, [losses]): the
# mean over seeds of each loss is printed after CE's, in the order of the names in the box.
FLOW = [
    {"q": "Q1", "cue": [("y ∈ {0,1}", ""), ("C", "sup")], "href": "#multi-label",
     "leaf": ["BCEWithLogitsLoss"], "evidence": []},
    {"q": "Q2", "cue": [("f(x) ∈ ℝ", ""), ("d", "sup")], "href": "#embeddings",
     "leaf": ["NCA · soft NN", "CosFace · ArcFace"], "evidence": []},
    {"q": "Q3", "cue": [("ỹ ≠ y", "")], "href": "#noisy-labels",
     "leaf": ["GCE · SCE"], "evidence": [("noisy", "accuracy", ["gce", "sce"])]},
    {"q": "Q4", "cue": [("n", ""), ("max", "sub"), (" / n", ""), ("min", "sub"), (" ≫ 1", "")],
     "href": "#imbalanced", "leaf": ["post-hoc LA", "≈ LA loss ≈ 1/n weights"],
     "evidence": [("long_tailed", "balanced_accuracy", ["posthoc_la", "logit_adjusted"])]},
    {"q": "Q5", "cue": [("p̂ ≈ acc", "")], "href": "#calibration",
     "leaf": ["CE + LS 0.1", "+ temperature scaling"],
     "evidence": [("balanced", "nll_ts", ["label_smoothing"])]},
]  # fmt: skip
DEFAULT = {"href": "#balanced-and-clean", "leaf": ["CE + LS 0.1"],
           "evidence": [("balanced", "accuracy", ["label_smoothing"])]}  # fmt: skip
LINE = 19  # line height in SVG units
TEXT = "fill: var(--md-typeset-color)"  # the page's text color, light or dark scheme
INK = "var(--md-default-fg-color--light)"  # lines and borders


def evidence_lines(evidence, characters) -> list[str]:
    """Lines such as 'acc: CE .834' and 'GCE .942 · SCE .941', from the committed results;
    one line per metric where it holds at most this many characters."""
    lines = []
    for regime, metric, losses in evidence:

        def value(loss, regime=regime, metric=metric):
            return f"{lc.mean(results, regime, loss, metric):.3f}".removeprefix("0")

        first = f"{lc.METRIC_LABELS[metric]}: CE {value('ce')}"
        others = " · ".join(f"{lc.SHORT_NAMES[loss]} {value(loss)}" for loss in losses)
        one = f"{first} · {others}"
        lines += [one] if len(one) <= characters else [first, others]
    return lines


def text(x, y, pieces, size, bold=False) -> str:
    """Centered text; pieces are (text, "" | "sub" | "sup")."""
    spans, shift = [], 0
    for content, kind in pieces:
        target = {"": 0, "sub": 3, "sup": -5}[kind]
        font = f' font-size="{size - 3}"' if kind else ""
        spans.append(f'<tspan dy="{target - shift}"{font}>{escape(content)}</tspan>')
        shift = target
    weight = "700" if bold else "400"
    return (
        f'<text x="{x}" y="{y}" text-anchor="middle" font-size="{size}" font-weight="{weight}" '
        f'style="{TEXT}">{"".join(spans)}</text>'
    )


def box(x, y, width, lines, href, leaf) -> tuple[str, float]:
    """A rounded box linking to a section, with lines of (pieces, size, bold); returns the SVG
    and the box's height."""
    height = max(54, LINE * len(lines) + 14)
    fill = "var(--md-default-bg-color)" if leaf else "var(--md-code-bg-color)"
    stroke = "var(--md-primary-fg-color)" if leaf else INK
    svg = [
        f'<a href="{href}"><rect x="{x}" y="{y}" width="{width}" height="{height}" rx="8" '
        f'style="fill: {fill}; stroke: {stroke}; stroke-width: 1.5"/>'
    ]
    top = y + (height - LINE * len(lines)) / 2 + 14
    for i, (pieces, size, bold) in enumerate(lines):
        svg.append(text(x + width / 2, top + LINE * i, pieces, size, bold))
    return "".join(svg) + "</a>", height


def arrow(x1, y1, x2, y2, label) -> str:
    """A line with an arrowhead, labeled ✓ (yes) above or ✗ (no) to its right."""
    across = y1 == y2
    lx, ly = ((x1 + x2) / 2, y1 - 6) if across else (x1 + 8, (y1 + y2) / 2 + 5)
    return (
        f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" style="stroke: {INK}" '
        f'stroke-width="1.5" marker-end="url(#loss-flow-head)"/>'
        f'<text x="{lx}" y="{ly}" text-anchor="{"middle" if across else "start"}" '
        f'font-size="15" font-weight="700" style="{TEXT}">{label}</text>'
    )


def leaf_lines(node, characters):
    lines = [([(name, "")], 14, True) for name in node["leaf"]]
    lines += [([(line, "")], 12.5, False) for line in evidence_lines(node["evidence"], characters)]
    return lines


def flow_svg(flow, default) -> str:
    """The decision diagram as inline SVG: questions on the left, their answers on the right."""
    width, q_x, q_width, leaf_x, gap = 400, 4, 124, 162, 30
    items, y = [], 4
    for node in flow:
        leaf, leaf_height = box(
            leaf_x, y, width - leaf_x - 4, leaf_lines(node, 32), node["href"], True
        )
        q_y = y + (leaf_height - 54) / 2
        question = [([(node["q"], "")], 15, True), (node["cue"], 13.5, False)]
        items += [box(q_x, q_y, q_width, question, node["href"], False)[0], leaf]
        middle = q_y + 27
        items.append(arrow(q_x + q_width, middle, leaf_x - 2, middle, "✓"))
        y += leaf_height + gap
        items.append(arrow(q_x + q_width / 2, q_y + 54, q_x + q_width / 2, y - 2, "✗"))
    last, last_height = box(q_x, y, width - 8, leaf_lines(default, 56), default["href"], True)
    items.append(last)
    height = y + last_height + 4
    title = "; ".join(f"{n['q']} ✓ {' · '.join(n['leaf'])}" for n in flow)
    return (
        '<div class="loss-flow" style="overflow-x: auto">'
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="group" '
        'style="display: block; margin: 0 auto; width: 100%; max-width: 560px; '
        'min-width: 340px; height: auto" aria-labelledby="loss-flow-title">'
        f'<title id="loss-flow-title">{escape(title)}; ✗ {" · ".join(default["leaf"])}</title>'
        '<defs><marker id="loss-flow-head" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" style="fill: var(--md-default-fg-color--light)"/>'
        "</marker></defs>" + "".join(items) + "</svg></div>"
    )


print(flow_svg(FLOW, DEFAULT))
# --8<-- [end:diagram]

# --8<-- [start:noisy]
LOSSES = ["ce", "label_smoothing", "focal", "poly1", "ldam_drw", "gce", "sce"]
print(lc.table(results, "noisy", LOSSES, ["accuracy", "nll", "ece", "train_accuracy"]))
# --8<-- [end:noisy]

# --8<-- [start:noisy_curves]
LOSSES = ["ce", "label_smoothing", "focal", "gce", "sce"]
print(lc.accuracy_curves(results, "noisy", LOSSES, salt="guide-noisy"))
# --8<-- [end:noisy_curves]

# --8<-- [start:imbalanced]
LOSSES = ["ce", "weighted_ce", "class_balanced", "logit_adjusted", "posthoc_la", "cosine_ce"]
LOSSES += ["ldam_drw", "label_smoothing", "focal", "poly1", "gce"]
print(lc.table(results, "long_tailed", LOSSES, ["balanced_accuracy", "macro_f1"]))
# --8<-- [end:imbalanced]

# --8<-- [start:imbalanced_ties]
TOP = ["logit_adjusted", "posthoc_la", "weighted_ce", "class_balanced", "label_smoothing"]
print(lc.pairwise_table(results, "long_tailed", "balanced_accuracy", TOP))
# --8<-- [end:imbalanced_ties]

# --8<-- [start:imbalanced_recall]
LOSSES = ["ce", "weighted_ce", "logit_adjusted", "posthoc_la", "ldam_drw"]
print(lc.per_class_recall(results, "long_tailed", LOSSES, salt="guide-recall"))
# --8<-- [end:imbalanced_recall]

# --8<-- [start:calibration]
LOSSES = ["ce", "label_smoothing", "focal", "poly1", "cosine_ce", "sce"]
METRICS = ["temperature", "nll", "nll_ts", "ece", "ece_ts"]
print(lc.table(results, "balanced", LOSSES, METRICS))
# --8<-- [end:calibration]

# --8<-- [start:calibration_diagrams]
LOSSES = ["ce", "label_smoothing", "focal", "poly1"]
print(lc.reliability_diagrams(results, "balanced", LOSSES, salt="guide-reliability", with_ts=True))
# --8<-- [end:calibration_diagrams]

# --8<-- [start:balanced]
print(lc.table(results, "balanced", list(results["losses"]), ["accuracy", "nll_ts", "ece_ts"]))
# --8<-- [end:balanced]

# --8<-- [start:no_gain]
print(lc.gain_table(results))
# --8<-- [end:no_gain]
