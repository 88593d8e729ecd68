"""`python -m pretrain.train [--config FILE] [--preset NAME] [--run-dir DIR] [--max-steps N]
                            [--allow-unfiltered] [key=value ...]`

Trains with the `[train]` section of a run config (embedded defaults: the small preset on
RUN_DIR/tokenize, RUN_DIR = runs/demo) into RUN_DIR/train/. Overrides are `train.x.y=value` (the
`train.` may be left out). Launch several processes with torchrun (or srun); one process needs neither.
A run directory with checkpoints resumes from the newest one. `--max-steps N` stops after global step
N without touching the LR schedule.

Exit codes: 0 done (or stopped at --max-steps), 1 failure, 2 bad config or data,
75 (EX_TEMPFAIL) checkpointed on SIGTERM/SIGUSR1 and exited so the job can be requeued. torchrun
turns a worker's 75 into 1; `python -m pretrain.launch` (or train/status.json) gives it back.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common import config as cfgmod
from common.config import ConfigError
from common.io import atomic_write_json, read_json
from pretrain.config import TrainConfig

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_PREEMPTED = 0, 1, 2, 75


# ---------------------------------------------------------------- config

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pretrain.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="run config file (TOML/JSON) with a [train] section")
    p.add_argument("--preset", help="configs/<name>.toml (e.g. tiny, demo)")
    p.add_argument("--run-dir", help="run directory (default: the config's run.run_dir, runs/demo)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this global step (0 = run all phases)")
    p.add_argument("--allow-unfiltered", action="store_true",
                   help="train on shards whose manifest does not record the CBRN filter (warns loudly)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="set",
                   help="override one config value, as in `python -m pipeline` (repeatable), e.g. "
                        "--set train.parallel.tp=2 --set train.log.every=1")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="the older form of --set (train. may be left out): still read, with a note")
    return p.parse_intermixed_args(argv)  # overrides may come before or after the options


def resolve_config(args: argparse.Namespace) -> tuple[TrainConfig, Path]:
    if args.overrides and not os.environ.get("PRETRAIN_QUIET_OVERRIDES"):
        print("note: positional key=value overrides are the older form; prefer --set train.KEY=VALUE "
              "(the form `python -m pipeline` takes)", file=sys.stderr)
    given = [*getattr(args, "set", []), *args.overrides]
    overrides = [o if o.split("=", 1)[0].split(".")[0] in cfgmod.SECTIONS else f"train.{o}" for o in given]
    if args.allow_unfiltered:
        overrides.append("train.data.allow_unfiltered=true")
    cfg = cfgmod.load(args.config, args.preset, overrides, foreign="keep")  # the pipeline checks the rest
    if args.max_steps < 0:
        raise ConfigError(f"--max-steps: must be >= 0, got {args.max_steps}")
    return cfg.train, Path(args.run_dir or cfg.run.run_dir)


# ---------------------------------------------------------------- signals

class StopSignal:
    """SIGTERM / SIGUSR1 set a flag; the loop checkpoints at the end of the current step and exits 75."""

    def __init__(self):
        self.received: str | None = None
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.received = signal.Signals(signum).name


# ---------------------------------------------------------------- the trainer

class Trainer:
    """Builds everything once (data sources, mesh, parallelised model, optimizer, resume state), then
    `run()` is the loop: phase switch -> micro-batches -> forward/backward -> sync -> clip -> step ->
    metrics -> checkpoint / signal."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, rt, *, max_steps: int, stop: StopSignal):
        from model import Transformer, get_preset
        from pretrain import checkpoint as ckpt
        from pretrain.config import check_resume_config, config_digest
        from pretrain.data import resolve_sources
        from pretrain.metrics import MetricsLog, measure_matmul_peak, param_counts
        from pretrain.optim import build_optimizer
        from pretrain.mesh import init_mesh
        from pretrain.parallelize import parallelize

        self.cfg, self.rt, self.stop = cfg, rt, stop
        self.run_dir, self.train_dir = Path(run_dir), Path(run_dir) / "train"
        self.ckpt_root = ckpt.checkpoint_root(self.train_dir)
        self.config_dict = {"train": cfgmod.to_dict(cfg)}
        self.digest = config_digest(self.config_dict["train"])
        cfg.check_world(rt.world)
        if ckpt.list_checkpoints(self.ckpt_root):  # every rank checks, so every rank stops on a mismatch
            check_resume_config(self.train_dir, self.config_dict["train"])
        if rt.rank == 0:
            self.train_dir.mkdir(parents=True, exist_ok=True)
            ckpt.remove_stale(self.ckpt_root)
            atomic_write_json(self.train_dir / "config.json", self.config_dict)
        self.sources = resolve_sources(cfg.data, self.run_dir)
        self.valid_sources = resolve_sources(cfg.data, self.run_dir, valid=True, like=self.sources[0])
        self.validating = cfg.data.valid_fraction > 0 or bool(self.valid_sources)
        self.unfiltered = any(s.filter is None for s in self.sources)  # allowed by --allow-unfiltered only

        # every generator from the seed (python's and numpy's start from OS entropy), so the RNG states a
        # checkpoint records are the same bytes in every run; training itself draws no random numbers
        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        torch.manual_seed(cfg.seed)
        self.mesh = init_mesh(cfg.parallel.tp, cfg.parallel.ep, rt.device.type, cp=cfg.parallel.cp)
        self.autocast = {"auto": torch.bfloat16 if rt.device.type == "cuda" else None,
                         "float32": None, "bfloat16": torch.bfloat16}[cfg.dtype]
        self.args = get_preset(cfg.model.preset, **cfg.model.overrides, vocab_size=self.sources[0].vocab_size)
        with torch.device("meta"):  # no rank ever holds the whole model; each fills its own slices
            self.model = Transformer(self.args)
        self.plan = parallelize(self.model, self.mesh, fsdp=cfg.parallel.fsdp, recompute=cfg.activation_checkpoint,
                                param_dtype=self.autocast)
        self.model.to_empty(device=rt.device)
        self.plan.refresh()
        self.plan.init_weights(cfg.seed)  # the same initial model whatever the layout
        self.optimizer = build_optimizer(self.plan.params, cfg.optim)

        self.step, self.tokens, self.phase_index, self.data, self.eval_data = 0, 0, None, None, None
        self.resume_meta = None
        latest = ckpt.latest_checkpoint(self.ckpt_root)
        if latest is not None:
            self.resume_meta = ckpt.load(latest, plan=self.plan, optimizer=self.optimizer,
                                         restore_rng=self._same_layout(read_json(latest / "meta.json")))
            if self.resume_meta.get("config_sha256") != self.digest:
                raise ConfigError(f"{latest}: checkpoint was written with a different train config "
                                  f"(digest {self.resume_meta.get('config_sha256')}, now {self.digest})")
            self.step, self.tokens = self.resume_meta["step"], self.resume_meta["tokens"]
        total = cfg.total_steps
        self.stop_at = min(total, max_steps) if max_steps else total
        self.metrics = MetricsLog(self.train_dir, resume_step=self.step, enabled=rt.rank == 0,
                                  tensorboard=cfg.log.tensorboard)
        # every rank measures at once (on a shared CPU the ranks split the cores); the sum is the machine's
        peak = torch.tensor([measure_matmul_peak(rt.device, self.autocast or torch.float32)],
                            dtype=torch.float64, device=rt.device)
        if rt.world > 1:
            torch.distributed.all_reduce(peak)
        self.peak_flops = float(peak)
        self.counts = param_counts(self.args)
        self._startup_report(latest)

    def _determinism(self) -> str:
        from pretrain import determinism
        cuda = self.rt.device.type == "cuda"
        return determinism.describe(determinism.resolve(self.cfg.deterministic, cuda), cuda)

    def _same_layout(self, meta: dict) -> bool:
        same = meta.get("mesh") == self._mesh_dict()
        if not same and self.rt.rank == 0:
            print(f"pretrain: checkpoint layout {meta.get('mesh')} differs from {self._mesh_dict()}: weights and "
                  f"optimizer state are resharded exactly, RNG states are not restored, and the run is not "
                  f"bit-identical to one that kept its layout", file=sys.stderr)
        return same

    def _mesh_dict(self) -> dict:
        return self.mesh.as_dict()

    def _startup_report(self, latest) -> None:
        if self.rt.rank != 0:
            return
        from pretrain.metrics import model_flops_per_token
        c, a = self.counts, self.args
        lines = [f"pretrain: run dir {self.run_dir} -> {self.train_dir}",
                 f"  processes {self.rt.world} ({self.rt.backend}, {self.rt.device.type}), mesh {self.mesh.describe()}, "
                 f"{'FSDP' if self.cfg.parallel.fsdp else 'replicated'} data parallel, recompute "
                 f"{self.cfg.activation_checkpoint}, {self._determinism()}",
                 f"  model {self.cfg.model.preset}: vocab {a.vocab_size}, dim {a.dim}, layers {a.n_layers}, "
                 f"experts {a.n_experts} top-{a.top_k}; params total {c['total'] / 1e6:.2f}M, active {c['active'] / 1e6:.2f}M",
                 f"  dtype {'bf16 autocast' if self.autocast else 'float32'}; matmul peak {self.peak_flops / 1e9:.1f} "
                 f"GFLOP/s (all ranks, measured now)"]
        for s in self.sources:
            lines.append(f"  data {s.directory}: {s.tokens} tokens, {s.documents} documents, weight {s.weight}, "
                         f"{'CBRN-filtered' if s.filter else 'UNFILTERED'}: {s.filter_check}")
        for i, p in enumerate(self.cfg.phases):
            _, mb, accum = p.split(self.mesh.dp)
            rope = f"yarn x{p.yarn_factor:g} (original {p.yarn_original_context})" if p.yarn_factor != 1 else "plain RoPE"
            lines.append(f"  phase {i} {p.name}: {p.steps} steps, seq {p.seq_len}, batch {p.global_batch} "
                         f"({self.mesh.dp} dp x {mb} micro x {accum} accum), "
                         f"{p.global_batch * p.seq_len} tokens/step, lr {p.lr:g}->{p.min_lr:g} warmup "
                         f"{p.warmup_steps}, {rope}, {model_flops_per_token(a, p.seq_len) / 1e6:.1f} MFLOP/token")
        lines.append(f"  validation: {self.cfg.eval.sequences} sequences every {self.cfg.eval.every or '-'} steps and "
                     f"at phase ends, from " + (", ".join(s.directory for s in self.valid_sources) if self.valid_sources
                                                else f"the last {self.cfg.data.valid_fraction:g} of the documents")
                     if self.validating else "  validation: none (train.data.valid_fraction = 0)")
        lines.append(f"  {'resuming from ' + str(latest) if latest else 'starting at step 0'}; "
                     f"steps {self.step} -> {self.stop_at} of {self.cfg.total_steps}")
        print("\n".join(lines), flush=True)

    # ------------------------------------------------------------ phases

    def enter_phase(self, index: int) -> None:
        from pretrain.data import DataError, EvalData, PhaseData, build_dataset

        if index == self.phase_index:
            return
        phase = self.cfg.phases[index]
        self.model.set_rope(yarn_factor=phase.yarn_factor, original_context=phase.yarn_original_context)
        # informational in the model; exported as max_position_embeddings = the context trained so far
        self.model.args = dataclasses.replace(
            self.model.args, max_seq_len=max(p.seq_len for p in self.cfg.phases[:index + 1]))
        _, micro, _ = phase.split(self.mesh.dp)
        # the same number of validation micro-batches on every rank (expert parallel forwards together)
        valid_count = -(-self.cfg.eval.sequences // (self.mesh.dp * micro)) * self.mesh.dp * micro
        built = build_dataset(self.sources, seq_len=phase.seq_len, num_samples=phase.steps * phase.global_batch,
                              seed=self.cfg.seed + index, cache_dir=self.train_dir / "data_cache",
                              valid_fraction=self.cfg.data.valid_fraction, valid_sources=self.valid_sources,
                              valid_samples=valid_count if self.validating else 0)
        dataset, valid = built if self.validating else (built, None)
        self.data = PhaseData(dataset, phase, self.mesh.dp_rank, self.mesh.dp)
        self.eval_data = EvalData(valid, valid_count, micro, self.mesh.dp_rank, self.mesh.dp) if valid else None
        recorded = (self.resume_meta or {}).get("data", {})
        if recorded.get("phase") == index and recorded.get("fingerprint") != self.data.fingerprint:
            raise DataError(f"the training data of phase {phase.name!r} changed since the checkpoint "
                            f"(dataset {recorded.get('fingerprint')} -> {self.data.fingerprint})")
        self.phase_index = index

    # ------------------------------------------------------------ the loop

    def run(self) -> int:
        from pretrain.distributed import any_rank
        from pretrain.metrics import Progress, model_flops_per_token
        from pretrain.optim import lr_at, phase_of, phase_start, set_lr
        from pretrain.step import evaluate, forward_backward

        cfg, mesh = self.cfg, self.mesh
        progress = Progress(self.stop_at, self.step, cfg.log.every, enabled=self.rt.rank == 0)
        _write_status(self.run_dir, self.rt.rank, "running", step=self.step, total_steps=cfg.total_steps)
        while self.step < self.stop_at:
            index, phase_step = phase_of(cfg.phases, self.step)
            self.enter_phase(index)
            phase = cfg.phases[index]
            lr = lr_at(phase, phase_step)
            set_lr(self.optimizer, lr)
            t0 = time.perf_counter()
            result = forward_backward(
                self.model, self._local(self.data.micro_batches(phase_step, self.rt.device)),
                aux_coef=cfg.aux_loss_coef, aux_scope=cfg.aux_loss_scope, global_sequences=phase.global_batch,
                dp_group=mesh.dp_cp_group, autocast_dtype=self.autocast, cp=mesh.cp,
                loss_chunk_tokens=cfg.loss_chunk_tokens)
            self.plan.sync_grads()
            grad_norm = self.plan.clip_grads(cfg.optim.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            # the first host read of this step's numbers, after the update was queued (no mid-step syncs);
            # a non-finite loss stops every rank before anything is saved
            grad_norm = float(grad_norm)
            if not math.isfinite(result.loss):  # the same value on every rank: all stop together
                raise FloatingPointError(f"loss is {result.loss} at step {self.step + 1} (phase {phase.name})")
            if self.rt.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            self.step += 1
            step_tokens = phase.global_batch * phase.seq_len
            self.tokens += step_tokens
            load = result.expert_counts
            record = {
                "step": self.step, "phase": index, "phase_name": phase.name, "seq_len": phase.seq_len,
                "yarn_factor": phase.yarn_factor,
                "loss": result.loss, "lm_loss": result.lm_loss, "aux_loss": result.aux_loss, "lr": lr,
                "grad_norm": grad_norm, "tokens": self.tokens, "tokens_per_s": step_tokens / seconds,
                "mfu": model_flops_per_token(self.args, phase.seq_len) * step_tokens / seconds / self.peak_flops,
                "step_time_s": seconds, "unfiltered_data": self.unfiltered, "expert_load": load.tolist(),
                "expert_imbalance": float((load.max(dim=1).values.float() / load.float().mean(dim=1)).max()),
            }
            boundary = any(self.step == phase_start(cfg.phases, i + 1) for i in range(len(cfg.phases)))
            if self.eval_data is not None and (boundary or self.step == self.stop_at
                                               or (cfg.eval.every and self.step % cfg.eval.every == 0)):
                eval_loss, eval_tokens = evaluate(self.model, self._local(self.eval_data.micro_batches(self.rt.device)),
                                                  dp_group=mesh.dp_cp_group, autocast_dtype=self.autocast,
                                                  loss_chunk_tokens=cfg.loss_chunk_tokens)
                record.update(eval_loss=eval_loss, eval_ppl=math.exp(min(eval_loss, 50.0)), eval_tokens=eval_tokens)
            self.metrics.log(record)
            progress.update(record)

            signalled = any_rank(self.stop.received is not None, self.rt.device)
            periodic = cfg.checkpoint.every and self.step % cfg.checkpoint.every == 0
            if signalled or boundary or periodic or self.step == self.stop_at:
                self.save(index, phase_step + 1)
            if signalled:
                progress.close()
                self.metrics.close()
                if self.rt.rank == 0:
                    print(f"pretrain: {self.stop.received or 'signal on another rank'}: checkpointed step "
                          f"{self.step}, exiting {EXIT_PREEMPTED} so the job can be requeued", flush=True)
                _write_status(self.run_dir, self.rt.rank, "preempted", step=self.step, exit_code=EXIT_PREEMPTED,
                              signal=self.stop.received, checkpoint=str(self.ckpt_root / f"step-{self.step}"))
                return EXIT_PREEMPTED
        progress.close()
        self.metrics.close()
        return self.finish()

    def _local(self, micro_batches: list) -> list:
        """Under context parallel, this rank's slice of every sequence."""
        if self.mesh.cp == 1:
            return micro_batches
        from pretrain.context_parallel import shard_micro_batch
        return [shard_micro_batch(mb, self.mesh) for mb in micro_batches]

    def save(self, phase_index: int, phase_steps_done: int) -> None:
        from pretrain import checkpoint as ckpt

        phase = self.cfg.phases[phase_index]
        meta = {
            "step": self.step, "optimizer_step": self.step, "tokens": self.tokens,
            "phase": {"index": phase_index, "name": phase.name, "step": phase_steps_done,
                      "complete": phase_steps_done == phase.steps},
            "data": {"phase": phase_index, "consumed_samples": phase_steps_done * phase.global_batch,
                     "fingerprint": self.data.fingerprint, "sources": [s.describe() for s in self.sources]},
            "rope": {"yarn_factor": phase.yarn_factor, "original_context": phase.yarn_original_context},
            "mesh": self._mesh_dict(), "config_sha256": self.digest,
            "model_args": dataclasses.asdict(self.model.args),
            "tokenizer_json": self.sources[0].tokenizer_json,
        }
        ckpt.save(self.ckpt_root, self.step, plan=self.plan, optimizer=self.optimizer, meta=meta,
                  keep_last=self.cfg.checkpoint.keep_last, export_hf=self.cfg.checkpoint.export_hf == "every")

    def finish(self) -> int:
        from pretrain import checkpoint as ckpt

        complete = self.step >= self.cfg.total_steps
        if self.rt.rank == 0:
            latest = ckpt.latest_checkpoint(self.ckpt_root)
            hf_dir = None
            if latest is not None and self.cfg.checkpoint.export_hf != "none":
                hf_dir = ckpt.export_hf_from(latest, self.train_dir / "hf")
            plots_dir = None
            if self.cfg.log.plots:
                from pretrain.plots import make_plots
                plots_dir = make_plots(self.train_dir)
            summary = write_summary(self.train_dir, state="completed" if complete else "stopped",
                                    checkpoint=latest, hf_dir=hf_dir, plots_dir=plots_dir)
            print(f"pretrain: {summary['state']} at step {summary['steps']}: loss {summary['final_loss']}, "
                  f"{summary['tokens']} tokens; checkpoint {summary['checkpoint']}; hf {summary['hf']}", flush=True)
        _write_status(self.run_dir, self.rt.rank, "completed" if complete else "stopped", step=self.step,
                      exit_code=EXIT_OK)
        torch.distributed.barrier()
        return EXIT_OK


def write_summary(train_dir: Path, *, state: str, checkpoint, hf_dir, plots_dir) -> dict:
    """`train/summary.json` from metrics.jsonl (the numbers a report shows come from the files)."""
    from common.io import read_jsonl
    records = list(read_jsonl(train_dir / "metrics.jsonl"))
    last = records[-1] if records else {}
    tail = [r["loss"] for r in records[-10:]]
    summary = {
        "state": state, "steps": last.get("step", 0), "tokens": last.get("tokens", 0),
        "final_loss": last.get("loss"), "final_loss_mean10": sum(tail) / len(tail) if tail else None,
        "first_loss": records[0]["loss"] if records else None,
        "phases": sorted({r["phase_name"] for r in records}, key=lambda n: min(r["step"] for r in records if r["phase_name"] == n)),
        "checkpoint": str(checkpoint) if checkpoint else None, "hf": str(hf_dir) if hf_dir else None,
        "plots": str(plots_dir) if plots_dir else None, "metrics": str(train_dir / "metrics.jsonl"),
        "median_tokens_per_s": sorted(r["tokens_per_s"] for r in records)[len(records) // 2] if records else None,
        "unfiltered_data": any(r.get("unfiltered_data") for r in records),
    }
    evals = [r for r in records if "eval_loss" in r]
    if evals:
        best = min(evals, key=lambda r: r["eval_loss"])
        summary.update(final_eval_loss=evals[-1]["eval_loss"], final_eval_ppl=evals[-1]["eval_ppl"],
                       best_eval_loss=best["eval_loss"], best_eval_step=best["step"])
    atomic_write_json(train_dir / "summary.json", summary)
    return summary


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    stop = StopSignal()  # first: a signal during start-up is honoured at the first step
    args = parse_args(argv)
    try:
        cfg, run_dir = resolve_config(args)
    except ConfigError as e:
        print(f"pretrain.train: {e}", file=sys.stderr)
        return EXIT_CONFIG
    from pretrain.data import DataError
    from pretrain.distributed import init_distributed, shutdown
    
    from pretrain import determinism
    cuda = torch.cuda.is_available()  # the device follows CUDA, whatever the backend
    determinism.configure(determinism.resolve(cfg.deterministic, cuda), cuda)  # before any CUDA kernel
    rt = init_distributed(cfg.parallel.backend)
    trainer = None
    try:
        trainer = Trainer(cfg, run_dir, rt, max_steps=args.max_steps, stop=stop)
        return trainer.run()
    except (ConfigError, DataError) as e:
        print(f"pretrain.train: {e}", file=sys.stderr)
        _write_status(run_dir, rt.rank, "failed", error=str(e), exit_code=EXIT_CONFIG)
        return EXIT_CONFIG
    except Exception as e:
        _write_status(run_dir, rt.rank, "failed", error=f"{type(e).__name__}: {e}", exit_code=EXIT_FAILED,
                      step=getattr(trainer, "step", None))
        raise
    finally:
        shutdown()


def _write_status(run_dir: Path, rank: int, state: str, **extra) -> None:
    if rank == 0:
        atomic_write_json(Path(run_dir) / "train" / "status.json",
                          {"state": state, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra})


if __name__ == "__main__":
    torch.set_printoptions(precision=6)
    sys.exit(main())

