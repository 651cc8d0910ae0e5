"""The discriminator's share of an image tokenizer's step, and the recipe's overhead in `fit`.

A VQGAN-style step on MNIST-sized images: `mnist_vqvae` (64 hidden channels, 512 codes)
as the generator, a `PatchDiscriminator` (64 channels, 2 stride-2 layers: 5x5 logits on
28x28, GroupNorm as `tokenizer_preset` builds it) with hinge losses, Adam for both, a
batch of 64 random images. Timed in turns:

- ``generator (pixel loss)``: the VQ-VAE's own loss, backward, Adam step;
- ``generator (+ adversarial)``: the same plus the discriminator's logits of the
  reconstructions, `hinge_generator_loss` and `adaptive_weight` at the decoder's last
  layer (two extra gradients), the discriminator's weights frozen meanwhile (as
  Lightning's ``toggle_optimizer`` and `fit` do: no gradient is computed for them);
- ``discriminator``: its logits of real and detached reconstructions (the generator's
  forward included, as a step needs it), `hinge_discriminator_loss`, backward, Adam;
- ``tokenizer step, written plainly``: the last two in a row, one step of both players;
- ``tokenizer step, fit's loop``: the same step of ``tokenizer_preset`` through the
  trainer's own step (`TrainSteps` with `build_optimizers`, as `fit` runs it: each group
  frozen while the other steps, the finiteness checks, the sums of the logged terms).

The discriminator's share is ``discriminator / (generator (+ adversarial) +
discriminator)``; the recipe's overhead is fit's step over the plain one.

Run: ``python -m benchmarks.discriminator_share`` (``--quick`` for a smoke test).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from benchmarks._common import apply_threads, interleave, parser, print_table, span, write_json
from genlatent.losses import adaptive_weight, hinge_discriminator_loss, hinge_generator_loss
from genlatent.models import mnist_vqvae, tokenizer_preset
from genlatent.nn import PatchDiscriminator
from genlatent.train.loop import LossModule, StepSettings, TrainSteps
from genlatent.train.optimizers import build_optimizers


def _steps(batch: int, hidden: int, channels: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = mnist_vqvae(hidden_channels=hidden)
    discriminator = PatchDiscriminator(1, channels=channels, layers=2, norm="group")
    generator_optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    discriminator_optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4)
    convolutions = (nn.Conv2d, nn.ConvTranspose2d)
    last_layer = [m for m in model.decoder.modules() if isinstance(m, convolutions)][-1].weight
    x = torch.rand(batch, 1, 28, 28)

    def pixel_step() -> None:
        generator_optimizer.zero_grad(set_to_none=True)
        model.loss(x).loss.backward()
        generator_optimizer.step()

    def adversarial_step() -> None:
        generator_optimizer.zero_grad(set_to_none=True)
        discriminator.requires_grad_(False)  # no gradient for the other player's weights
        out = model(x)
        reconstruction = (out.reconstruction - x).square().mean() + out.quantizer_loss
        adversarial = hinge_generator_loss(discriminator(out.reconstruction))
        weight = adaptive_weight(reconstruction, adversarial, last_layer)
        (reconstruction + weight * adversarial).backward()
        generator_optimizer.step()
        discriminator.requires_grad_(True)

    def discriminator_step() -> None:
        discriminator_optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            fake = model(x).reconstruction
        hinge_discriminator_loss(discriminator(x), discriminator(fake)).backward()
        discriminator_optimizer.step()

    def plain_step() -> None:
        adversarial_step()
        discriminator_step()

    return {
        "generator (pixel loss)": pixel_step,
        "generator (+ adversarial)": adversarial_step,
        "discriminator": discriminator_step,
        "tokenizer step, written plainly": plain_step,
        "tokenizer step, fit's loop": _fit_step(x, hidden, channels),
    }


def _fit_step(x: torch.Tensor, hidden: int, channels: int) -> Any:
    """One step of ``tokenizer_preset`` as `fit` takes it: both groups, in order."""
    torch.manual_seed(0)
    model = tokenizer_preset(
        tuple(x.shape[1:]), hidden_channels=hidden, disc_channels=channels, disc_layers=2,
        disc_start=0,
    )  # fmt: skip
    device = torch.device("cpu")
    optimizers = build_optimizers(model, 2e-4, device, "fp32")
    steps = TrainSteps(LossModule(model), optimizers[0].optimizer, StepSettings(device),
                       optimizers=optimizers)  # fmt: skip
    count = 0

    def step() -> None:
        nonlocal count
        count += 1
        steps.step([(x,)], step=count, epoch=1, position=count)

    return step


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    apply_threads(args.threads)
    if args.quick:
        batch, hidden, channels, repeats = 4, 8, 8, args.repeats or 2
    else:
        batch, hidden, channels, repeats = 64, 64, 64, args.repeats or 7
    timings = interleave(_steps(batch, hidden, channels), repeats=repeats, warmup=1)
    results: dict[str, Any] = {name: t.as_dict() for name, t in timings.items()}
    generator = timings["generator (+ adversarial)"].median
    discriminator = timings["discriminator"].median
    share = discriminator / (generator + discriminator)
    overhead = generator / timings["generator (pixel loss)"].median
    recipe = (
        timings["tokenizer step, fit's loop"].median
        / timings["tokenizer step, written plainly"].median
    )
    rows = [[name, span(t, 1e3)] for name, t in timings.items()]
    print_table(["step", "ms median (range)"], rows)
    print(f"discriminator's share of a generator + discriminator step: {share:.0%}")
    print(f"generator step with the adversarial term / without: {overhead:.2f}x")
    print(f"tokenizer step through fit's loop / written plainly: {recipe:.2f}x")
    payload = {
        "what": "tokenizer step on 28x28x1: mnist_vqvae + PatchDiscriminator, hinge, Adam; "
        "plainly and through fit's TrainSteps",
        "batch_size": batch,
        "hidden_channels": hidden,
        "discriminator_channels": channels,
        "results": results,
        "discriminator_share": share,
        "adversarial_generator_overhead": overhead,
        "fit_step_overhead": recipe,
    }
    path = write_json("discriminator_share", payload, args.out, quick=args.quick)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
