import json
import subprocess
import sys

from tests.filters.conftest import REPO


def run(*args):
    return subprocess.run([sys.executable, "-m", "filters.cbrn", *args], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_classify_contract(tmp_path):
    inp = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"id": "a", "text": "Sarin is a nerve agent banned under the Chemical Weapons Convention; the OPCW "
                                        "investigated sarin attacks in Syria."}),
        json.dumps({"text": "The football team won the cup."}),
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"id": "e"}),
        json.dumps({"id": 7, "text": 12}),
        "",
        json.dumps({"id": "h", "text": "Mustard greens taste peppery."}),
        json.dumps({"id": "one", "text": "The report named sarin among several substances regulated by the treaty."}),  # one term: the --threshold it passes decides
    ]
    inp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    r = run("classify", "--input", str(inp), "--output", str(out))
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == len(lines)
    assert [x["id"] for x in recs] == ["a", "2", "3", "4", "e", "7", "7", "h", "one"]
    assert recs[0]["decision"] == "removed" and recs[0]["reason"] == "cbrn_classifier" and "Sarin" in recs[0]["terms"]
    assert recs[1]["decision"] == "kept" and recs[1]["reason"] == "" and recs[1]["terms"] == []
    assert [x["decision"] for x in recs[2:7]] == ["error"] * 5
    assert recs[2]["reason"] == "invalid_json" and recs[4]["reason"] == "missing_text"
    assert recs[7]["decision"] == "kept"
    for x in recs:
        assert {"id", "decision", "reason", "score", "terms"} <= set(x)
    # same input, same bytes
    default = recs[8]
    assert default["terms"] == ["Sarin"] and default["decision"] == "removed" and default["score"] < 0.999
    out2 = tmp_path / "out2.jsonl"  # a --threshold just above the record's own score must flip it
    above = f"{default['score'] + 0.001:.6f}"
    assert run("classify", "--input", str(inp), "--output", str(out2), "--threshold", above).returncode == 0
    strict = json.loads(out2.read_text().splitlines()[8])
    assert strict["decision"] == "kept" and strict["score"] == default["score"]  # same score, the higher threshold
    out3 = tmp_path / "out3.jsonl"
    run("classify", "--input", str(inp), "--output", str(out3))
    assert out3.read_bytes() == out.read_bytes()


def test_train_refuses_dev(tmp_path):
    dev = tmp_path / "dev.jsonl"
    dev.write_text(json.dumps({"text": "x", "label": 1}) + "\n")
    r = run("train", "--data", str(dev), "--out", str(tmp_path / "m.ftz"))
    assert r.returncode != 0 and "dev" in (r.stderr + r.stdout)


def test_evaluate_prints_the_numbers_and_writes_the_plot_and_json(tmp_path):
    """`evaluate --plot --json`: the printed recall/FPR are the counts of the labeled rows, the JSON holds
    the same, and the PNG is a real image."""
    rows = [{"text": "The treaty bans sarin.", "label": 1}, {"text": "Tabun, soman and sarin.", "label": 1},
            {"text": "A household smoke detector holds a tiny sealed source of americium-241.", "label": 0},
            {"text": "The football team won the cup.", "label": 0}]
    data = tmp_path / "labeled.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    png, out = tmp_path / "roc.png", tmp_path / "eval.json"
    r = run("evaluate", "--labeled", str(data), "--plot", str(png), "--json", str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert (res["n"], res["positives"], res["negatives"]) == (4, 2, 2)
    assert res["tp"] + res["fn"] == 2 and res["fp"] + res["tn"] == 2
    assert res["recall"] == res["tp"] / 2 and res["fpr"] == res["fp"] / 2
    assert f"recall={res['recall']:.4f} fpr={res['fpr']:.4f}" in r.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
