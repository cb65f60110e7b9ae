"""Accuracy and speed of the text category classifier against the simulated ground truth.

Draws N distinct videos uniformly from a simulated catalogue, builds each one's Observation
exactly as the in-process device shows it (title, @creator, hashtags, counters, transcript;
checked against `InProcessDevice.observe()` first), classifies them in batches and compares
with `Catalogue.category`. Variants, all on the same test videos:

- **zero-shot** (the shipped default): prototypes from the taxonomy's labels only;
- **zero-shot, embeddings only**: keyword evidence off (`keyword_weight=0`), its ablation;
- **zero-shot, on-screen text only**: transcript dropped (a device without speech recognition);
- **zero-shot + calibration**: `calibrate` on unlabelled observations of another simulated
  world (catalogue seed `--fit-seed`), no labels used;
- **fitted**: `fit` on observations of another simulated world (catalogue seed `--fit-seed`:
  other creators and videos, the same text generator), so this is an in-distribution number:
  what labelled recordings buy, not what real-platform text would give.

Speed is measured on the default classifier once the model is loaded and its word cache warm,
on whatever CPU runs this (torch's default threads): observations per second through
`classify_many` (batches of 64) and the latency of one `classify` call, as a device actor
makes it. Each is reported as best and median of several passes: other work on a shared
machine slows some passes, and the best pass is the closest to the machine's own speed.

    .venv/bin/python bench/classifier_accuracy.py [--n 2000] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from steps_report import cpu_model, load_average, write_section

from bubblescope.contracts import Observation
from bubblescope.perception.embeddings import load_encoder
from bubblescope.perception.text_classifier import TextCategoryClassifier, TextClassifierConfig
from bubblescope.sim.catalogue import CatalogueConfig, build_catalogue
from bubblescope.sim.in_process_device import SIM_EPOCH, observe_video

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Category classifier accuracy (text embeddings)"
REPEATS = 5  # timed passes; the best and the median are reported
SPEED_SAMPLE = 256  # test observations per timed pass


# -- the test data ----------------------------------------------------------------------------
def draw(seed: int, n: int, sample_seed: int) -> tuple[list[Observation], list[str]]:
    """N distinct videos of catalogue `seed`, uniformly, with their true categories."""
    catalogue = build_catalogue(CatalogueConfig(seed=seed))
    rng = np.random.default_rng(sample_seed)
    videos = [int(v) for v in rng.choice(catalogue.n_videos, n, replace=False)]
    return ([observe_video(catalogue, v, SIM_EPOCH) for v in videos],
            [catalogue.category(v) for v in videos])


# -- measuring --------------------------------------------------------------------------------
@dataclass
class Result:
    """One variant's predictions on the test set."""

    name: str
    predicted: list[str | None]
    confidence: list[float]

    def accuracy(self, truth: Sequence[str], level: str) -> float:
        cut = (lambda c: c.split("/")[0]) if level == "main" else (lambda c: c)
        hits = [p is not None and cut(p) == cut(t) for p, t in zip(self.predicted, truth,
                                                                     strict=True)]
        return float(np.mean(hits))


def run(name: str, classifier: TextCategoryClassifier, observations: list[Observation]) -> Result:
    scored = classifier.classify_many_with_scores(observations)
    print(f"{name}: done", flush=True)
    return Result(name, [c for c, _ in scored], [s for _, s in scored])


@dataclass
class Timing:
    load_s: float  # load_encoder: the model from disk, once per process
    prepare_s: float  # prototypes and label-word vectors, once per classifier
    batch: tuple[float, float]  # obs/s through classify_many, full text: best, median
    batch_screen: tuple[float, float]  # the same, on-screen text only
    single_ms: tuple[float, float]  # one classify() call: best, median


def best_and_median(samples: Sequence[float], higher_is_better: bool = True
                    ) -> tuple[float, float]:
    """The best sample (the one least disturbed by other work on the machine) and the median."""
    return (max(samples) if higher_is_better else min(samples)), float(np.median(samples))


def batch_rates(classifier: TextCategoryClassifier, observations: list[Observation]
                ) -> tuple[float, float]:
    rates = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        classifier.classify_many(observations)
        rates.append(len(observations) / (time.perf_counter() - started))
    return best_and_median(rates)


