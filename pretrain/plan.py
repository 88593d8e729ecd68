"""`python -m pretrain.plan`: will this layout fit? Memory per GPU before asking for GPUs.

    python -m pretrain.plan --config configs/gpt-oss-120b.toml [--gpu-memory 80] [--json]
    python -m pretrain.plan --preset gpt-oss-20b --nodes 1 --gpus-per-node 8 --tp 1 --ep 8 --fsdp \\
                            --seq 4096 --micro-batch 1 --recompute full --gpu-memory 80
    python -m pretrain.plan --config configs/gpt-oss-20b-long-context.toml   # the 131k phase, CP 8

Per GPU (the busiest rank, rank 0), in bytes:
- params / grads / optimizer: exact. Every parameter's local slice after TP (attention heads, expert FFN
  width), EP (experts) and FSDP (dim 0 over DP x CP, experts over EDP x CP; rank 0 holds the largest
  chunk), in
  float32 master weights, float32 gradients and two float32 AdamW moments (4 + 4 + 8 bytes). Checked
  against the real sharded tensors (`parallelize` on the meta device) in tests/pretrain/test_plan.py.
- activations: what autograd keeps for one micro-batch (per op of `model/`, at bf16 autocast on GPU and
  float32 on CPU), under the recompute mode, plus the transient peak of the loss head (one chunk of
  `train.loss_chunk_tokens` when set); under CP the rank's slice of the positions, plus the keys and
  values its full-attention layers gather (the last rank: the whole sequence's); an estimate,
  checked against measured peaks (bench/memory.py on CPU; the GPU check script on a GPU).
- buffers: FSDP's all-gathered (unsharded) parameters of the root and two blocks and one block's
  unsharded gradients, or the flat all-reduce bucket when replicated; the bf16 weight copies autocast
  keeps during a forward when replicated on GPU.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import asdict, dataclass

GiB = 1 << 30
RESERVE = 0.92  # of the GPU's memory usable by tensors (CUDA context, allocator fragmentation)
BUCKET_ELEMENTS = 1 << 25  # pretrain.data_parallel.BUCKET_ELEMENTS (not imported: no torch needed here)


@dataclass
class Layout:
    gpus: int
    tp: int = 1
    ep: int = 1
    cp: int = 1
    fsdp: bool = True
    seq: int = 4096
    micro_batch: int = 1
    recompute: str = "full"
    device: str = "cuda"  # cuda: bf16 autocast compute; cpu: float32
    loss_chunk: int = 0  # train.loss_chunk_tokens

    @property
    def dp(self) -> int:
        return self.gpus // (self.tp * self.cp)

    @property
    def edp(self) -> int:
        return self.dp // self.ep

    def check(self, args) -> None:
        problems = []
        if self.gpus % (self.tp * self.cp):
            problems.append(f"tp x cp ({self.tp} x {self.cp}) must divide the GPU count {self.gpus}")
        elif self.dp % self.ep:
            problems.append(f"ep {self.ep} must divide the data-parallel size {self.dp} "
                            f"(= {self.gpus} GPUs / (tp {self.tp} x cp {self.cp}))")
        if self.seq % self.cp:
            problems.append(f"cp {self.cp} must divide the sequence length {self.seq}")
        if args.n_heads % self.tp or args.n_kv_heads % self.tp:
            problems.append(f"tp {self.tp} must divide n_heads {args.n_heads} and n_kv_heads {args.n_kv_heads}")
        if args.ffn_dim % self.tp:
            problems.append(f"tp {self.tp} must divide the expert ffn_dim {args.ffn_dim}")
        if args.n_experts % self.ep:
            problems.append(f"ep {self.ep} must divide n_experts {args.n_experts}")
        if self.recompute not in ("none", "full", "selective"):
            problems.append(f"recompute must be none, full or selective, got {self.recompute!r}")
        if problems:
            raise ValueError("layout: " + "; ".join(problems))


# ---------------------------------------------------------------- parameters (exact)

# (name pattern, dimension split over TP): the slicing rules of pretrain/tensor_parallel.py and
# expert_parallel.py, stated independently so the test can hold them against the real thing.
TP_DIM = [
    (r"attention\.[qkv]_proj\.(weight|bias)$", 0), (r"attention\.o_proj\.weight$", 1), (r"attention\.sinks$", 0),
    (r"experts\.gate_up_proj$", 2), (r"experts\.gate_up_proj_bias$", 1), (r"experts\.down_proj$", 1),
]


def local_shapes(args, layout: Layout) -> dict[str, tuple[tuple[int, ...], bool]]:
    """{parameter: (local shape on rank 0, is expert)} under `layout`."""
    import torch
    from model.model import Transformer

    with torch.device("meta"):
        model = Transformer(args)
    out = {}
    for name, p in model.named_parameters():
        shape, expert = list(p.shape), ".moe.experts." in name
        for pattern, dim in TP_DIM:
            if re.search(pattern, name):
                shape[dim] //= layout.tp
        if expert:
            shape[0] //= layout.ep
        if layout.fsdp:
            shape[0] = math.ceil(shape[0] / ((layout.edp if expert else layout.dp) * layout.cp))  # rank 0's chunk
        out[name] = (tuple(shape), expert)
    return out


def param_numel(args, layout: Layout) -> dict[str, int]:
    """Rank 0's local elements: total, and per FSDP unit (root, one block) unsharded for the buffers."""
    shapes = local_shapes(args, layout)
    total = sum(math.prod(s) for s, _ in shapes.values())
    unsharded = local_shapes(args, Layout(**{**asdict(layout), "fsdp": False}))
    block = max(sum(math.prod(s) for n, (s, _) in unsharded.items() if n.startswith(f"layers.{i}."))
                for i in range(args.n_layers))
    root = sum(math.prod(s) for n, (s, _) in unsharded.items() if not n.startswith("layers."))
    return {"total": total, "block_unsharded": block, "root_unsharded": root,
            "all_unsharded": sum(math.prod(s) for s, _ in unsharded.values())}


