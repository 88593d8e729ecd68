"""GPT-OSS architecture in plain PyTorch (no parallel machinery here).

    from model import Transformer, get_preset
    model = Transformer(get_preset("tiny")); model.init_weights()
    logits = model(tokens)                       # (B, T, V)
    logits, aux = model.forward_with_aux(tokens) # aux.aux_loss, aux.tokens_per_expert (L, E)

Checkpoints: `model.hf.load` / `model.hf.save` (HF GptOss, safetensors). Sampling: `model.generate`.
Sizes: `python -m model.info --preset gpt-oss-120b`.
"""
from model.args import ModelArgs, get_preset


def __getattr__(name: str):
    # torch is imported on first use of the model, not by `model.args` (read by config checks in
    # data workers that never build a model and should not pay torch's few hundred MB)
    if name in ("MoEAux", "Transformer"):
        from model import model as _model
        return getattr(_model, name)
    raise AttributeError(f"module 'model' has no attribute {name!r}")


__all__ = ["ModelArgs", "MoEAux", "Transformer", "get_preset"]