def single_call_ms(classifier: TextCategoryClassifier, observations: list[Observation]
                   ) -> tuple[float, float]:
    times = []
    for observation in observations:
        started = time.perf_counter()
        classifier.classify(observation)
        times.append(1000 * (time.perf_counter() - started))
    return best_and_median(times, higher_is_better=False)


def measure_speed(test: list[Observation], warm_up: list[Observation]
                  ) -> tuple[TextCategoryClassifier, Timing]:
    """The default classifier, loaded and warmed (word cache included), and its timings."""
    started = time.perf_counter()
    encoder = load_encoder()
    loaded = time.perf_counter()
    default = TextCategoryClassifier(encoder=encoder)
    default.classify_many(warm_up[:1])  # prototypes and label words
    prepared = time.perf_counter()
    default.classify_many(warm_up)  # the word cache, as on a device that has run a while
    sample = test[:SPEED_SAMPLE]
    screen = [o.model_copy(update={"transcript": ""}) for o in sample]
    timing = Timing(loaded - started, prepared - loaded, batch_rates(default, sample),
                    batch_rates(default, screen), single_call_ms(default, sample[:100]))
    print(f"speed: {timing}", flush=True)
    return default, timing


def measure(args: argparse.Namespace, test: list[Observation]
            ) -> tuple[list[Result], Timing]:
    fit_obs, fit_labels = draw(args.fit_seed, args.fit_n, 1)
    default, timing = measure_speed(test, fit_obs[:256])
    results = [run("zero-shot (default)", default, test)]
    plain = TextCategoryClassifier(TextClassifierConfig(keyword_weight=0.0),
                                   encoder=default.encoder)
    results.append(run("zero-shot, embeddings only", plain, test))
    screen_only = [o.model_copy(update={"transcript": ""}) for o in test]
    results.append(run("zero-shot, on-screen text only", default, screen_only))
    unlabelled = fit_obs[: args.calibrate_n]
    calibrated = TextCategoryClassifier(encoder=default.encoder).calibrate(unlabelled)
    results.append(run(f"zero-shot + calibration ({len(unlabelled)} unlabelled obs of seed "
                       f"{args.fit_seed})", calibrated, test))
    fitted = TextCategoryClassifier(encoder=default.encoder).fit(fit_obs, fit_labels)
    results.append(run(f"fitted ({args.fit_n} labelled obs of seed {args.fit_seed})", fitted,
                       test))
    return results, timing


# -- the report -------------------------------------------------------------------------------
def per_main_rows(results: Sequence[Result], truth: Sequence[str]) -> list[str]:
    """Per true main: videos, main accuracy of the first result, sub accuracy of each."""
    rows = []
    for main in sorted({t.split("/")[0] for t in truth}):
        idx = [i for i, t in enumerate(truth) if t.startswith(main + "/")]
        hit = np.mean([(results[0].predicted[i] or "").split("/")[0] == main for i in idx])
        subs = " | ".join(f"{np.mean([r.predicted[i] == truth[i] for i in idx]):.3f}"
                          for r in results)
        rows.append(f"| {main} | {len(idx)} | {hit:.3f} | {subs} |")
    return rows


def confusions(result: Result, truth: Sequence[str], level: str, top: int = 8) -> str:
    def cut(c: str) -> str:
        return c.split("/")[0] if level == "main" else c

    pairs = Counter((cut(t), cut(p)) for t, p in zip(truth, result.predicted, strict=True)
                    if p is not None and cut(p) != cut(t))
    return "; ".join(f"{t} → {p} ({n})" for (t, p), n in pairs.most_common(top)) or "none"


def calibration(result: Result, truth: Sequence[str]) -> str:
    confidence = np.array(result.confidence)
    hits = np.array([p == t for p, t in zip(result.predicted, truth, strict=True)])
    sure = confidence >= 0.5
    return (f"mean confidence {confidence.mean():.2f} vs sub accuracy {hits.mean():.3f}; "
            f"confidence ≥ 0.5 on {sure.mean():.0%} of videos, sub accuracy there "
            f"{hits[sure].mean() if sure.any() else float('nan'):.3f}")


