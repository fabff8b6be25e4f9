#!/usr/bin/env python3
"""Train a ReLU sparse autoencoder on a toy with known features and print how well the
learned decoder directions recover them.

    PYTHONPATH=bindings/python /usr/bin/python3 bindings/python/examples/train_toy.py [steps]

The library is found through SAE_LIBRARY, an install prefix, or the newest build*/ tree.
"""
import sys
import time

import numpy as np

import sae


def recovery_table(metrics, title):
    res = metrics.results()
    best = np.sort(metrics.array("max_cos_true"))
    q = np.quantile(best, [0.0, 0.25, 0.5, 0.75, 1.0])
    print("\n" + title)
    print("  %-44s %8.4f" % ("mean max cosine, true -> learned (MMCS)", res["mmcs_true"]))
    print("  %-44s %8.4f" % ("mean max cosine, learned -> true", res["mmcs_learned"]))
    print("  %-44s %8.4f" % ("fraction of true features recovered (>= 0.9)",
                             res["frac_recovered"]))
    print("  per-feature max cosine: min %.3f  q25 %.3f  median %.3f  q75 %.3f  max %.3f" % tuple(q))
    print("  features with max cosine >= 0.99: %2d / %d,  >= 0.9: %2d,  >= 0.5: %2d"
          % ((best >= 0.99).sum(), best.size, (best >= 0.9).sum(), (best >= 0.5).sum()))


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    print("libsae %s from %s\n%s" % (sae.version(), sae.library_path(), sae.build_info()))
    toy = sae.Toy(n_features=32, d=64, fire_prob=0.05, seed=1)
    model = sae.Model(d_in=64, n_latents=64, arch="relu", model_seed=1)
    trainer = sae.Trainer(model, lr=3e-3, l1_coefficient=3e-3, batch_size=256)
    metrics = sae.Metrics(recovery_threshold=0.9)

    metrics.compute(model, toy)
    recovery_table(metrics, "before training:")

    def progress(step, total, loss):
        if step % 500 == 0 or step == total:
            print("  step %5d / %d   loss %.5f" % (step, total, loss))
    trainer.set_callbacks(progress=progress)
    print("\ntraining %d steps:" % steps)
    t0 = time.perf_counter()
    trainer.train_toy(toy, steps)
    stats = trainer.stats()
    print("  last batch: MSE %.2e, L0 %.2f active latents per row (%.2f s)"
          % (stats["mse"], stats["l0"], time.perf_counter() - t0))

    metrics.compute(model, toy)
    recovery_table(metrics, "after training:")

    # The same model on fresh data: reconstruction error of 4096 held-out samples.
    x = toy.sample(4096, first=10**9)
    xhat = model.decode(model.encode(x))
    print("\nheld-out relative reconstruction error: %.2e"
          % (np.sum((x - xhat) ** 2) / np.sum(x ** 2)))


if __name__ == "__main__":
    main()