# ---------------------------------------------------------------- activations (estimate)

def activation_bytes(args, layout: Layout) -> int:
    """Peak activation memory of one micro-batch's forward+backward on one rank (see the docstring).

    Per token and block, what `model/` keeps for the backward: each RMSNorm its input, the normalised
    values and the (bf16) copy the next matmul keeps; RoPE the float32 q and k; SDPA its q', k', v' with
    the sink lane, output and log-sum-exp (sliding layers: keys/values of two blocks per block); o_proj
    its input; the router logits and softmaxes; the experts their k gathered rows, gate_up output, five
    SwiGLU intermediates, down output and the slot orders. The loss head: the logits (and their float32
    copy on GPU) exist only until the log-softmax has its output, which the backward keeps with its
    gradient; with `loss_chunk` only one chunk's rows at a time.
    Peaks: "none" = all blocks + the head; "full" = block inputs + the larger of the head and one block
    recomputed with its largest gradient; "selective" = what stays in every block (norms, routing, the
    outputs of matmuls, attention and expert matmuls) + the larger of the head and one block's
    recomputed remainder."""
    t = layout.micro_batch * layout.seq // layout.cp  # tokens per micro-batch on one rank (CP: its slice)
    a = 2 if layout.device == "cuda" else 4  # matmul outputs: bf16 autocast on GPU
    f = 4  # float32: residual stream, norms, RoPE, softmax, the loss
    D, tp = args.dim, layout.tp
    H, Kv, Dh = args.n_heads // tp, args.n_kv_heads // tp, args.head_dim
    e = Dh + 1 if layout.device == "cpu" else -(-(Dh + 1) // 8) * 8  # head dim + sink lane (padded on CUDA)
    E, k, F, V, W = args.n_experts, args.top_k, args.ffn_dim // tp, args.vocab_size, args.sliding_window
    sliding_share = sum(1 for lt in args.layer_types if lt.startswith("sliding")) / args.n_layers

    norms = 2 * (2 * f * D + a * D)
    attention = (f * (H + Kv) * Dh + a * (H + 2 * Kv) * e + a * H * e + f * H + a * H * Dh
                 + (sliding_share * (a * 2 * Kv * e + 2 * W) if layout.seq > 2 * W else 0))
    router = a * E + 2 * f * E + f * k + 24 * k
    experts = a * k * (2 * D + 7 * F) + 24 * k
    block = t * (norms + attention + router + experts)
    if layout.cp > 1:  # the last CP rank's full layers keep the keys/values of every position before its slice
        before = layout.micro_batch * layout.seq - t
        gathered = (a * 2 * H * e if layout.device == "cuda" else a * 2 * Kv * e + a * 2 * H * e + f * H)
        halo = a * 2 * Kv * e + a * 2 * H * e  # sliding layers: the window's keys/values and zero query rows
        block += (1 - sliding_share) * before * gathered + sliding_share * layout.micro_batch * W * halo
    saved_selective = t * (norms + a * (H + 2 * Kv) * Dh + a * H * e + f * H + a * D + router
                           + f * k * D + a * k * (2 * F + 2 * D) + 24 * k)
    largest_grad = t * a * k * 2 * F
    rows = min(t, layout.loss_chunk) if layout.loss_chunk else t  # logits that exist at once
    # the logits (and their float32 copy on GPU) live until the log-softmax has its output, which the
    # backward keeps; the backward's peak is that output, its gradient and the logits' gradient's first
    # float32 buffer, so per row the larger of the two moments
    head = t * (2 * f * D + a * D) + rows * max(a * V + (f * V if a != f else 0) + f * V, 2 * f * V)
    L = args.n_layers
    if layout.recompute == "none":
        return int(L * block + head)
    if layout.recompute == "full":
        kept = L * t * f * D
        return int(kept + max(head, block + largest_grad))
    kept = L * saved_selective
    return int(kept + max(head, block - saved_selective + largest_grad))


# ---------------------------------------------------------------- the plan

def plan(args, layout: Layout, gpu_memory_bytes: int) -> dict:
    layout.check(args)
    n = param_numel(args, layout)
    c = 2 if layout.device == "cuda" else 4  # compute dtype of all-gathered parameters
    params, grads, optimizer = 4 * n["total"], 4 * n["total"], 8 * n["total"]
    if layout.fsdp:
        buffers = c * (n["root_unsharded"] + 2 * n["block_unsharded"]) + (c + 4) * n["block_unsharded"]
    else:
        buffers = 2 * 4 * min(n["total"], BUCKET_ELEMENTS)
        if layout.device == "cuda":
            buffers += 2 * n["total"]  # autocast's bf16 weight copies
    activations = activation_bytes(args, layout)
    total = params + grads + optimizer + activations + buffers
    usable = int(gpu_memory_bytes * RESERVE)
    return {"gpus": layout.gpus, "gpu_memory_bytes": gpu_memory_bytes, "usable_bytes": usable,
            "fits": total <= usable, "layout": {**asdict(layout), "dp": layout.dp, "edp": layout.edp},
            "params_per_gpu": n["total"],
            "per_gpu_bytes": {"params": params, "grads": grads, "optimizer": optimizer,
                              "activations": activations, "buffers": buffers, "total": total}}


def largest_micro_batch(args, layout: Layout, gpu_memory_bytes: int, limit: int = 1024) -> int:
    """The largest micro-batch (sequences per rank per forward) that fits; 0 if none."""
    best = 0
    for mb in range(1, limit + 1):
        if not plan(args, Layout(**{**asdict(layout), "micro_batch": mb}), gpu_memory_bytes)["fits"]:
            break
        best = mb
    return best


def from_config(cfg, gpu_memory_gb: float | None = None, *, device: str = "cuda"):
    """(model args, layout, GPU memory in bytes) of a run config's longest phase under its [slurm] job."""
    from model import get_preset
    train, slurm = cfg.train, cfg.slurm
    gpus = slurm.train_nodes * slurm.train_procs_per_node
    phase = max(train.phases, key=lambda p: p.seq_len * (p.micro_batch or p.global_batch))
    dp = max(1, gpus // (train.parallel.tp * train.parallel.cp))
    args = get_preset(train.model.preset, **train.model.overrides)
    layout = Layout(gpus=gpus, tp=train.parallel.tp, ep=train.parallel.ep, cp=train.parallel.cp,
                    fsdp=train.parallel.fsdp, seq=phase.seq_len,
                    micro_batch=phase.micro_batch or max(1, phase.global_batch // dp),
                    recompute=train.activation_checkpoint, device=device, loss_chunk=train.loss_chunk_tokens)
    memory = gpu_memory_gb if gpu_memory_gb is not None else slurm.train_gpu_memory_gb
    return args, layout, int(memory * GiB)


def fmt(b: int) -> str:
    return f"{b / GiB:,.2f} GiB"


def render(result: dict, best_mb: int) -> str:
    lay, per = result["layout"], result["per_gpu_bytes"]
    cp = f" x cp {lay['cp']}" if lay["cp"] > 1 else ""
    chunk = f", loss in chunks of {lay['loss_chunk']} tokens" if lay["loss_chunk"] else ""
    lines = [f"layout: {lay['gpus']} GPUs = tp {lay['tp']}{cp} x dp {lay['dp']} (ep {lay['ep']} x edp {lay['edp']}), "
             f"{'FSDP' if lay['fsdp'] else 'replicated'}, seq {lay['seq']}, micro-batch {lay['micro_batch']}, "
             f"recompute {lay['recompute']}{chunk}, {'bf16 autocast' if lay['device'] == 'cuda' else 'float32'}",
             f"parameters on the busiest GPU: {result['params_per_gpu']:,}"]
    for key in ("params", "grads", "optimizer", "activations", "buffers", "total"):
        lines.append(f"  {key:<12}{fmt(per[key]):>16}")
    verdict = "FITS" if result["fits"] else "DOES NOT FIT"
    lines.append(f"{verdict}: {fmt(per['total'])} of {fmt(result['usable_bytes'])} usable "
                 f"({RESERVE:.0%} of {fmt(result['gpu_memory_bytes'])})")
    lines.append(f"largest micro-batch that fits: {best_mb}" if best_mb else "no micro-batch fits this layout")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pretrain.plan", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="run config: [train] model, phases, parallel, activation_checkpoint; "
                                     "[slurm] train_nodes x train_procs_per_node GPUs")
    p.add_argument("--preset", help="model preset (instead of --config)")
    p.add_argument("--nodes", type=int, help="override slurm.train_nodes")
    p.add_argument("--gpus-per-node", type=int, help="override slurm.train_procs_per_node (one process per GPU)")
    p.add_argument("--tp", type=int)
    p.add_argument("--ep", type=int)
    p.add_argument("--cp", type=int, help="context parallel: ranks that split each sequence")
    p.add_argument("--loss-chunk", type=int, help="train.loss_chunk_tokens (0 = the whole head at once)")
    fs = p.add_mutually_exclusive_group()
    fs.add_argument("--fsdp", dest="fsdp", action="store_true", default=None)
    fs.add_argument("--no-fsdp", dest="fsdp", action="store_false")
    p.add_argument("--seq", type=int, help="sequence length (default: the config's longest phase)")
    p.add_argument("--micro-batch", type=int)
    p.add_argument("--recompute", choices=("none", "full", "selective"))
    p.add_argument("--gpu-memory", type=float, default=None, help="GB per GPU (default: slurm.train_gpu_memory_gb, 80)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    from common import config as cfgmod
    from common.config import ConfigError
    try:
        if a.config or not a.preset:
            cfg = cfgmod.load(a.config, None, [], foreign="keep")
        else:
            cfg = cfgmod.load(None, None, [f'train.model.preset="{a.preset}"'], foreign="keep")
        if a.preset:
            cfg.train.model.preset = a.preset
        args, layout, memory = from_config(cfg, a.gpu_memory)
        if a.nodes or a.gpus_per_node:
            layout.gpus = (a.nodes or cfg.slurm.train_nodes) * (a.gpus_per_node or cfg.slurm.train_procs_per_node)
        for key in ("tp", "ep", "cp", "fsdp", "seq", "micro_batch", "recompute", "loss_chunk"):
            if getattr(a, key) is not None:
                setattr(layout, key, getattr(a, key))
        result = plan(args, layout, memory)
    except (ConfigError, ValueError) as e:
        print(f"pretrain.plan: {e}", file=sys.stderr)
        return 2
    best = largest_micro_batch(args, layout, memory)
    result["largest_micro_batch"] = best
    print(json.dumps(result, indent=1) if a.json else render(result, best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
