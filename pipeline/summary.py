"""The table a run ends with: documents in, removed per reason, tokens written, final loss, where the
audit report and plots are, and a short greedy sample from the trained model. Every number is read
from a stats, manifest or summary file of the run."""
from __future__ import annotations

from pathlib import Path

from common.io import read_json
from common.progress import print_table
from pipeline.stages import data_stages

SAMPLE_PROMPT = "The Python standard library"


def _read(path: Path):
    return read_json(path) if path.is_file() else None


def greedy_sample(run_dir: Path, prompt: str = SAMPLE_PROMPT, new_tokens: int = 40) -> str | None:
    """Greedy continuation of `prompt` by the run's exported model and tokenizer, or None."""
    hf_dir, tok_path = run_dir / "train" / "hf", run_dir / "tokenize" / "tokenizer.json"
    if not (hf_dir / "config.json").is_file() or not tok_path.is_file():
        return None
    import torch

    from model import hf
    from model.generate import generate
    from pipeline.tokenizer import open_tokenizer
    tok = open_tokenizer(tok_path)
    model = hf.load(hf_dir, dtype=torch.float32)
    ids = tok.encode(prompt, add_special_tokens=False).ids
    manifest = _read(run_dir / "tokenize" / "manifest.json") or {}
    with torch.no_grad():
        out = generate(model, torch.tensor([ids]), new_tokens, temperature=0.0, eos_id=manifest.get("eod_id"))
    return tok.decode(out[0].tolist(), skip_special_tokens=True)


def print_summary(run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    stages = {s: _read(run_dir / s / "stats.json") for s in data_stages()}
    rows = []
    for name, st in stages.items():
        if st is None:
            continue
        reasons = {**st["removed"], **st["quarantined"]}
        rows.append({"stage": name, "in": st["in"], "kept": st["kept"],
                     "removed / quarantined by reason": ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "-"})
    if rows:
        print_table(rows, title="\n== documents")
    out: dict = {"stages": {k: v is not None for k, v in stages.items()}}
    manifest = _read(run_dir / "tokenize" / "manifest.json")
    train = _read(run_dir / "train" / "summary.json")
    lines = []
    if manifest:
        out["tokens"] = manifest.get("tokens")
        flt = manifest.get("filter") or {}
        lines.append(("tokens written", f"{manifest.get('tokens'):,} in {manifest.get('documents'):,} documents"
                      + (f" (CBRN-filtered, model {str(flt.get('model_sha256', ''))[:12]})" if flt else " (UNFILTERED)")))
    if train:
        out["final_loss"] = train.get("final_loss")
        lines.append(("training", f"{train.get('steps')} steps, loss {train.get('first_loss', float('nan')):.3f} -> "
                                  f"{train.get('final_loss', float('nan')):.3f} (mean of last 10: "
                                  f"{train.get('final_loss_mean10', float('nan')):.3f})"
                                  + (" ON UNFILTERED DATA (--allow-unfiltered)" if train.get("unfiltered_data") else "")))
        if train.get("final_eval_loss") is not None:
            out["final_eval_loss"] = train["final_eval_loss"]
            lines.append(("validation", f"loss {train['final_eval_loss']:.3f} (perplexity {train['final_eval_ppl']:.1f}) "
                                        f"on held-out documents; best {train['best_eval_loss']:.3f} at step "
                                        f"{train['best_eval_step']}"))
        lines.append(("checkpoint", str(train.get("checkpoint"))))
        lines.append(("plots", str(train.get("plots"))))
    report = run_dir / "audit" / "report.html"
    if report.is_file():
        lines.append(("audit report", str(report)))
    if train:
        try:
            sample = greedy_sample(run_dir)
        except Exception as e:  # a sample is a courtesy; the run's results stand without it
            sample = f"(no sample: {type(e).__name__}: {e})"
        if sample is not None:
            out["sample"] = sample
            lines.append(("greedy sample", repr(sample)))
    if lines:
        width = max(len(k) for k, _ in lines)
        print("\n== result")
        for k, v in lines:
            print(f"{k.ljust(width)}  {v}")
    return out
