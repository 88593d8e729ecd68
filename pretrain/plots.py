"""`python -m pretrain.plots RUN_DIR`: PNGs of loss (with the validation loss), learning rate, throughput/MFU and expert load from
RUN_DIR/train/metrics.jsonl into RUN_DIR/train/plots/ (also written at the end of every run)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.io import read_jsonl


def _records(train_dir: Path) -> list[dict]:
    path = train_dir / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (has the run trained any step?)")
    return list(read_jsonl(path))


def make_plots(train_dir: str | Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    train_dir = Path(train_dir)
    records = _records(train_dir)
    out = train_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    steps = [r["step"] for r in records]
    boundaries = [r["step"] - 1 for prev, r in zip(records, records[1:]) if r["phase"] != prev["phase"]]

    def phase_text(r: dict) -> str:  # what changes at a boundary: the context and the RoPE
        rope = f"YaRN x{r['yarn_factor']:g}" if r.get("yarn_factor") not in (None, 1) else ""
        return f"{r['phase_name']}: seq {r['seq_len']}" + (f", {rope}" if rope else "")

    starts = [r for prev, r in zip(records, records[1:]) if r["phase"] != prev["phase"]]
    styles = ["-", "--", "-.", ":"]  # lines tell apart in greyscale too

    def figure(name: str, title: str, ylabel: str, series: dict[str, list], logy: bool = False,
               points: dict[str, tuple[list, list]] | None = None):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for i, (label, ys) in enumerate(series.items()):
            ax.plot(steps, ys, label=label, linewidth=1.4 if i == 0 else 1.1, linestyle=styles[i % len(styles)])
        for label, (xs, ys) in (points or {}).items():
            if xs:
                ax.plot(xs, ys, "o-", label=label, linewidth=1.2, markersize=4)
        for b, r in zip(boundaries, starts):
            ax.axvline(b, color="grey", linestyle=":", linewidth=1)
            ax.annotate(f"-> {phase_text(r)}", xy=(b, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                        textcoords="offset points", fontsize=8, color="dimgrey")
        ax.set(title=title, xlabel="step", ylabel=ylabel)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if len(series) + len([p for p in (points or {}).values() if p[0]]) > 1:
            ax.legend()
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=110)
        plt.close(fig)

    evals = [r for r in records if "eval_loss" in r]
    figure("loss", "training and validation loss (dotted: phase boundaries)", "loss",
           {"loss": [r["loss"] for r in records], "lm loss": [r["lm_loss"] for r in records]},
           points={"validation loss (held out)": ([r["step"] for r in evals], [r["eval_loss"] for r in evals])})
    figure("lr", "learning rate", "lr", {"lr": [r["lr"] for r in records]})
    figure("throughput", "throughput", "tokens/s (all ranks)", {"tokens/s": [r["tokens_per_s"] for r in records]})
    figure("mfu", "model FLOPs utilisation (vs measured matmul peak)", "MFU",
           {"mfu": [r["mfu"] for r in records]})

    load = np.array([r["expert_load"] for r in records], dtype=float)  # (S, L, E)
    frac = load / np.maximum(load.sum(axis=2, keepdims=True), 1)
    layers, experts = frac.shape[1], frac.shape[2]
    # load relative to balanced on a log2 scale: 0 = balanced, +-1 = twice / half its share; an idle
    # expert shows at the bottom of the scale instead of saturating the top as a linear share did
    ratio = np.log2(np.maximum(frac * experts, 1 / 16))
    fig, axes = plt.subplots(1, layers, figsize=(3.2 * layers, 4), sharey=True, squeeze=False)
    for layer, ax in enumerate(axes[0]):
        im = ax.imshow(ratio[:, layer, :].T, aspect="auto", origin="lower", interpolation="nearest", cmap="RdBu_r",
                       extent=(steps[0] - 0.5, steps[-1] + 0.5, -0.5, experts - 0.5), vmin=-4, vmax=4)
        ax.set(title=f"layer {layer}", xlabel="step")
    axes[0][0].set_ylabel("expert")
    bar = fig.colorbar(im, ax=axes[0].tolist(), label="load / balanced share (log2)", ticks=range(-4, 5))
    bar.ax.set_yticklabels(["<=1/16 (idle)", "1/8", "1/4", "1/2", "1 (balanced)", "2", "4", "8", "16"])
    fig.suptitle("expert load per layer", y=1.04)
    fig.savefig(out / "expert_load.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pretrain.plots", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", nargs="?", default="runs/demo")
    a = p.parse_args(argv)
    try:
        out = make_plots(Path(a.run_dir) / "train")
    except FileNotFoundError as e:
        print(f"pretrain.plots: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
