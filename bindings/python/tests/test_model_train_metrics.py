"""Model, trainer and metrics through the binding, checked against NumPy."""
import numpy as np
import pytest

import sae


def relu_reference(model, x):
    pre = (x - model.b_dec) @ model.W_enc + model.b_enc
    return np.maximum(pre, 0)


def test_encode_decode_match_numpy():
    model = sae.Model(d_in=6, n_latents=10, model_seed=3)
    rng = np.random.default_rng(0)
    model.set_tensor("b_dec", rng.normal(size=6).astype(np.float32))
    model.set_tensor("b_enc", rng.normal(size=10).astype(np.float32) * 0.1)
    x = rng.normal(size=(7, 6)).astype(np.float32)
    z = model.encode(x)
    np.testing.assert_allclose(z, relu_reference(model, x), atol=1e-5)
    np.testing.assert_allclose(model.decode(z), z @ model.W_dec + model.b_dec, atol=1e-5)
    # a strided view of the same rows gives the same codes (passed with its ld, no copy)
    big = np.zeros((7, 9), dtype=np.float32)
    big[:, :6] = x
    np.testing.assert_array_equal(model.encode(big[:, :6]), z)
    # float64 input is converted once
    np.testing.assert_allclose(model.encode(x.astype(np.float64)), z)


def test_tensors_roundtrip_and_shape_checks():
    model = sae.Model(d_in=4, n_latents=5)
    assert model.W_enc.shape == (4, 5) and model.W_dec.shape == (5, 4)
    assert model.b_enc.shape == (5,) and model.b_dec.shape == (4,)
    w = np.arange(20, dtype=np.float32).reshape(5, 4) / 20
    model.set_tensor("w_dec", w)
    np.testing.assert_array_equal(model.W_dec, w)
    with pytest.raises(ValueError):
        model.set_tensor("w_dec", w.T)
    with pytest.raises(sae.SaeError) as info:
        model.set_tensor("b_dec", np.array([1, np.nan, 0, 0], dtype=np.float32))
    assert info.value.status == sae.capi.SAE_E_NONFINITE
    assert model.get("d_in") == 4 and model.get("arch") == sae.capi.SAE_ARCH_RELU


def perfect_model(toy):
    """A model whose decoder rows are exactly the true features."""
    n, d = toy.shape
    model = sae.Model(d_in=d, n_latents=n)
    model.set_tensor("w_dec", toy.dictionary())
    return model


def test_metrics_on_a_perfect_dictionary():
    toy = sae.Toy(n_features=12, d=16, seed=2)
    model = perfect_model(toy)
    metrics = sae.Metrics(recovery_threshold=0.9)
    res = metrics.compute(model, toy)
    assert res["mmcs_true"] == pytest.approx(1.0, abs=1e-6)
    assert res["mmcs_learned"] == pytest.approx(1.0, abs=1e-6)
    assert res["frac_recovered"] == 1.0
    cos = metrics.array("cosine")
    d = toy.dictionary().astype(np.float64)
    np.testing.assert_allclose(cos, d @ d.T, atol=1e-5)
    np.testing.assert_allclose(metrics.array("max_cos_true"), 1.0, atol=1e-6)
    assert metrics.array("max_cos_learned").shape == (12,)


def test_metrics_threshold_counts_features():
    toy = sae.Toy(n_features=8, d=8, seed=4)
    model = perfect_model(toy)
    w = model.W_dec
    w[:3] = -w[:3]  # three features point the wrong way: cosine -1
    model.set_tensor("w_dec", w)
    res = sae.Metrics().compute(model, toy)
    # a flipped feature's best match is another feature's direction: far below 0.9
    assert res["frac_recovered"] == pytest.approx(5 / 8)


def test_training_recovers_features():
    toy = sae.Toy(n_features=16, d=32, fire_prob=0.05, seed=1)
    model = sae.Model(d_in=32, n_latents=32, model_seed=1)
    trainer = sae.Trainer(model, lr=3e-3, l1_coefficient=3e-3, batch_size=256)
    before = sae.Metrics().compute(model, toy)["mmcs_true"]
    trainer.train_toy(toy, 3000)
    stats = trainer.stats()
    assert stats["step"] == 3000
    assert np.isfinite(stats["loss"]) and stats["mse"] >= 0
    after = sae.Metrics().compute(model, toy)["mmcs_true"]
    assert after > 0.95 and after > before + 0.3   # 0.992 with these seeds


def test_train_data_and_step_on_numpy_arrays():
    toy = sae.Toy(n_features=8, d=8, seed=3)
    x = toy.sample(512)
    model = sae.Model(d_in=8, n_latents=8)
    trainer = sae.Trainer(model, batch_size=64)
    trainer.step(x[:64])
    assert trainer.stat("step") == 1
    trainer.train_data(x, 10)
    assert trainer.stat("step") == 11
    with pytest.raises(ValueError):
        trainer.step(np.zeros((4, 5), dtype=np.float32))


def test_progress_callback_cancels_and_propagates():
    toy = sae.Toy(n_features=8, d=8)
    model = sae.Model(d_in=8, n_latents=8)
    trainer = sae.Trainer(model, batch_size=32)
    seen = []
    trainer.set_callbacks(progress=lambda step, total, loss: seen.append(step) or step >= 3)
    with pytest.raises(sae.CancelledError):
        trainer.train_toy(toy, 100)
    assert seen[-1] == 3 and trainer.stat("step") == 3
    def boom(step, total, loss):
        raise RuntimeError("from the callback")
    trainer.set_callbacks(progress=boom)
    with pytest.raises(RuntimeError, match="from the callback"):
        trainer.train_toy(toy, 5)
    trainer.set_callbacks()  # removed
    trainer.train_toy(toy, 2)


def test_trainer_keeps_model_alive():
    model = sae.Model(d_in=4, n_latents=4)
    trainer = sae.Trainer(model)
    assert trainer.model is model
    with pytest.raises(TypeError):
        sae.Trainer("not a model")


def test_metric_groups_lists_and_subsets():
    toy = sae.Toy(n_features=6, d=8, seed=3)
    model = perfect_model(toy)
    only = sae.Metrics(metrics_compute="recovery")
    res = only.compute(model, toy)
    assert set(res) >= {"mmcs_true", "mmcs_learned", "frac_recovered"}
    assert "mse" not in res                       # reconstruction group not computed
    with pytest.raises(sae.SaeError) as info:
        only.get("mse")
    assert info.value.status == sae.capi.SAE_E_STATE
    full = sae.Metrics()
    full.compute(model, toy)
    dead = full.list("dead")
    assert dead.dtype == np.int64 and np.all((dead >= 0) & (dead < 6))
    assert full.array("fire_freq").shape == (6,)


def test_inputs_pass_without_copies_when_layout_allows():
    from sae._handle import in_matrix
    a = np.zeros((4, 6), dtype=np.float32)
    got, _, n, ld = in_matrix(a, 6, "x")
    assert got is a and (n, ld) == (4, 6)
    big = np.zeros((4, 9), dtype=np.float32)
    got, _, n, ld = in_matrix(big[:, :6], 6, "x")          # column slice: row stride 9
    assert np.shares_memory(got, big) and ld == 9
    got, _, _, ld = in_matrix(big[1:3, :6], 6, "x")        # row and column slice
    assert np.shares_memory(got, big) and ld == 9
    for other in (a.astype(np.float64), np.asfortranarray(a), a[:, ::2].repeat(2, axis=1)):
        got, _, _, ld = in_matrix(other, 6, "x")           # converted once
        assert got.flags.c_contiguous and got.dtype == np.float32 and ld == 6
