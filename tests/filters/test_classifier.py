import hashlib

import numpy as np

from filters.classifier import chunks, threshold_for_recall, train_model, train_to_file, model_scores, prep


def _toy():
    pos = ["the nerve agent sarin is banned by the chemical weapons convention",
           "plague is caused by yersinia pestis a tier one select agent",
           "highly enriched uranium can be used in nuclear weapons",
           "the opcw verifies destruction of chemical weapons stockpiles"] * 6
    neg = ["the recipe uses honey and dijon mustard with salmon",
           "the football team won the cup after extra time",
           "tomatoes grow best in full sun with regular watering",
           "the opera was composed in italy in the seventeenth century"] * 6
    return pos + neg, [1] * len(pos) + [0] * len(neg)


def test_training_is_deterministic(tmp_path):
    texts, labels = _toy()
    digests = []
    params = {"epoch": 25, "bucket": 20000, "minn": 0, "maxn": 0}
    for i in range(3):
        p = tmp_path / f"m{i}.ftz"
        train_to_file(texts, labels, p, params, quantize=True, cutoff=1000)
        digests.append(hashlib.sha256(p.read_bytes()).hexdigest())
    assert digests[0] == digests[1] == digests[2]
    m = train_model(texts, labels, params)
    s = model_scores(m, [prep("sarin nerve agent convention"), prep("salmon with mustard")])
    assert s[0] > s[1]


def test_threshold_for_recall():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2])
    labels = [1, 1, 1, 1, 0, 0]
    assert threshold_for_recall(scores, labels, 1.0) == 0.6
    assert threshold_for_recall(scores, labels, 0.75) == 0.7


def test_chunks_cover_long_text():
    text = " ".join(f"w{i}" for i in range(1000))
    cs = chunks(text, 400, 50)
    assert len(cs) == 3 and cs[0].split()[0] == "w0" and cs[-1].split()[-1] == "w999"
    assert chunks("short text", 400, 50) == ["short text"]
