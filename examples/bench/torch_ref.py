#!/usr/bin/python3
"""PyTorch CPU reference for the libsae benchmarks (issue 7).

Two workloads, each printed as one machine-readable line starting with RESULT:

  train  An idiomatic SAELens-style training loop on the libsae toy distribution:
         ReLU SAE with decoder-norm-weighted L1, TopK or BatchTopK; Adam; decoder rows
         renormalised after every step. Batches come from a small pre-generated pool so
         the timed loop measures the SAE step only (generation is timed by `gen`).
  gen    A dense PyTorch generator of the same distribution: Bernoulli firing mask
         (B x N), uniform magnitudes (B x N), codes @ dictionary (N x d).

Distribution (libsae toy, issue 2): N unit feature directions in d dims (Gaussian,
normalised), each feature fires independently with probability p, magnitudes uniform
in [mag_lo, mag_hi).

Architecture and loss follow SAELens v6 (sae_lens/saes/standard_sae.py, topk_sae.py,
batchtopk_sae.py): pre-encoder bias (x - b_dec), reconstruction error summed over
dimensions and averaged over the batch, L1 of activations times decoder row norms.
Rates: samples_per_s is wall-clock; cpu_samples_per_s uses process CPU time (all
threads), the steadier figure on a shared machine. Run with Debian's /usr/bin/python3 (python3-torch). Set OPENBLAS_NUM_THREADS to the
same value as --threads: torch.set_num_threads does not reach Debian's OpenBLAS.
"""
import argparse
import resource
import sys
import time

import torch


def make_dictionary(n_features, d, gen):
    dictionary = torch.randn(n_features, d, generator=gen)
    return dictionary / dictionary.norm(dim=1, keepdim=True)


def dense_batch(dictionary, batch, fire_prob, mag_lo, mag_hi, gen):
    """One batch of the toy distribution, the way a PyTorch user writes it (dense)."""
    n_features = dictionary.shape[0]
    fired = torch.rand(batch, n_features, generator=gen) < fire_prob
    magnitudes = torch.rand(batch, n_features, generator=gen) * (mag_hi - mag_lo) + mag_lo
    codes = magnitudes * fired
    return codes @ dictionary


class SAE(torch.nn.Module):
    """SAELens-style SAE: W_enc (d x L), b_enc, W_dec (L x d, unit rows), b_dec."""

    def __init__(self, d, n_latents, arch, k):
        super().__init__()
        w_dec = torch.empty(n_latents, d)
        torch.nn.init.kaiming_uniform_(w_dec)
        w_dec /= w_dec.norm(dim=1, keepdim=True)
        self.W_dec = torch.nn.Parameter(w_dec)
        self.W_enc = torch.nn.Parameter(w_dec.t().clone())
        self.b_enc = torch.nn.Parameter(torch.zeros(n_latents))
        self.b_dec = torch.nn.Parameter(torch.zeros(d))
        self.arch = arch
        self.k = k
        self.threshold = 0.0  # BatchTopK inference threshold (EMA of the smallest kept value)

    def encode(self, x):
        hidden_pre = (x - self.b_dec) @ self.W_enc + self.b_enc
        if self.arch == "relu":
            return torch.relu(hidden_pre)
        if self.arch == "topk":
            values, indices = torch.topk(hidden_pre, self.k, dim=-1)
            return torch.zeros_like(hidden_pre).scatter(-1, indices, torch.relu(values))
        acts = torch.relu(hidden_pre).flatten()
        values, indices = torch.topk(acts, self.k * x.shape[0])
        kept = torch.zeros_like(acts).scatter(-1, indices, values)
        self._track_threshold(values)
        return kept.reshape(hidden_pre.shape)

    @torch.no_grad()
    def _track_threshold(self, values):
        positive = values[values > 0]
        if positive.numel() > 0:
            self.threshold = 0.99 * self.threshold + 0.01 * float(positive.min())

    def forward(self, x):
        feature_acts = self.encode(x)
        sae_out = feature_acts @ self.W_dec + self.b_dec
        mse = (sae_out - x).pow(2).sum(dim=-1).mean()
        return feature_acts, mse

    @torch.no_grad()
    def renormalise_decoder(self):
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True)


