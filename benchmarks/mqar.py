"""MQAR recall study of the sequence mixers: accuracy against pairs, sequence length and state size.

    python benchmarks/mqar.py --profile full [--out benchmarks/results]   # the stored study, ~15 CPU-min
    ONCONET_PROFILE=small python benchmarks/mqar.py --out /tmp/mqar      # a seconds-long smoke run

Every model (one per mixer at equal width, plus narrower-state variants of the linear mixers) is
trained once on a mixture of MQAR settings and evaluated on every (sequence length, pairs) setting,
as in Zoology. Writes ``mqar.csv`` (one row per model and test setting), ``mqar_loss.csv`` (the
training curves) and ``mqar.png``, and prints the accuracy table. Runs on one CPU thread by default.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and benchmarks/kernels.py would shadow the
# kernels package; drop the folder so that ``import kernels`` finds the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from onconet.mqar.data import generate_mqar  # noqa: E402
from onconet.mqar.models import (  # noqa: E402
    MqarLanguageModel,
    MqarModelConfig,
    count_parameters,
    recurrent_state_size,
)
from onconet.mqar.train import (  # noqa: E402
    TrainConfig,
    ablations,
    recall_accuracy,
    train_model,
    zeroed_output,
)


@dataclass(frozen=True)
class ModelSpec:
    """One model of the study: a name, its mixer settings and whether it is a main (equal-width) model."""

    name: str
    mixer: str
    feature_dim: int = 16
    window: int = 16
    main: bool = True
    seeds: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class Profile:
    """Everything a run depends on."""

    vocab_size: int
    d_model: int
    train_settings: tuple[tuple[int, int, int], ...]  # (seq_len, kv pairs, examples)
    test_lengths: tuple[int, ...]
    test_pairs: tuple[int, ...]
    test_examples: int
    train: TrainConfig
    models: tuple[ModelSpec, ...]
    tradeoff_setting: tuple[int, int]  # (seq_len, kv pairs) of the state-size plot


PROFILES: dict[str, Profile] = {
    "full": Profile(
        vocab_size=256,
        d_model=64,
        train_settings=(
            (64, 4, 1000),
            (64, 8, 1000),
            (128, 8, 500),
            (128, 16, 500),
            (256, 16, 250),
            (256, 32, 250),
            (256, 64, 250),
        ),
        test_lengths=(64, 128, 256, 512),
        test_pairs=(4, 8, 16, 32, 64),
        test_examples=200,
        train=TrainConfig(epochs=8, batch_size=16, learning_rate=3e-3),
        models=(
            ModelSpec("attention", "attention", seeds=(0, 1)),
            ModelSpec("based", "based", feature_dim=16, window=16, seeds=(0, 1)),
            ModelSpec("taylor", "taylor", feature_dim=16, seeds=(0, 1)),
            ModelSpec("monarch", "monarch"),
            ModelSpec("based-w64", "based", feature_dim=16, window=64, main=False),
            ModelSpec("taylor-f8", "taylor", feature_dim=8, main=False),
            ModelSpec("taylor-f4", "taylor", feature_dim=4, main=False),
        ),
        tradeoff_setting=(256, 64),
    ),
    "small": Profile(
        vocab_size=64,
        d_model=32,
        train_settings=((32, 2, 128), (64, 4, 64)),
        test_lengths=(32, 64, 128),
        test_pairs=(2, 4, 8),
        test_examples=32,
        train=TrainConfig(epochs=2, batch_size=16, learning_rate=3e-3),
        models=(
            ModelSpec("attention", "attention"),
            ModelSpec("based", "based", feature_dim=8, window=8),
            ModelSpec("taylor", "taylor", feature_dim=8),
            ModelSpec("monarch", "monarch"),
            ModelSpec("taylor-f4", "taylor", feature_dim=4, main=False),
        ),
        tradeoff_setting=(64, 8),
    ),
}


def test_settings(profile: Profile) -> list[tuple[int, int]]:
    """Every (seq_len, pairs) of the grid that fits (4 tokens per pair at least)."""
    return [(n, kv) for n in profile.test_lengths for kv in profile.test_pairs if 4 * kv <= n]


def model_config(profile: Profile, spec: ModelSpec) -> MqarModelConfig:
    """The model configuration of one spec under a profile."""
    return MqarModelConfig(
        spec.mixer,
        vocab_size=profile.vocab_size,
        d_model=profile.d_model,
        feature_dim=spec.feature_dim,
        window=spec.window,
        max_seq_len=max(profile.test_lengths),
    )


def run_study(profile: Profile, only: list[str] | None = None) -> tuple[list[dict], list[dict], list[dict]]:
    """Train and evaluate every model of ``profile`` (each of its seeds).

    Returns:
        Rows of the accuracy table (one per model, seed and test setting), of the training curves, and of
        the ablations (accuracy at the trade-off setting with one part of the model switched off).
    """
    train = [generate_mqar(n, seq, kv, profile.vocab_size, seed=0) for seq, kv, n in profile.train_settings]
    tests = [
        generate_mqar(profile.test_examples, seq, kv, profile.vocab_size, seed=1000)
        for seq, kv in test_settings(profile)
    ]
    probe = next(seg for seg in tests if (seg.seq_len, seg.num_kv_pairs) == profile.tradeoff_setting)
    rows, losses, ablated = [], [], []
    for spec in profile.models:
        if only and spec.name not in only:
            continue
        config = model_config(profile, spec)
        for seed in spec.seeds:
            torch.manual_seed(seed)  # the seed sets the initial weights and the order of the batches
            model = MqarLanguageModel(config)
            start = time.process_time()
            label = f"{spec.name} seed {seed}"
            config_seeded = replace(profile.train, seed=seed)
            result = train_model(model, train, config_seeded, progress=sys.stderr.isatty(), description=label)
            train_cpu = time.process_time() - start
            start = time.process_time()
            accuracies = {seg.name: recall_accuracy(model, seg) for seg in tests}
            eval_cpu = time.process_time() - start
            final_loss = sum(result.losses[-20:]) / len(result.losses[-20:])
            for seg in tests:
                rows.append(
                    {
                        "model": spec.name,
                        "seed": seed,
                        "mixer": spec.mixer,
                        "main": int(spec.main),
                        "d_model": config.d_model,
                        "feature_dim": spec.feature_dim if spec.mixer in ("taylor", "based") else "",
                        "window": spec.window if spec.mixer == "based" else "",
                        "parameters": count_parameters(model),
                        "seq_len": seg.seq_len,
                        "num_kv_pairs": seg.num_kv_pairs,
                        "accuracy": round(accuracies[seg.name], 4),
                        "state_size": recurrent_state_size(config, seg.seq_len),
                        "final_loss": round(final_loss, 4),
                        "train_cpu_s": round(train_cpu, 1),
                        "eval_cpu_s": round(eval_cpu, 1),
                    }
                )
            every = max(1, len(result.losses) // 100)
            for step in range(0, len(result.losses), every):
                chunk = result.losses[step : step + every]
                loss = round(sum(chunk) / len(chunk), 4)
                losses.append({"model": spec.name, "seed": seed, "step": step, "loss": loss})
            switched = {"nothing": accuracies[probe.name]}
            for part, module in ablations(model).items():
                with zeroed_output(module):
                    switched[part] = recall_accuracy(model, probe)
            ablated += [
                {"model": spec.name, "seed": seed, "switched_off": part, "accuracy": round(acc, 4)}
                for part, acc in switched.items()
            ]
            hardest = tests[-1].name
            print(
                f"{label:>20}: trained {len(result.losses)} steps in {train_cpu:.0f} CPU-s, "
                f"final loss {final_loss:.3f}, {hardest} accuracy {accuracies[hardest]:.3f}",
                flush=True,
            )
    return rows, losses, ablated


def mean_over_seeds(rows: list[dict]) -> list[dict]:
    """One row per model and test setting: accuracy averaged over the seeds, with their min and max."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["seq_len"], r["num_kv_pairs"]), []).append(r)
    merged = []
    for group in groups.values():
        accs = [r["accuracy"] for r in group]
        mean = sum(accs) / len(accs)
        merged.append({**group[0], "accuracy": mean, "min": min(accs), "max": max(accs), "seeds": len(accs)})
    return merged


