"""Step costs of notebook 01's candidate regimes on binarised CIFAR-10 shapes (a probe run before fixing the regime).

    python benchmarks/lelp_regime.py [--repeats 3] [--steps 30] [--threads 2]

Issue 17 asks for a teacher retrained per replicate, transfer sets of 10k and 45k, and students trained to a
plateau within a 30-minute cold run. This prints one JSON line: milliseconds per step (median of interleaved
repeats, plain loop with fused AdamW, channels-last, batch 128, CIFAR-10-shaped input) of

* one teacher and a stack of 4 teachers (a replicate each) at the teacher widths (32, 64, 128) and at (16, 32, 64),
  with flip-crop on the batch, as a teacher trains;
* a stack of 10 students (8, 16), one per compared method, with LELP's C * S = 2 * 5 slots on the subclass heads;

and, from those, the seconds of one teacher epoch over 45,000 images and of one student-stack epoch over a
10,000- and a 45,000-image transfer set.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from kdlib.models import CNNConfig, SmallCNN
from kdlib.models.stacked import StackedCNN
from kdlib.models.vision import random_flip_crop

BATCH = 128
TEACHER_IMAGES, SMALL_TRANSFER, LARGE_TRANSFER = 45_000, 10_000, 45_000
SUBCLASS_HEADS = [1, 1, 5, 5, 5, 5, 5, 5, 5, 5]  # labels only, vanilla KD, then eight C * S heads (S = 5)


def model_for(widths: tuple[int, ...], embed_dim: int, count: int, subclasses: list[int] | None = None) -> torch.nn.Module:
    """One SmallCNN (``count`` = 1) or a StackedCNN of ``count``, for 2 classes, channels-last."""
    config = CNNConfig(in_channels=3, num_classes=2, widths=widths, embed_dim=embed_dim)
    model = SmallCNN(config) if count == 1 else StackedCNN(config, count, seed=0, subclasses=subclasses)
    return model.to(memory_format=torch.channels_last)


def step_seconds(model: torch.nn.Module, steps: int, augment: bool, seed: int) -> float:
    """Seconds per step of ``steps`` plain training steps (cross-entropy on every output) on random batches."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x = torch.randn(BATCH, 3, 32, 32, generator=generator).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (BATCH,), generator=generator)
    start = time.perf_counter()
    for _ in range(steps):
        batch = random_flip_crop(x, generator) if augment else x
        logits = model(batch)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(logits.shape[0] if logits.ndim == 3 else 1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    candidates = {
        "teacher_32_64_128_x1": (model_for((32, 64, 128), 256, 1), True, 1),
        "teacher_32_64_128_x4": (model_for((32, 64, 128), 256, 4), True, 4),
        "teacher_16_32_64_x1": (model_for((16, 32, 64), 128, 1), True, 1),
        "teacher_16_32_64_x4": (model_for((16, 32, 64), 128, 4), True, 4),
        "students_8_16_x10": (model_for((8, 16), 32, len(SUBCLASS_HEADS), SUBCLASS_HEADS), False, len(SUBCLASS_HEADS)),
    }
    for model, augment, _ in candidates.values():
        step_seconds(model, 3, augment, 0)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for repeat in range(args.repeats):
        for name, (model, augment, _) in candidates.items():
            times[name].append(step_seconds(model, args.steps, augment, repeat + 1))
    ms = {name: 1000 * statistics.median(values) for name, values in times.items()}
    epoch = lambda name, images: round(ms[name] / 1000 * -(-images // BATCH), 1)  # noqa: E731
    result = {
        "benchmark": "lelp_regime", "batch": BATCH, "threads": args.threads, "repeats": args.repeats, "steps": args.steps,
        "ms_per_step": {k: round(v, 2) for k, v in ms.items()},
        "ms_per_model_step": {k: round(v / candidates[k][2], 2) for k, v in ms.items()},
        "seconds_per_teacher_epoch_45k": {k: epoch(k, TEACHER_IMAGES) for k in ms if k.startswith("teacher")},
        "seconds_per_student_stack_epoch": {"10k": epoch("students_8_16_x10", SMALL_TRANSFER), "45k": epoch("students_8_16_x10", LARGE_TRANSFER)},
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
