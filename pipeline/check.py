"""`python -m pipeline check RUN_DIR`: is this run complete and are its books right?

Checks every data stage's ledger against its stats.json (balanced, recounted), the kept shards listed,
the tokenize outputs (Megatron .bin/.idx, manifest with a filter record), a training checkpoint,
metrics and plots, and the audit report, for every stage started in the run directory (one that
started and did not finish fails; one never started is listed as not run). Prints one line per check;
exit 1 if any fails.
"""
from __future__ import annotations

from pathlib import Path

from common import filter_record
from common.io import read_json
from pipeline.ledger import books_from_ledger
from pipeline.stages import data_stages, stage_names


def check_run(run_dir: str | Path, stages=None) -> list[tuple[bool, str]]:
    run = Path(run_dir)
    out: list[tuple[bool, str]] = []

    def ok(cond: bool, what: str) -> bool:
        out.append((bool(cond), what))
        return bool(cond)

    stages = stage_names() if stages is None else stages
    for stage in (s for s in stages if s in data_stages()):
        d = run / stage
        if not ok((d / "stats.json").is_file(), f"{stage}: stats.json"):
            continue
        st = read_json(d / "stats.json")
        removed, quarantined = sum(st["removed"].values()), sum(st["quarantined"].values())
        ok(st["in"] == st["kept"] + removed + quarantined,
           f"{stage}: books balance ({st['in']} = {st['kept']} kept + {removed} removed + {quarantined} quarantined)")
        recount = books_from_ledger(d).to_dict()
        ok(recount == {k: st[k] for k in ("in", "kept", "removed", "quarantined")},
           f"{stage}: ledger rows recount to stats.json")
        if stage == "tokenize":
            manifest = d / "manifest.json"
            if ok(manifest.is_file(), "tokenize: manifest.json"):
                m = read_json(manifest)
                try:
                    verified, good = filter_record.check(m.get("filter"), where=str(manifest),
                                                         stage_dir=d.parent / "cbrn"), True
                except filter_record.FilterRecordError as e:
                    verified, good = str(e), False
                ok(good, f"tokenize: manifest records the CBRN filter the data passed ({verified})")
            ok(any(d.glob("shards/*.bin")) and any(d.glob("shards/*.idx")), "tokenize: Megatron .bin/.idx shards")
            ok((d / "merged" / "data.bin").is_file() and (d / "merged" / "data.idx").is_file(),
               "tokenize: merged .bin/.idx")
        else:
            missing = [s["name"] for s in st["shards"] if not (d / "shards" / f"{s['name']}.jsonl.zst").is_file()]
            ok(not missing, f"{stage}: {len(st['shards'])} kept shards present" + (f" (missing {missing[:3]})" if missing else ""))
    truth = run / "input" / "demo" / "ground_truth.json"
    if truth.is_file() and (run / "cbrn" / "stats.json").is_file():
        _check_demo_cbrn(run, read_json(truth).get("cbrn", {}), ok)
    if "train" in stages:
        t = run / "train"
        ok(any(t.glob("checkpoints/step-*/meta.json")), "train: a checkpoint")
        ok((t / "metrics.jsonl").is_file() and (t / "metrics.jsonl").stat().st_size > 0, "train: metrics.jsonl")
        ok(len(list(t.glob("plots/*.png"))) >= 3, "train: plots")
    if "audit" in stages:
        a = run / "audit"
        ok((a / "report.html").is_file() and (a / "audit.json").is_file() and (a / "report.md").is_file(),
           "audit: report.html, report.md, audit.json")
        if (a / "audit.json").is_file():
            ok(read_json(a / "audit.json").get("ok", True) is not False, "audit: its own checks pass")
    return out


def _check_demo_cbrn(run: Path, labels: dict, ok) -> None:
    """The demo's injected CBRN-topic documents are removed with a reason; its hard negatives are kept."""
    from pipeline.ledger import read_ledger
    t = read_ledger(run / "cbrn")
    rows = dict(zip(t.column("id").to_pylist(), zip(t.column("decision").to_pylist(), t.column("reason").to_pylist())))
    topic = [i for i, label in labels.items() if label == 1]
    negatives = [i for i, label in labels.items() if label == 0]
    missed = [i for i in topic if rows.get(i, ("", ""))[0] != "removed"]
    ok(not missed, f"demo: {len(topic) - len(missed)}/{len(topic)} injected CBRN-topic documents removed with a reason"
       + (f" (kept: {missed})" if missed else ""))
    lost = [i for i in negatives if rows.get(i, ("", ""))[0] != "kept"]
    ok(not lost, f"demo: {len(negatives) - len(lost)}/{len(negatives)} injected hard negatives kept"
       + (f" (removed: {lost})" if lost else ""))


def started_stages(run_dir: str | Path) -> list[str]:
    """The stages some run started in this directory (each has its stage directory), in stage order."""
    return [s for s in stage_names() if (Path(run_dir) / s).is_dir()]


def main(run_dir: str) -> int:
    stages = started_stages(run_dir)
    skipped = [s for s in stage_names() if s not in stages]
    if skipped:  # a run of some stages is checked on those, not failed on the ones it never started
        print(f"not run here, not checked: {', '.join(skipped)}")
    results = check_run(run_dir, stages)
    for good, what in results:
        print(f"{'ok  ' if good else 'FAIL'}  {what}")
    bad = sum(1 for good, _ in results if not good)
    print(f"{len(results) - bad}/{len(results)} checks pass for {run_dir}")
    return 1 if bad else 0