def train_step(sae, optimiser, x, l1_coefficient):
    feature_acts, mse = sae(x)
    loss = mse
    if sae.arch == "relu":
        weighted = feature_acts * sae.W_dec.norm(dim=1)
        loss = mse + l1_coefficient * weighted.norm(p=1, dim=-1).mean()
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    sae.renormalise_decoder()
    return loss.item()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_train(a, gen):
    dictionary = make_dictionary(a.n_features, a.d, gen)
    pool = [dense_batch(dictionary, a.batch, a.fire_prob, a.mag_lo, a.mag_hi, gen)
            for _ in range(a.pool)]
    torch.manual_seed(a.seed)
    sae = SAE(a.d, a.latents, a.arch, a.k)
    optimiser = torch.optim.Adam(sae.parameters(), lr=a.lr, betas=(0.9, 0.999))
    first_loss = None
    for step in range(a.warmup):
        first_loss = train_step(sae, optimiser, pool[step % a.pool], a.l1)
    times = []
    loss = first_loss
    cpu0 = time.process_time()
    for step in range(a.steps):
        t0 = time.perf_counter()
        loss = train_step(sae, optimiser, pool[(a.warmup + step) % a.pool], a.l1)
        times.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    total = sum(times)
    with torch.no_grad():  # untimed: the codes' mean L0 on the last batch
        l0 = float((sae.encode(pool[(a.warmup + a.steps - 1) % a.pool]) > 0).sum(dim=1).float().mean())
    print(f"RESULT impl=torch mode=train arch={a.arch} d={a.d} N={a.n_features} "
          f"L={a.latents} batch={a.batch} k={a.k} threads={torch.get_num_threads()} "
          f"steps={a.steps} ms_per_step={1e3 * total / a.steps:.3f} "
          f"best_ms={1e3 * min(times):.3f} samples_per_s={a.batch * a.steps / total:.1f} "
          f"cpu_samples_per_s={a.batch * a.steps / cpu:.1f} "
          f"peak_rss_mb={peak_rss_mb():.1f} first_loss={first_loss:.5g} last_loss={loss:.5g} "
          f"l0={l0:.2f} warmup={a.warmup}")


def run_gen(a, gen):
    dictionary = make_dictionary(a.n_features, a.d, gen)
    for _ in range(a.warmup):
        dense_batch(dictionary, a.batch, a.fire_prob, a.mag_lo, a.mag_hi, gen)
    times = []
    cpu0 = time.process_time()
    for _ in range(a.steps):
        t0 = time.perf_counter()
        dense_batch(dictionary, a.batch, a.fire_prob, a.mag_lo, a.mag_hi, gen)
        times.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    total = sum(times)
    print(f"RESULT impl=torch mode=gen d={a.d} N={a.n_features} batch={a.batch} "
          f"fire_prob={a.fire_prob:.6g} threads={torch.get_num_threads()} steps={a.steps} "
          f"ms_per_batch={1e3 * total / a.steps:.3f} "
          f"samples_per_s={a.batch * a.steps / total:.1f} "
          f"cpu_samples_per_s={a.batch * a.steps / cpu:.1f} peak_rss_mb={peak_rss_mb():.1f}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["train", "gen"], default="train")
    p.add_argument("--arch", choices=["relu", "topk", "batchtopk"], default="relu")
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--n-features", type=int, default=1024)
    p.add_argument("--latents", type=int, default=4096)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--fire-prob", type=float, default=8.0 / 1024)
    p.add_argument("--mag-lo", type=float, default=0.0)
    p.add_argument("--mag-hi", type=float, default=1.0)
    p.add_argument("--l1", type=float, default=1e-3, help="L1 coefficient (ReLU only)")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--pool", type=int, default=4, help="pre-generated batches cycled")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(a.seed)
    with torch.no_grad() if a.mode == "gen" else torch.enable_grad():
        (run_gen if a.mode == "gen" else run_train)(a, gen)


if __name__ == "__main__":
    main(sys.argv[1:])