def ablation_table(ablated: list[dict], setting: tuple[int, int]) -> str:
    """A markdown table: accuracy at ``setting`` with each part switched off, per model and seed."""
    parts = list(dict.fromkeys(r["switched_off"] for r in ablated))
    acc = {(r["model"], r["seed"], r["switched_off"]): r["accuracy"] for r in ablated}
    header = ["model", "seed", *(f"off: {p}" for p in parts)]
    lines = [f"Ablations at N={setting[0]}, kv={setting[1]}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    for model, seed in dict.fromkeys((r["model"], r["seed"]) for r in ablated):
        cells = [f"{acc[(model, seed, p)]:.3f}" if (model, seed, p) in acc else "" for p in parts]
        lines.append("| " + " | ".join([model, str(seed), *cells]) + " |")
    return "\n".join(lines)


def read_accuracy_csv(path: Path) -> list[dict]:
    """Rows of an ``mqar.csv`` written by this tool, with their numbers as numbers."""
    integers = ("seed", "main", "d_model", "parameters", "seq_len", "num_kv_pairs", "state_size")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for r in rows:
        r.update({k: int(r[k]) for k in integers})
        r["accuracy"] = float(r["accuracy"])
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write ``rows`` (dicts with the same keys) to ``path`` through a temporary file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def accuracy_table(rows: list[dict]) -> str:
    """A markdown table: one row per model, one column per (seq_len, pairs) setting."""
    settings = sorted({(r["seq_len"], r["num_kv_pairs"]) for r in rows})
    models = list(dict.fromkeys(r["model"] for r in rows))
    acc = {(r["model"], r["seq_len"], r["num_kv_pairs"]): r["accuracy"] for r in rows}
    state = {(r["model"], r["seq_len"]): r["state_size"] for r in rows}
    longest = max(s for s, _ in settings)
    seeds = {r["model"]: r.get("seeds", 1) for r in rows}
    header = ["model", "seeds", f"state@N{longest}", *(f"N{n} kv{kv}" for n, kv in settings)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in models:
        accuracies = (f"{acc[(m, n, kv)]:.3f}" for n, kv in settings)
        cells = [m, str(seeds[m]), f"{state[(m, longest)]:,}", *accuracies]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ordering_summary(rows: list[dict]) -> str:
    """Whether attention ≥ BASED > Taylor holds at the largest number of pairs of each length."""
    acc = {(r["model"], r["seq_len"], r["num_kv_pairs"]): r["accuracy"] for r in rows}
    lines = []
    for n in sorted({r["seq_len"] for r in rows}):
        kv = max(r["num_kv_pairs"] for r in rows if r["seq_len"] == n)
        try:
            a, b, t = (acc[(m, n, kv)] for m in ("attention", "based", "taylor"))
        except KeyError:
            continue
        holds = a >= b - 0.01 and b > t
        lines.append(
            f"N={n}, kv={kv}: attention {a:.3f}, based {b:.3f}, taylor {t:.3f} -> "
            f"attention >= based > taylor {'holds' if holds else 'does NOT hold'}"
        )
    return "\n".join(lines)


def plot(rows: list[dict], profile: Profile, path: Path) -> None:
    """Accuracy against pairs per sequence length (main models) and against state size (all models).

    ``rows`` are ``mean_over_seeds`` rows; the shaded band is the range over the seeds.
    """
    lengths = sorted({r["seq_len"] for r in rows})
    fig, axes = plt.subplots(1, len(lengths) + 1, figsize=(4 * (len(lengths) + 1), 3.6))
    models = list(dict.fromkeys(r["model"] for r in rows))
    colors = {m: plt.cm.tab10(i) for i, m in enumerate(models)}
    for ax, n in zip(axes[:-1], lengths, strict=True):
        for m in models:
            pts = sorted(
                (r["num_kv_pairs"], r["accuracy"], r["min"], r["max"])
                for r in rows
                if r["model"] == m and r["seq_len"] == n
            )
            main = any(r["main"] for r in rows if r["model"] == m)
            if pts and main:
                kv, mean, low, high = (list(c) for c in zip(*pts, strict=True))
                ax.plot(kv, mean, "o-", color=colors[m], label=m)
                ax.fill_between(kv, low, high, color=colors[m], alpha=0.15)  # spread over the seeds
        ax.set(title=f"sequence length {n}", xlabel="key-value pairs", xscale="log", ylim=(-0.02, 1.02))
        ax.set_xticks(profile.test_pairs, [str(p) for p in profile.test_pairs])
        ax.minorticks_off()
    axes[0].set_ylabel("recall accuracy")
    axes[0].legend(fontsize=8)
    n, kv = profile.tradeoff_setting
    ax = axes[-1]
    for m in models:
        pts = [
            (r["state_size"], r["accuracy"])
            for r in rows
            if r["model"] == m and (r["seq_len"], r["num_kv_pairs"]) == (n, kv)
        ]
        for x, y in pts:
            ax.scatter(x, y, color=colors[m], s=40)
            ax.annotate(m, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(title=f"recall vs state (N={n}, {kv} pairs)", xlabel="recurrent state (floats)", xscale="log")
    ax.minorticks_off()
    ax.set_ylim(-0.02, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the study and write its CSVs and plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=os.environ.get("ONCONET_PROFILE", "full"),
        help="study size (default: $ONCONET_PROFILE or full)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder for the outputs")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--models", nargs="*", help="only these models (names as in the table)")
    parser.add_argument("--plot-only", action="store_true", help="redraw mqar.png from an existing mqar.csv")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    profile = PROFILES[args.profile]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.plot_only:
        merged = mean_over_seeds(read_accuracy_csv(args.out / "mqar.csv"))
        plot(merged, profile, args.out / "mqar.png")
        print(accuracy_table(merged))
        return 0
    print(
        f"MQAR study, profile {args.profile}: d_model={profile.d_model}, vocab={profile.vocab_size}, "
        f"{len(profile.models)} models, {len(test_settings(profile))} test settings, "
        f"torch {torch.__version__}, {args.threads} thread(s)",
        flush=True,
    )
    start = time.process_time()
    rows, losses, ablated = run_study(profile, only=args.models)
    write_csv(args.out / "mqar.csv", rows)
    write_csv(args.out / "mqar_loss.csv", losses)
    write_csv(args.out / "mqar_ablation.csv", ablated)
    merged = mean_over_seeds(rows)
    plot(merged, profile, args.out / "mqar.png")
    print(f"\nRecall accuracy, mean over seeds (train config: {asdict(profile.train)})\n")
    print(accuracy_table(merged))
    print("\n" + ordering_summary(merged))
    print("\n" + ablation_table(ablated, profile.tradeoff_setting))
    print(
        f"\ntotal {time.process_time() - start:.0f} CPU-s; "
        f"wrote {args.out / 'mqar.csv'}, mqar_loss.csv, mqar_ablation.csv, mqar.png"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