def speed_line(timing: Timing) -> str:
    (batch, batch_median), (screen, screen_median) = timing.batch, timing.batch_screen
    single, single_median = timing.single_ms
    return (f"- Speed (zero-shot, warm; best / median of {REPEATS} passes over {SPEED_SAMPLE} "
            f"observations): {batch:.0f} / {batch_median:.0f} observations/s through "
            f"`classify_many` (on-screen text only: {screen:.0f} / {screen_median:.0f}); one "
            f"`classify` call {single:.0f} / {single_median:.0f} ms. Once per process: "
            f"{timing.load_s:.1f} s to load the model; once per classifier: "
            f"{timing.prepare_s:.1f} s for the prototypes and label words.")


def machine_line() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpu_model()}, {os.cpu_count()} CPUs ({usable} usable), torch "
            f"{torch.__version__} on CPU with {torch.get_num_threads()} threads")


def section(args: argparse.Namespace, results: list[Result], timing: Timing,
            truth: Sequence[str], began: datetime, load: str) -> str:
    n = len(truth)
    lines = [
        SECTION, "",
        f"Machine: {machine_line()}.  ",
        f"Date (UTC): {began:%Y-%m-%d %H:%M}. Command: `.venv/bin/python "
        f"bench/classifier_accuracy.py --n {n} --seed {args.seed}`. Load average before/after: "
        f"{load}.", "",
        f"Test set: {n} distinct videos drawn uniformly from the simulated catalogue (seed "
        f"{args.seed}), observed as the in-process device shows them; truth from the catalogue. "
        "Model: all-MiniLM-L6-v2 (packaged, offline). Zero-shot variants use only the "
        "taxonomy's labels (calibration adds unlabelled observations); the fitted one learns "
        "from another world's labelled recordings (same text generator, so it is an "
        "optimistic, in-distribution number). The zero-shot config (prototype template, "
        "keyword weight, temperatures) was chosen on that development world, never on the "
        "test world. The simulator writes titles and transcripts partly from each "
        "subcategory label's own words, which the keyword evidence matches, so its gain here "
        "(ablation: the embeddings-only row) likely overstates its gain on real text; the "
        "main level does not use it.", "",
        "| variant | main accuracy | sub accuracy |",
        "|---|---|---|",
        *(f"| {r.name} | {r.accuracy(truth, 'main'):.3f} | {r.accuracy(truth, 'sub'):.3f} |"
          for r in results), "",
        speed_line(timing),
        f"- Confidence (zero-shot): {calibration(results[0], truth)}.",
        f"- Most confused mains (zero-shot, truth → predicted): "
        f"{confusions(results[0], truth, 'main')}.",
        *(f"- Most confused subcategories ({r.name}): {confusions(r, truth, 'sub')}."
          for r in (results[0], *results[-2:])), "",
        "Per true main category: videos, main accuracy (zero-shot), sub accuracy (zero-shot; "
        "with calibration).", "",
        "| main | videos | main acc | sub acc | sub acc, calibrated |", "|---|---|---|---|---|",
        *per_main_rows([results[0], results[-2]], truth),
    ]
    return "\n".join(lines) + "\n"


# -- main -------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="test videos (default 2000)")
    parser.add_argument("--seed", type=int, default=7, help="test catalogue seed (default 7)")
    parser.add_argument("--fit-seed", type=int, default=11,
                        help="catalogue seed of the fitted variant's training data (default 11)")
    parser.add_argument("--fit-n", type=int, default=3000,
                        help="training observations of the fitted variant (default 3000)")
    parser.add_argument("--calibrate-n", type=int, default=1000,
                        help="unlabelled observations for the calibrated variant (default 1000)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md",
                        help="Markdown file whose section this benchmark writes")
    args = parser.parse_args(argv)
    if args.seed == args.fit_seed:
        parser.error("--fit-seed must differ from --seed: fit and test on different worlds")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began, load_before = datetime.now(UTC), load_average()
    test, truth = draw(args.seed, args.n, 0)
    results, timing = measure(args, test)
    text = section(args, results, timing, truth, began, f"{load_before} / {load_average()}")
    write_section(args.out, SECTION, text)
    print(f"\n{text}\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
