"""Tokenizer training, loading and tiktoken conversion (pipeline/tokenizer.py, the `tokenizer` CLI)."""
import base64

import orjson
import pytest
import regex

from pipeline import tokenizer as tk
from tests.conftest import run_cli
from tests.pipeline.helpers import write_jsonl

TRICKY = [
    "héllo wörld 你好 😀 <|end|> <|endoftext|> don't I'LL  \r\n\r\n  x",
    "\t\t  \n trailing   ",
    "ǅungla Ⅻ 123456 ١٢٣ ﬁ 🇺🇳 e\u0301",
]


def corpus_texts(n: int = 400) -> list[str]:
    """Real text that every machine has: the Python docs' topics (what the demo corpus uses)."""
    import pydoc_data.topics as topics
    texts = [topics.topics[k] for k in sorted(topics.topics)]
    return (texts * (n // len(texts) + 1))[:n]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("tokcorpus")
    texts = corpus_texts() + TRICKY
    return write_jsonl(d / "docs.jsonl.zst", [{"id": str(i), "text": t} for i, t in enumerate(texts)], "zstd")


@pytest.fixture(scope="module")
def trained(corpus_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    run_cli("-m", "pipeline", "tokenizer", "train", "--input", corpus_file, "--vocab-size", 1500, "--out", out)
    return out


def test_training_is_deterministic_across_runs_and_thread_counts(corpus_file, trained, tmp_path, monkeypatch):
    again = tmp_path / "again.json"
    monkeypatch.setenv("RAYON_NUM_THREADS", "1")      # the first run used every core
    monkeypatch.setenv("PYTHONHASHSEED", "7")
    run_cli("-m", "pipeline", "tokenizer", "train", "--input", corpus_file, "--vocab-size", 1500, "--out", again)
    assert again.read_bytes() == trained.read_bytes()


def test_trained_tokenizer_has_eod_and_harmony_tokens_and_round_trips_exactly(trained):
    tok = tk.open_tokenizer(trained)
    info = tk.describe(tok, tk.EOD_TOKEN)
    assert info["vocab_size"] == 1500 and info["dtype"] == "uint16"
    assert info["eod_id"] == 0 and info["harmony_chat_tokens"]
    assert set(info["special_tokens"]) == set(tk.TRAINED_SPECIALS)
    tk.check_byte_level(tok, str(trained))
    special_ids = set(info["special_tokens"].values())
    for text in corpus_texts(50) + TRICKY:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert not special_ids & set(ids), "special-token strings in text must encode as plain text"
        assert tok.decode(ids, skip_special_tokens=False) == text
        assert tk.token_byte_lengths(tok)[ids].sum() == len(text.encode())


def test_train_cli_names_file_and_line_of_a_bad_record(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "fine"}, b"{not json", {"text": "x"}])
    proc = run_cli("-m", "pipeline", "tokenizer", "train", "--input", bad, "--vocab-size", 400,
                   "--out", tmp_path / "t.json", check=False)
    assert proc.returncode == 2 and "bad.jsonl:2" in proc.stderr and "invalid_json" in proc.stderr
    nofield = write_jsonl(tmp_path / "nofield.jsonl", [{"text": "fine"}, {"body": "x"}])
    proc = run_cli("-m", "pipeline", "tokenizer", "train", "--input", nofield, "--vocab-size", 400,
                   "--out", tmp_path / "t.json", check=False)
    assert proc.returncode == 2 and "nofield.jsonl:2" in proc.stderr and "'text'" in proc.stderr


# ---------------------------------------------------------------- tiktoken files

def write_ranks_like(tok_path, out) -> int:
    """A tiktoken-format ranks file (`base64 rank` lines) holding a trained BPE's ordinary tokens."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(tok_path))
    u2b = {c: b for b, c in tk.bytes_to_unicode().items()}
    added = tok.get_added_tokens_decoder()
    ordinary = sorted((i, t) for t, i in tok.get_vocab().items() if i not in added)
    lines = [f"{base64.b64encode(bytes(u2b[c] for c in t)).decode()} {rank}" for rank, (_, t) in enumerate(ordinary)]
    out.write_text("\n".join(lines) + "\n")
    return len(lines)


def tiktoken_reference(ranks: dict[bytes, int], text: str) -> list[int]:
    """tiktoken's algorithm in plain Python: split with the pattern, then merge the lowest-ranked pair."""
    out = []
    for piece in regex.findall(tk.O200K_PATTERN, text):
        piece = piece.encode("utf-8")
        if piece in ranks:
            out.append(ranks[piece])
            continue
        parts = [piece[i:i + 1] for i in range(len(piece))]
        while True:
            pairs = [(ranks.get(parts[i] + parts[i + 1]), i) for i in range(len(parts) - 1)]
            pairs = [p for p in pairs if p[0] is not None]
            if not pairs:
                break
            _, i = min(pairs)
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        out += [ranks[p] for p in parts]
    return out


def test_tiktoken_file_encodes_like_tiktoken_with_harmony_specials_after_the_ranks(trained, tmp_path):
    path = tmp_path / "small.tiktoken"
    n = write_ranks_like(trained, path)
    tok, kind = tk.load_tokenizer_file(path)
    assert kind == "tiktoken"
    assert tok.get_vocab_size() == n + 1090                      # o200k_harmony: 199998 ranks + 1090 = 201088
    assert tok.token_to_id("<|endoftext|>") == n + 1 and tok.token_to_id("<|start|>") == n + 8
    assert tok.token_to_id("<|call|>") == n + 14 and tok.token_to_id("<|reserved_201087|>") == n + 1089
    tok.encode_special_tokens = True
    ranks = tk.read_tiktoken_ranks(path)
    for text in corpus_texts(120) + TRICKY:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert ids == tiktoken_reference(ranks, text)
        assert tok.decode(ids, skip_special_tokens=False) == text


def test_harmony_layout_for_the_real_o200k_size_is_o200k_harmony():
    names = tk.harmony_specials(199998)
    ids = {name: 199998 + k for k, name in enumerate(names)}
    for name, i in tk.HARMONY_NAMED.items():
        assert ids[name] == i
    assert ids["<|reserved_200013|>"] == 200013 and max(ids.values()) == 201087 and len(ids) == 1090


def test_from_tiktoken_cli_writes_a_loadable_tokenizer(trained, tmp_path):
    path = tmp_path / "r.tiktoken"
    n = write_ranks_like(trained, path)
    out = tmp_path / "converted.json"
    run_cli("-m", "pipeline", "tokenizer", "from-tiktoken", "--ranks", path, "--out", out)
    tok, kind = tk.load_tokenizer_file(out)
    assert kind == "tokenizer.json" and tok.token_to_id("<|endoftext|>") == n + 1
    assert out.read_bytes() == tk.tokenizer_from_tiktoken(path).to_str(pretty=True).encode()


@pytest.mark.parametrize("content, message", [
    (b"IQ== 0\n!!! 1\n", ":2: bad token or rank"),
    (b"IQ== 0\nIg== 2\n", "rank 1 missing"),
    (b"IQ== 0\nIQ== 1\n", ":2: token b'!' listed twice"),
    (b"IQ== zero\n", ":1: bad token or rank"),
    (b"IQ== 0 extra\n", ":1: expected 'base64_token rank'"),
])
def test_bad_tiktoken_files_name_the_line(tmp_path, content, message):
    path = tmp_path / "bad.tiktoken"
    path.write_bytes(content)
    with pytest.raises(tk.TokenizerError, match=regex.escape(message)):
        tk.read_tiktoken_ranks(path)


def test_a_ranks_file_without_every_byte_is_refused(tmp_path):
    path = tmp_path / "bytes.tiktoken"
    path.write_text("".join(f"{base64.b64encode(bytes([b])).decode()} {b}\n" for b in range(200)))
    with pytest.raises(tk.TokenizerError, match="56 single bytes have no rank"):
        tk.read_tiktoken_ranks(path)


def test_a_tokenizer_that_cannot_round_trip_is_refused(tmp_path, trained):
    from tokenizers import Tokenizer, models, pre_tokenizers
    wp = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    wp.pre_tokenizer = pre_tokenizers.Whitespace()
    wp.save(str(tmp_path / "wp.json"))
    with pytest.raises(tk.TokenizerError, match="model.type is 'WordPiece'"):
        tk.load_tokenizer_file(tmp_path / "wp.json")
    j = orjson.loads(trained.read_bytes())
    j["normalizer"] = {"type": "Lowercase"}
    (tmp_path / "lower.json").write_bytes(orjson.dumps(j))
    with pytest.raises(tk.TokenizerError, match=r"normalizer \['Lowercase'\]"):
        tk.load_tokenizer_file(tmp_path / "lower.json")
    j = orjson.loads(trained.read_bytes())
    j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = True
    (tmp_path / "prefix.json").write_bytes(orjson.dumps(j))
    with pytest.raises(tk.TokenizerError, match="add_prefix_space = true"):
        tk.load_tokenizer_file(tmp_path / "prefix.json")
    with pytest.raises(tk.TokenizerError, match="not found"):
        tk.load_tokenizer_file(tmp_path / "missing.json")
