"""Put one-line bugs into a scratch copy of genlatent and require the tests to catch each.

Each `Mutation` names a file, a piece of its text that must occur exactly once, what to
put in its place, and the tests that must fail once it is there. For every mutation the
script copies ``src/``, ``tests/`` and ``pyproject.toml`` into a temporary folder, applies
the mutation to the copy, and runs the listed tests there with ``PYTHONPATH`` on the
copy's ``src`` (checked: the copy's ``genlatent`` is the one imported, not the editable
install). The working tree is never written, so an interrupted run leaves nothing behind.

It first runs the selected tests on an unmutated copy (they must pass), then every
mutation, two at a time by default, and prints a table. The exit status is 0 only when
every mutation is killed (its tests fail); it is 1 when one survives, when its tests
cannot run (a node id that no longer exists), or when its original text is not found
exactly once in the working tree, so the list cannot silently rot as the code moves.

Usage::

    python scripts/mutation_check.py                 # everything, about two minutes
    python scripts/mutation_check.py --list          # the mutations, nothing run
    python scripts/mutation_check.py --only kl-sign --only iwae-log-k
    python scripts/mutation_check.py --json out.json # also write the results
    python scripts/mutation_check.py --only NAME --explore  # which listed tests fail, no -x

A new behaviour users rely on adds one `Mutation` here, with the test that pins it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("src", "tests", "pyproject.toml")
TIMEOUT_S = 300  # per pytest process; a hang is a failure, not a pass


@dataclass(frozen=True)
class Mutation:
    """One bug: in ``file``, ``original`` (exactly once) becomes ``replacement``."""

    name: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]
    what: str


QUANTIZE_F = "src/genlatent/functional/quantize.py"
QUANTIZE_NN = "src/genlatent/nn/quantize.py"
T_QF = "tests/functional/test_quantize_functional.py"
T_VQ = "tests/nn/test_vector_quantizer.py"
T_GAUSS = "tests/functional/test_gaussian.py"
T_IWAE = "tests/losses/test_iwae_loss.py"
T_CONTRACT = "tests/nn/test_quantizer_contract.py"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "kl-sign",
        "src/genlatent/functional/gaussian.py",
        "per_example = -0.5 * (1.0 + log_var",
        "per_example = 0.5 * (1.0 + log_var",
        (f"{T_GAUSS}::test_kl_matches_torch_distributions",),
        "the Gaussian KL to N(0, I) with its sign flipped",
    ),
    Mutation(
        "reparameterize-half",
        "src/genlatent/functional/gaussian.py",
        "return mean + torch.exp(0.5 * log_var) * eps",
        "return mean + torch.exp(log_var) * eps",
        (f"{T_GAUSS}::test_reparameterize_follows_dtype_and_matches_moments",),
        "the reparameterization scales by the variance, not the standard deviation",
    ),
    Mutation(
        "ema-decay-swap",
        QUANTIZE_F,
        "new_embed_sum = embed_sum.to(dtype) * decay + sums.to(dtype) * (1.0 - decay)",
        "new_embed_sum = embed_sum.to(dtype) * (1.0 - decay) + sums.to(dtype) * decay",
        (
            f"{T_QF}::test_ema_update_bias_correction_first_step_gives_batch_means",
            f"{T_QF}::test_ema_update_worked_numbers_unbalanced",
            f"{T_QF}::test_ema_update_first_bias_corrected_step",
        ),
        "the EMA of the code sums weighs the new batch by decay and the past by 1 - decay",
    ),
    Mutation(
        "ema-laplace-smoothing",
        QUANTIZE_F,
        "smoothed = (avg_cluster_size + eps) / (total + num_codes * eps) * total",
        "smoothed = avg_cluster_size",
        (
            f"{T_QF}::test_ema_update_laplace_smoothing_exact_values_of_unused_codes",
            f"{T_QF}::test_ema_update_worked_numbers_unbalanced",
        ),
        "the EMA cluster sizes without Laplace smoothing",
    ),
    Mutation(
        "commitment-weight-straight-through",
        QUANTIZE_NN,
        "loss = weighted if ema else losses.codebook + weighted",
        "loss = weighted if ema else commitment_weight * losses.codebook + losses.commitment",
        (f"{T_VQ}::test_loss_and_codebook_gradient_by_hand",),
        "a learnable codebook: beta weighs the codebook term instead of the commitment term",
    ),
    Mutation(
        "commitment-weight-ema",
        QUANTIZE_NN,
        "loss = weighted if ema else losses.codebook + weighted",
        "loss = commitment_weight * losses.codebook if ema else losses.codebook + weighted",
        (f"{T_VQ}::test_ema_gradient_is_the_weighted_commitment_gradient_exactly",),
        "an EMA codebook: beta weighs the (detached) codebook term, the encoder gets none",
    ),
    Mutation(
        "dead-code-threshold",
        QUANTIZE_NN,
        "dead = torch.nonzero(self.steps_since_used >= after).squeeze(1)",
        "dead = torch.nonzero(self.steps_since_used > after).squeeze(1)",
        (f"{T_VQ}::test_dead_codes_are_reseeded_on_inputs",),
        "a code is restarted one step after restart_dead_codes unused steps, not at it",
    ),
    Mutation(
        "ema-all-reduce-op",
        QUANTIZE_NN,
        "dist.all_reduce(stats, op=dist.ReduceOp.SUM)",
        "dist.all_reduce(stats, op=dist.ReduceOp.MAX)",
        ("tests/nn/test_vector_quantizer_distributed.py::test_replicas_keep_identical_codebooks",),
        "the replicas' EMA statistics combined by max, not summed",
    ),
    Mutation(
        "straight-through-detach",
        QUANTIZE_F,
        "return quantized.detach().to(inputs.dtype) + (inputs - inputs.detach())",
        "return quantized.to(inputs.dtype) + (inputs - inputs.detach())",
        (f"{T_QF}::test_straight_through_value_and_identity_gradient",),
        "the straight-through estimator also sends the decoder's gradient to the codebook",
    ),
    Mutation(
        "iwae-log-k",
        "src/genlatent/losses/iwae.py",
        "bound = torch.logsumexp(weights.log_weights, dim=0) - math.log(count)",
        "bound = torch.logsumexp(weights.log_weights, dim=0)",
        (f"{T_IWAE}::test_equal_weights_give_the_common_value",),
        "the IWAE bound without its - log K",
    ),
    Mutation(
        "iwae-bound-log-k",
        "src/genlatent/metrics/iwae.py",
        "return reduce_batch(total - math.log(num_samples), reduction)",
        "return reduce_batch(total, reduction)",
        ("tests/metrics/test_metrics.py::test_iwae_is_exact_when_q_is_the_posterior",),
        "the IWAE evaluation bound without its - log k",
    ),
    Mutation(
        "resume-rng-restore",
        "src/genlatent/_rng.py",
        'torch.set_rng_state(states["cpu"].cpu())',
        'states["cpu"].cpu()',
        ("tests/train/test_runner.py::test_resume_equals_uninterrupted",),
        "resume does not restore the global torch RNG (dead-code restarts draw from it)",
    ),
    Mutation(
        "vae-loss-reduction",
        "src/genlatent/losses/elbo.py",
        "loss=reduce_batch(loss, reduction),",
        'loss=reduce_batch(loss, "sum"),',
        ("tests/losses/test_elbo.py::test_reductions_and_beta",),
        "vae_loss sums its loss over the batch whatever reduction asks",
    ),
    Mutation(
        "iwae-loss-reduction",
        "src/genlatent/losses/iwae.py",
        "loss=reduce_batch(-bound, reduction),",
        'loss=reduce_batch(-bound, "sum"),',
        (f"{T_IWAE}::test_matches_brute_force_importance_weights",),
        "iwae_loss sums its loss over the batch whatever reduction asks",
    ),
    Mutation(
        "vqvae-loss-reduction",
        "src/genlatent/losses/vq.py",
        "loss=reduce_batch(squared + shared, reduction),",
        'loss=reduce_batch(squared + shared, "sum"),',
        ("tests/losses/test_vq_loss.py::test_reductions",),
        "vqvae_loss sums its loss over the batch whatever reduction asks",
    ),
    Mutation(
        "vq-losses-reduction",
        QUANTIZE_F,
        "return VQLosses(reduce_batch(codebook, reduction), reduce_batch(commitment, reduction))",
        'return VQLosses(reduce_batch(codebook, reduction), reduce_batch(commitment, "sum"))',
        (f"{T_QF}::test_vq_losses_formula_and_reductions",),
        "the commitment term sums over the batch whatever reduction asks",
    ),
    Mutation(
        "vq-losses-element-mean",
        QUANTIZE_F,
        "            commitment = commitment / per_example_size\n",
        "",
        (f"{T_QF}::test_vq_losses_formula_and_reductions",),
        "the commitment term (no codebook gradient) sums over the elements of an example",
    ),
    Mutation(
        "reduce-batch-mean",
        "src/genlatent/functional/_reduce.py",
        "return per_example.mean()",
        "return per_example.sum()",
        (f"{T_GAUSS}::test_kl_reductions_are_consistent",),
        'reduction="mean" sums over the batch, in every loss at once',
    ),
    Mutation(
        "transformer-prior-causal-mask",
        "src/genlatent/priors/transformer.py",
        "y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=self.causal)",
        "y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=False)",
        (
            "tests/priors/test_priors.py::test_changing_current_and_later_codes_leaves_logits_unchanged",
        ),
        "the transformer prior attends to later positions while training",
    ),
    Mutation(
        "maskgit-causal",
        "src/genlatent/priors/maskgit.py",
        "causal=False, device=device, dtype=dtype,",
        "causal=True, device=device, dtype=dtype,",
        (
            "tests/priors/test_maskgit.py::test_every_code_sees_the_codes_after_it_but_not_the_masked_ones",
        ),
        "MaskGIT's transformer attends to earlier positions only",
    ),
    Mutation(
        "maskgit-loss-every-code",
        "src/genlatent/priors/maskgit.py",
        "loss = reduce_batch((nll * flat_mask).sum(dim=1) / flat_mask.sum(dim=1), reduction)",
        "loss = reduce_batch(nll.mean(dim=1), reduction)",
        (
            "tests/priors/test_maskgit.py::test_the_loss_is_the_cross_entropy_of_the_masked_codes_only",
        ),
        "MaskGIT's loss scores the unmasked codes too",
    ),
    Mutation(
        "fsq-even-level-offset",
        "src/genlatent/functional/fsq.py",
        "offset = torch.where(torch.remainder(count, 2) == 0, 0.5, 0.0).to(dtype)",
        "offset = torch.where(torch.remainder(count, 2) == 0, 0.0, 0.0).to(dtype)",
        (f"{T_CONTRACT}::test_fsq_even_levels_take_the_half_level_offset",),
        "FSQ without the half-level offset of an even level count",
    ),
    Mutation(
        "free-bits-clamp",
        "src/genlatent/losses/elbo.py",
        "active = per_dim.detach().mean(dim=0) >= free_bits",
        "active = per_dim.detach().mean(dim=0) >= 0.0",
        ("tests/losses/test_elbo_options.py::test_free_bits_value_and_gradients",),
        "free bits never charge the threshold: a dimension below it keeps its gradient",
    ),
    Mutation(
        "lfq-entropy-sign",
        "src/genlatent/functional/lfq.py",
        "loss = per_sample + diversity_gamma * kl",
        "loss = per_sample - diversity_gamma * kl",
        (f"{T_CONTRACT}::test_lfq_entropy_equals_brute_force_over_all_codes",),
        "the LFQ entropy loss rewards a batch that uses few codes",
    ),
    Mutation(
        "lfq-global-entropy",
        "src/genlatent/nn/lfq.py",
        "reduce = _global_sum if self.training and replicated() else None",
        "reduce = None",
        ("tests/nn/test_scalar_quantizers_distributed.py",),
        "LFQ under DDP: each replica's batch entropy over its own shard only",
    ),
    Mutation(
        "loss-options-in-evaluation",
        "src/genlatent/train/loop.py",
        "        if self.training:\n            kwargs |= self.options",
        "        if True:\n            kwargs |= self.options",
        (
            "tests/train/test_objective_options.py::test_options_reach_the_loss_in_training_mode_only",
            "tests/train/test_objective_options.py::test_beta_weights_the_trained_kl_and_evaluation_scores_the_true_elbo",
        ),
        "the training objective's options (beta, ...) also change what evaluation scores",
    ),
    Mutation(
        "group-start-ignored",
        "src/genlatent/train/optimizers.py",
        "        return step >= self.start_step",
        "        return True",
        (
            "tests/train/test_fit_groups.py::test_before_the_start_step_the_discriminator_is_untouched_and_after_it_both_train",
        ),
        "a parameter group (a tokenizer's discriminator) trains before its start step",
    ),
    Mutation(
        "guidance-ignored",
        "src/genlatent/priors/_base.py",
        "logits = unconditional + scale * (conditional - unconditional)",
        "logits = conditional",
        ("tests/priors/test_guidance.py::test_greedy_guided_samples_follow_the_guided_logits",),
        "classifier-free guidance draws from the conditional logits whatever the scale",
    ),
    Mutation(
        "mnist-variant-unchecked",
        "src/genlatent/data/idx.py",
        "if other != variant and other_split == split and found == signature:",
        "if False:",
        ("tests/data/test_data_idx.py::test_fashion_mnist_files_are_not_read_as_mnist",),
        "Fashion-MNIST's files load as MNIST without a word",
    ),
    Mutation(
        "binarize-test-once",
        "src/genlatent/train/fit.py",
        "            self.data = data.binarized()",
        "            pass",
        (
            "tests/train/test_objective_options.py::test_binarize_draws_each_training_batch_afresh_and_the_test_set_once",
        ),
        "a binarized run scores its test set in grey levels, unlike its evaluation",
    ),
    Mutation(
        "ssim-c2",
        "src/genlatent/metrics/reconstruction.py",
        "c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2",
        "c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K1 * data_range) ** 2",
        (
            "tests/metrics/test_reconstruction.py::test_ssim_matches_the_papers_formula_window_by_window",
        ),
        "SSIM's contrast-structure constant C2 built from K1 instead of K2",
    ),
    Mutation(
        "adaptive-weight-eps",
        "src/genlatent/losses/adversarial.py",
        "weight = reconstruction_norm / (adversarial_norm + eps)",
        "weight = reconstruction_norm / adversarial_norm",
        (
            "tests/losses/test_adversarial.py::test_adaptive_weight_is_the_ratio_of_gradient_norms_in_closed_form",
        ),
        "VQGAN's adaptive weight without the epsilon of its denominator",
    ),
    Mutation(
        "hinge-fake-margin",
        "src/genlatent/losses/adversarial.py",
        "_per_example(F.relu(1.0 + fake))",
        "_per_example(F.relu(1.0 - fake))",
        ("tests/losses/test_adversarial.py::test_hinge_losses_match_their_definitions",),
        "the discriminator's hinge pushes fake logits up instead of down",
    ),
    Mutation(
        "perceptual-unnormalised",
        "src/genlatent/losses/perceptual.py",
        "return features / (features.square().sum(dim=1, keepdim=True).sqrt() + _EPS)",
        "return features",
        ("tests/losses/test_perceptual.py::test_matches_the_lpips_formula",),
        "LPIPS-style features compared without scaling each position's channels to unit length",
    ),
    Mutation(
        "patchgan-last-stride",
        "src/genlatent/nn/discriminator.py",
        "stride = 2 if level < layers else 1",
        "stride = 2",
        ("tests/nn/test_discriminator.py::test_each_logit_sees_a_patch_of_the_receptive_field",),
        "the PatchGAN's stride-1 convolution made stride 2 (another receptive field)",
    ),
    Mutation(
        "tensorboard-no-purge",
        "src/genlatent/train/trackers.py",
        "purge_step = step + 1 if step > 0 else None",
        "purge_step = None",
        ("tests/train/test_trackers.py::test_tensorboard_after_a_resume_shows_each_step_once",),
        "a resumed run's TensorBoard shows the steps trained again twice",
    ),
    Mutation(
        "wandb-new-run-on-resume",
        "src/genlatent/train/trackers.py",
        'run_id = id_file.read_text(encoding="utf-8").strip() if id_file.is_file() else None',
        "run_id = None",
        (
            "tests/train/test_trackers.py::test_wandb_offline_files_hold_every_metrics_line_and_a_resume_continues_the_run",
        ),
        "a resumed run starts a new W&B run instead of continuing its own",
    ),
)


@dataclass
class Result:
    name: str
    file: str
    status: str  # killed, survived, error
    seconds: float
    tests: tuple[str, ...]
    detail: str = ""


def _check_list(mutations: tuple[Mutation, ...]) -> list[str]:
    """Problems with the list itself: a name twice, an original not found exactly once."""
    problems = []
    names = [m.name for m in mutations]
    problems += [f"{n}: name used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for m in mutations:
        path = ROOT / m.file
        if not path.is_file():
            problems.append(f"{m.name}: {m.file} does not exist")
            continue
        count = path.read_text(encoding="utf-8").count(m.original)
        if count != 1:
            problems.append(f"{m.name}: original text found {count} times in {m.file}, not once")
        if m.original == m.replacement or not m.tests:
            problems.append(f"{m.name}: a mutation must change the text and name its tests")
    return problems


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)


def _env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(copy / "src"),
        PYTHONDONTWRITEBYTECODE="1",  # no stale bytecode between a file and its mutant
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    # tests that read MNIST find it beside the working tree, not beside the copy
    env.setdefault("GENLATENT_TEST_MNIST", str(ROOT.parent / "shared" / "data" / "mnist"))
    return env


def _pytest(copy: Path, tests: tuple[str, ...], *, explore: bool = False) -> tuple[int, str]:
    stop = [] if explore else ["-x"]
    command = [sys.executable, "-m", "pytest", *stop, "-q", "-p", "no:cacheprovider"]
    command += ["-p", "no:randomly", "--no-header", "-rfE", *tests]
    try:
        done = subprocess.run(
            command, cwd=copy, env=_env(copy), capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {TIMEOUT_S} s"
    return done.returncode, done.stdout + done.stderr


def _check_import(copy: Path) -> None:
    """The copy's genlatent is what the tests import, not the editable install's."""
    code = "import genlatent; print(genlatent.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=copy, env=_env(copy), capture_output=True, text=True
    )
    where = Path(out.stdout.strip()).resolve()
    if out.returncode != 0 or not where.is_relative_to(copy.resolve()):
        raise SystemExit(f"mutation check: genlatent imported from {where}, not the copy {copy}")


def _failed_lines(output: str) -> str:
    return "; ".join(line for line in output.splitlines() if line.startswith(("FAILED", "ERROR")))


def _run_one(m: Mutation, scratch: Path, explore: bool) -> Result:
    copy = scratch / m.name
    _copy_tree(copy)
    target = copy / m.file
    text = target.read_text(encoding="utf-8")
    target.write_text(text.replace(m.original, m.replacement, 1), encoding="utf-8")
    start = time.perf_counter()
    code, output = _pytest(copy, m.tests, explore=explore)
    seconds = time.perf_counter() - start
    shutil.rmtree(copy, ignore_errors=True)
    if code == 1:  # tests ran and at least one failed
        return Result(m.name, m.file, "killed", seconds, m.tests, _failed_lines(output))
    if code == 0:
        return Result(m.name, m.file, "survived", seconds, m.tests)
    tail = " | ".join(output.strip().splitlines()[-3:])
    return Result(m.name, m.file, "error", seconds, m.tests, f"pytest exit {code}: {tail}")


def _table(results: list[Result]) -> str:
    rows = [("mutation", "file", "result", "s", "tests")]
    for r in results:
        short = ", ".join(t.removeprefix("tests/") for t in r.tests)
        rows.append(
            (r.name, r.file.removeprefix("src/genlatent/"), r.status, f"{r.seconds:.1f}", short)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[4]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the mutations and exit")
    parser.add_argument("--only", action="append", metavar="NAME", help="run this one (repeat)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument("--workers", type=int, default=2, help="mutations run at once (2)")
    parser.add_argument(
        "--explore", action="store_true", help="run every listed test (no -x), show failures"
    )
    args = parser.parse_args(argv)

    problems = _check_list(MUTATIONS)
    if problems:
        print("mutation check: the list has rotted:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name}: {m.file}: {m.what}\n    tests: {' '.join(m.tests)}")
        return 0
    chosen = MUTATIONS
    if args.only:
        unknown = sorted(set(args.only) - {m.name for m in MUTATIONS})
        if unknown:
            print(f"mutation check: no mutation named {', '.join(unknown)}", file=sys.stderr)
            return 1
        chosen = tuple(m for m in MUTATIONS if m.name in args.only)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="genlatent-mutants-") as tmp:
        scratch = Path(tmp)
        baseline = scratch / "_baseline"
        _copy_tree(baseline)
        _check_import(baseline)
        tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        code, output = _pytest(baseline, tests, explore=True)
        if code != 0:
            print(output[-4000:], file=sys.stderr)
            print(f"mutation check: the unmutated tests fail (pytest exit {code})", file=sys.stderr)
            return 1
        print(f"baseline: {len(tests)} test selections pass on the unmutated copy", flush=True)
        with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
            results = list(pool.map(lambda m: _run_one(m, scratch, args.explore), chosen))
    elapsed = time.perf_counter() - started

    print(_table(results))
    for r in results:
        if r.status != "killed" or args.explore:
            print(f"{r.name} ({r.status}): {r.detail or 'no listed test failed'}")
    bad = [r.name for r in results if r.status != "killed"]
    print(f"{len(results) - len(bad)} of {len(results)} mutations killed in {elapsed:.0f} s")
    if args.json:
        data = {"seconds": round(elapsed, 1), "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if bad:
        print(f"mutation check: not killed: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
