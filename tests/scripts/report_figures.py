"""Checks every figure zllm_report draws for a survey: a title, both axes
labelled (the value axis with units in brackets, or a named dimensionless
quantity), a legend wherever an axes holds several labelled series, a
labelled colorbar, a one-line caption printed, and the PNG written.
Usage: report_figures.py NOTEBOOK_DIR OUTDIR FIGDIR"""
import contextlib
import io
import os
import sys

nbdir, outdir, figdir = sys.argv[1:4]
sys.path.insert(0, nbdir)
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import zllm_report as zr  # noqa: E402

DIMENSIONLESS = ("fraction", "P(", "probability")
bad = 0


def fail(msg):
    global bad
    print("FAIL:", msg)
    bad += 1


def value_label_ok(label):
    return "[" in label and "]" in label or any(w in label for w in DIMENSIONLESS)


s = zr.load(outdir, figdir=figdir)
expected = zr.expected_figures(s)
for name in zr.FIGURES:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fig = getattr(zr, name)(s)
    printed = out.getvalue()
    if name not in expected:
        if fig is not None or "not drawn:" not in printed:
            fail(f"{name}: expected no figure and a reason, got {fig!r} / {printed!r}")
        continue
    if fig is None:
        fail(f"{name}: not drawn ({printed.strip()})")
        continue
    caption = [l for l in printed.splitlines() if l.startswith(f"Figure {name}: ")]
    if len(caption) != 1 or len(caption[0]) < len(f"Figure {name}: ") + 20:
        fail(f"{name}: no one-line caption printed")
    suptitle = fig._suptitle.get_text() if fig._suptitle else ""
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            if not ax.get_ylabel():
                fail(f"{name}: colorbar without a label")
            continue
        if not (ax.get_title() or suptitle):
            fail(f"{name}: an axes without a title")
        xl, yl = ax.get_xlabel(), ax.get_ylabel()
        twin = not ax.has_data() or (not xl and yl)  # a twinx shares the x label
        if not yl or (not xl and not twin):
            fail(f"{name}: axes '{ax.get_title()}' lacks an axis label (x={xl!r}, y={yl!r})")
        if yl and ax.get_yscale() != "log" and not value_label_ok(yl) and ax.get_ylabel() != "model":
            fail(f"{name}: y label {yl!r} names no unit")
        if yl and ax.get_yscale() == "log" and not value_label_ok(yl):
            fail(f"{name}: y label {yl!r} names no unit")
        series = [a for a in ax.get_lines() + ax.collections + ax.containers
                  if not str(getattr(a, "get_label", lambda: "_")()).startswith("_")]
        others = [b for b in fig.axes if b is not ax and b.bbox.bounds == ax.bbox.bounds]
        has_legend = ax.get_legend() is not None or any(b.get_legend() is not None for b in others)
        if len(series) > 1 and not has_legend:
            fail(f"{name}: {len(series)} labelled series and no legend")
    path = s.figure_path(name)
    if not os.path.getsize(path) > 0:
        fail(f"{name}: {path} empty")
    plt.close(fig)
print(f"{len(expected)} figures checked, {bad} problems")
sys.exit(1 if bad else 0)
