"""``genolm-eval-lm``: Hydra entrypoint over :func:`genolm.eval_lm.run`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from genolm.config_schema import EvalLMConfig
from genolm.utils import config_dir, report_errors


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval_lm")
@report_errors(EvalLMConfig)
def main(cfg: DictConfig) -> None:
    """Print the LM's bits/base beside every Markov order."""
    from genolm.eval_lm import run

    res = run(cfg)
    print(f"{res['windows']:,} windows ({res['bases']:,} bases; {res['skipped']:,} with N skipped)")
    print(f"LM: {res['lm_bits_per_base']:.4f} bits/base")
    print("Markov order   fitted on: training strand / both strands")
    for order, bits in res["markov"].items():
        both = res["markov_both_strands"][order]
        best = "  (best)" if order == res["best_order"] else ""
        print(f"Markov order {order:>2}: {bits:.4f} / {both:.4f}{best}")
    verdict = "below" if res["delta"] < 0 else "above"
    print(f"LM is {abs(res['delta']):.4f} bits/base {verdict} the best chain; "
          f"report in {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
