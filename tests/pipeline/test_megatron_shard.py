"""The numpy shard writer against megatron-core's own builder (the referee): byte-identical files."""
import numpy as np
import pytest

from pipeline.megatron_shard import ShardWriter, indexed_dataset


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_shard_writer_matches_megatron_core_builder_byte_for_byte(tmp_path, dtype):
    rng = np.random.default_rng(0)
    max_seq = 7
    docs = [rng.integers(0, 30000, int(n)).astype(dtype) for n in rng.integers(1, 25, 60)]
    ref = indexed_dataset().IndexedDatasetBuilder(str(tmp_path / "ref.bin"), dtype=dtype)
    ours = ShardWriter(tmp_path / "ours.bin", dtype)
    for batch in (docs[:1], docs[1:40], docs[40:]):           # several batches, one of a single document
        seq_lens, per_doc = [], []
        for d in batch:
            parts = -(-len(d) // max_seq)
            lens = [max_seq] * (parts - 1) + [len(d) - max_seq * (parts - 1)]
            ref.add_document(d, lens)
            seq_lens += lens
            per_doc.append(parts)
        ours.add_documents(np.concatenate(batch), np.array(seq_lens), np.array(per_doc))
    ref.finalize(str(tmp_path / "ref.idx"))
    ref.data_file.close()
    ours.finalize(tmp_path / "ours.idx")
    for ext in ("bin", "idx"):
        assert (tmp_path / f"ours.{ext}").read_bytes() == (tmp_path / f"ref.{ext}").read_bytes(), ext
    ds = indexed_dataset().IndexedDataset(str(tmp_path / "ours"))
    assert len(ds.document_indices) == len(docs) + 1 and (ds[0] == docs[0][:max_seq]).all()


def test_shard_writer_refuses_lengths_that_do_not_cover_the_tokens(tmp_path):
    w = ShardWriter(tmp_path / "x.bin", np.uint16)
    with pytest.raises(ValueError, match="cover"):
        w.add_documents(np.zeros(5, np.uint16), np.array([4]), np.array([1]))
    w.close()
