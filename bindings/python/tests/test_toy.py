"""Toy generator through the binding: shapes, zero-copy outputs, determinism, codes."""
import numpy as np
import pytest

import sae


@pytest.fixture
def toy():
    return sae.Toy(n_features=16, d=8, fire_prob=0.2, seed=5)


def test_shapes_and_dtypes(toy):
    assert toy.shape == (16, 8) and toy.n_features == 16 and toy.d == 8
    x = toy.sample(10)
    assert x.shape == (10, 8) and x.dtype == np.float32
    d = toy.dictionary()
    assert d.shape == (16, 8)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(toy.fire_probs(), 0.2)


def test_batch_split_and_start_index(toy):
    whole = toy.sample(10)
    parts = np.vstack([toy.sample(3), toy.sample(7, first=3)])
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(toy.sample(4, first=100), whole[:4])


def test_out_buffer_is_written_in_place(toy):
    buf = np.full((20, 8), np.nan, dtype=np.float32)
    view = buf[5:15]                      # a row slice: unit column stride, no copy needed
    got = toy.sample(10, out=view)
    assert got is view and np.shares_memory(got, buf)
    np.testing.assert_array_equal(buf[5:15], toy.sample(10))
    assert np.isnan(buf[:5]).all() and np.isnan(buf[15:]).all()
    wide = np.zeros((10, 12), dtype=np.float32)[:, :8]   # row stride 12 > 8 columns
    np.testing.assert_array_equal(toy.sample(10, out=wide), toy.sample(10))
    with pytest.raises(ValueError):
        toy.sample(10, out=np.zeros((10, 8), dtype=np.float64))
    with pytest.raises(ValueError):
        toy.sample(10, out=np.zeros((8, 10), dtype=np.float32).T)


def test_codes_reconstruct_samples(toy):
    x, codes = toy.sample_codes(200)
    assert codes["row_ptr"].shape == (201,)
    assert codes["feature"].dtype == np.int32 and codes["magnitude"].dtype == np.float32
    x2, dense = toy.codes_dense(200)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_allclose(dense @ toy.dictionary(), x, atol=1e-5)
    # firing rate: 200 x 16 Bernoulli(0.2) draws, 5 sigma
    rate = (dense > 0).mean()
    assert abs(rate - 0.2) < 5 * np.sqrt(0.2 * 0.8 / dense.size)


def test_clone_and_config(toy):
    twin = toy.clone()
    np.testing.assert_array_equal(twin.sample(5), toy.sample(5))
    assert toy.config["seed"] == 5 and toy.config["n_features"] == 16
    assert toy.info("mean_active") == pytest.approx(16 * 0.2)


def test_errors_carry_handle_message(toy):
    with pytest.raises(sae.SaeError) as info:
        toy.sample(0)
    assert info.value.status == sae.capi.SAE_E_SIZE
    assert info.value.message == toy.errmsg() != ""
