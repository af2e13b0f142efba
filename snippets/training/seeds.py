"""Test accuracy of train_digits.py's default settings over several seeds, on the CPU.

One seed is one deterministic computation on the CPU: rerunning it gives the same accuracy to
the last digit, so repeated runs of one seed say nothing about how much the result depends on
the seed. This script trains once per seed (the default 30 epochs, 1 thread) and writes
seeds_results.json next to this file; tests/training/test_seeds.py reruns seeds to check it.

    python snippets/training/seeds.py                 # seeds 0 to 9
    python snippets/training/seeds.py --seeds 3 --output /tmp/seeds.json
"""

import argparse
import datetime
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the snippets root
import torch  # noqa: E402
from training.train_digits import Config, fit, write_json_atomic  # noqa: E402

TEST_IMAGES = 360


def one_seed(seed: int) -> dict:
    """Train with the default Config and this seed; the test accuracy and the best epoch."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script's default --threads 1
    try:
        _, result = fit(Config(seed=seed, device="cpu"), progress=False, log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    return {
        "seed": seed,
        "test_accuracy": result["test_accuracy"],
        "test_correct": round(result["test_accuracy"] * TEST_IMAGES),
        "best_epoch": result["best_epoch"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="seeds.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1")
    parser.add_argument("--output", type=Path, default=HERE / "seeds_results.json")
    args = parser.parse_args(argv)
    runs = [one_seed(seed) for seed in range(args.seeds)]
    for run in runs:
        print(run)
    write_json_atomic(
        args.output,
        {
            "date": datetime.date.today().isoformat(),
            "epochs": Config().epochs,
            "test_images": TEST_IMAGES,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "runs": runs,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
