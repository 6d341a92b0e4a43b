"""Write notebooks/reproduce_<name>.ipynb, one per artefact of wtal_kit.experiments (and the two reports).

    .venv/bin/python notebooks/make_reproduction_notebooks.py

The notebooks are thin: a parameters cell (papermill), ``import wtal_kit`` and ``import widgets``,
then library calls. They are committed without outputs; tests/test_reproduction.py checks that
the committed files equal what :func:`build` writes, so edit this script, not the notebooks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from wtal_kit import experiments  # noqa: E402  (after the path: the script runs from a checkout)

PARAMETERS = '''mode = "small"
seeds = [0, 1, 2]
store = "runs/store"
workers = 1
device = "auto"
features = None
activitynet_features = None
output_dir = "reports/small"'''

PAPER = ('Islam & Radke, "Weakly Supervised Temporal Action Localization Using Deep Metric Learning" '
         "(WACV 2020)")
WHAT = {
    "table1": "the paper's Table 1 (the full method on THUMOS14; the other methods' printed rows beside it)",
    "table2": "the paper's Table 2 (the full method on ActivityNet1.2; the other methods' printed rows beside it)",
    "table3": "the paper's Table 3 (BBCE alone, + contrastive, + triplet)",
    "table4": "the paper's Table 4 (with and without block-based processing)",
    "table5": "the paper's Table 5 (the clipping threshold κ: none, 2, 3, 4, 5, 10)",
    "figure2": "the paper's Figure 2 (BCE / Softmax-MIL / BBCE, each with the triplet loss)",
    "figure3": "the paper's Figure 3 (cosine / Euclidean / custom / class-specific distance)",
    "figure4a": "the paper's Figure 4a (average mAP against k at block size 60)",
    "figure4b": "the paper's Figure 4b (average mAP against the block size, k = 6 % of the block)",
    "figure5": "the paper's Figure 5 (stacked timelines of Hammer Throw, Long Jump, Cliff Diving and Golf Swing)",
    "claims": "a check of every conclusion the paper draws from its ablations (Tables 3-5, Figures 2-4)",
    "audit": "an audit of the evaluation protocol on the Table 1 models (not in the paper)",
}
HONESTY = (
    "**On the embedded synthetic benchmark (the default: `features = None`), the numbers here are not "
    "THUMOS14 or ActivityNet1.2 results.** The benchmark has the datasets' layout (videos, classes, "
    "annotations) with synthetic features; every table row and figure says where its numbers come from "
    "(dataset, features, mode, protocol, seeds). Published numbers are the paper's single runs on real "
    "I3D features and are labelled \"published\". In `smoke` mode the numbers are noise (a test of the "
    "machinery); `small` trains a small model on CPU (800 iterations, d = 256); `paper` uses the paper's "
    "settings (real features with `features=...`)."
)
CLAIMS_RULE = (
    "How to read the verdicts: for each seed, the difference in average mAP (points) between the two "
    "variants trained with that seed; *measured* is the mean of these paired differences ± their standard "
    "deviation. **agrees**: mean > 2 × standard error (SE = std / √seeds); **disagrees**: mean < −2 × SE; "
    "**cannot tell**: within that, or one seed only; **not run**: a variant has no result. \"X is best\" "
    "agrees when X has the highest mean and beats every other value beyond the spread, disagrees when "
    "another value beats X beyond the spread. The rule is a rough screen (with 3 seeds, about 82 % "
    "two-sided confidence), and nothing is tuned toward a claim. See `docs/reproduction.md`."
)
AUDIT_TEXT = (
    "The same trained models (every seed of the full method, Table 1's runs) scored with each choice the "
    "paper's and the released code's numbers can differ by: (a) the paper's localization with ActivityNet "
    "interpolated AP (the default everywhere else); (b) the authors' released localization (midpoint "
    "threshold on raw logits, ambiguous intervals filtered); (c) W-TALC's non-interpolated AP; (b+c) both; "
    "(d) the checkpoint with the best *test* mAP@0.5 + mAP@0.7 in the training log (the released code's "
    "model selection) against the last one. *change from (a)* is the mean ± std over seeds of each seed's "
    "change, in mAP points."
)


def _cell_id(name: str, index: int) -> str:
    return f"{name}-{index}"


def _sources(name: str) -> list[tuple[str, str, list]]:
    """(kind, source, tags) of each cell after the title."""
    out = 'out = pathlib.Path(output_dir)\nout.mkdir(parents=True, exist_ok=True)'
    keywords = "features=features, activitynet_features=activitynet_features, device=device"
    cells = [
        ("code", PARAMETERS, ["parameters"]),
        ("code", f"import pathlib\n\nimport wtal_kit\nimport widgets\n\n{out}", []),
        ("code", f'summary = wtal_kit.experiments.run_artefacts(\n    ["{name}"], mode, seeds, store, {keywords},\n'
                 f'    workers=workers)\nprint("grid:", summary.line())', []),
    ]
    collect = (f'results = wtal_kit.experiments.collect(\n    "{{source}}", mode, seeds, store, {keywords})\n'
               'print(results.label())\nprint("missing runs (variant, seed):", results.missing)')
    if name in ("table1", "table2"):
        cells += [("code", collect.format(source=name), []),
                  ("code", f'table = wtal_kit.experiments.with_published(results, other_methods=True)\n'
                           f'table.to_csv(out / "{name}.csv", index=False)\nwtal_kit.experiments.readable(table)', [])]
    elif name.startswith("table"):
        cells += [("code", collect.format(source=name), []),
                  ("code", f'table = wtal_kit.experiments.with_published(results)\n'
                           f'table.to_csv(out / "{name}.csv", index=False)\nwtal_kit.experiments.readable(table)', [])]
    elif name in ("figure2", "figure3", "figure4a", "figure4b"):
        cells += [("code", collect.format(source=name), []),
                  ("code", f'table = wtal_kit.experiments.summary_table(results)\n'
                           f'table.to_csv(out / "{name}.csv", index=False)\nwtal_kit.experiments.readable(table)', []),
                  ("code", f'figure = widgets.figures.paper_figure(results)\n'
                           f'widgets.figures.save_figure(figure, out / "{name}")\n'
                           f'page = widgets.figures.write_html(widgets.figures.interactive_figure(results), '
                           f'out / "{name}_interactive.html")\n'
                           f'print("interactive version:", page)\nwidgets.figures.show(figure)', [])]
    elif name == "figure5":
        cells += [("code", collect.format(source=name), []),
                  ("code", 'views = wtal_kit.experiments.figure5_views(results)\n'
                           'table = wtal_kit.experiments.figure5_table(views, results)\n'
                           'table.to_csv(out / "figure5.csv", index=False)\ntable', []),
                  ("code", 'figure = widgets.figures.timelines(views, wtal_kit.experiments.figure5_label(results))\n'
                           'widgets.figures.save_figure(figure, out / "figure5")\n'
                           'page = widgets.figures.write_html(\n    widgets.figures.timelines_plotly(views, wtal_kit.experiments.figure5_label(results)),\n    '
                           'out / "figure5_interactive.html")\n'
                           'print("interactive version:", page)\nwidgets.figures.show(figure)', [])]
    elif name == "claims":
        cells += [("markdown", CLAIMS_RULE, []),
                  ("code", f'results = wtal_kit.experiments.collect_all(\n    ["claims"], mode, seeds, store, {keywords})\n'
                           'print({artefact: result.missing for artefact, result in results.items()})', []),
                  ("code", 'table = wtal_kit.experiments.claims(results)\n'
                           'table.to_csv(out / "claims.csv", index=False)\n'
                           'table[["claim", "source", "paper", "measured", "verdict"]]', [])]
    elif name == "audit":
        cells += [("markdown", AUDIT_TEXT, []),
                  ("code", collect.format(source="table1"), []),
                  ("code", 'table = wtal_kit.experiments.protocol_audit(results)\n'
                           'table.to_csv(out / "audit.csv", index=False)\nwtal_kit.experiments.readable(table)', [])]
    else:
        raise KeyError(name)
    return cells


def build(name: str):
    """The notebook of one artefact or report, without outputs."""
    title = experiments.ARTEFACTS[name].title if name in experiments.ARTEFACTS else experiments.REPORT_TITLES[name]
    header = (f"# Reproduce {title}\n\nRegenerates {WHAT[name]} of {PAPER}, with `wtal_kit`: it trains what "
              f"the results store lacks (a rerun trains nothing), reads the runs back and writes its table"
              f"{' and figure' if name.startswith('figure') else ''} to `output_dir`.\n\n{HONESTY}")
    cells = [nbformat.v4.new_markdown_cell(header, id=_cell_id(name, 0))]
    for index, (kind, source, tags) in enumerate(_sources(name), start=1):
        metadata = {"tags": tags} if tags else {}
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        cells.append(make(source, id=_cell_id(name, index), metadata=metadata))
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    return notebook


def path(name: str) -> Path:
    return HERE / f"reproduce_{name}.ipynb"


def text(name: str) -> str:
    return nbformat.writes(build(name))


def main() -> None:
    for name in experiments.ALL_NAMES:
        path(name).write_text(text(name))
        print(path(name))


if __name__ == "__main__":
    main()
