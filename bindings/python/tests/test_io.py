"""Serialisation through the binding: round trips, envelope checks, safetensors."""
import numpy as np
import pytest

import sae


def test_config_roundtrip():
    cfg = sae.Config("toy", n_features=6, d=3, fire_probs=[0.1] * 6, seed=11)
    back = sae.Config.from_bytes(cfg.to_bytes())
    assert back.to_dict().keys() == cfg.to_dict().keys()
    for k, v in cfg.to_dict().items():
        np.testing.assert_array_equal(back[k], v)
    assert sae.inspect(cfg.to_bytes())[0] == "config"


def test_toy_and_model_roundtrip_bit_exact():
    toy = sae.Toy(n_features=10, d=6, seed=4)
    twin = sae.Toy.from_bytes(toy.to_bytes())
    np.testing.assert_array_equal(twin.sample(50, first=7), toy.sample(50, first=7))
    model = sae.Model(d_in=6, n_latents=12, model_seed=2)
    copy = sae.Model.from_bytes(model.to_bytes())
    for t in ("w_enc", "b_enc", "w_dec", "b_dec"):
        np.testing.assert_array_equal(copy.tensor(t), model.tensor(t))
    kind, major, minor = sae.inspect(model.to_bytes())
    assert kind == "model" and major >= 1 and minor >= 0


def test_corrupt_bytes_raise_with_reason():
    data = bytearray(sae.Model(d_in=4, n_latents=4).to_bytes())
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(sae.SaeError) as info:
        sae.Model.from_bytes(bytes(data))
    assert info.value.status == sae.capi.SAE_E_CORRUPT and info.value.message
    with pytest.raises(sae.SaeError):
        sae.inspect(b"not a libsae buffer")


def test_checkpoint_resumes_bit_exactly():
    toy = sae.Toy(n_features=8, d=8, seed=6)
    model = sae.Model(d_in=8, n_latents=16, model_seed=6)
    trainer = sae.Trainer(model, batch_size=32)
    trainer.train_toy(toy, 5)
    resumed = sae.Trainer.from_bytes(trainer.to_bytes())
    assert resumed.model.shape == (8, 16)
    trainer.train_toy(toy, 5)
    resumed.train_toy(toy, 5)
    np.testing.assert_array_equal(resumed.model.W_dec, model.W_dec)
    np.testing.assert_array_equal(resumed.model.b_enc, model.b_enc)
    del trainer, model
    assert resumed.model.encode(toy.sample(3)).shape == (3, 16)


def test_safetensors_roundtrip():
    model = sae.Model(d_in=5, n_latents=7, model_seed=9)
    blob = model.to_safetensors()
    assert blob[8:9] == b"{"                      # 8-byte header length, then JSON
    cfg = model.saelens_cfg()
    assert '"d_in"' in cfg and '"d_sae"' in cfg
    back = sae.Model.from_safetensors(blob)
    np.testing.assert_array_equal(back.W_enc, model.W_enc)
    back2 = sae.Model.from_safetensors(blob, cfg_json=cfg)
    assert back2.shape == (5, 7)


def test_train_toy_many_matches_separate_runs():
    toy = sae.Toy(n_features=8, d=8, seed=8)
    models = [sae.Model(d_in=8, n_latents=8, model_seed=1) for _ in range(2)]
    trainers = [sae.Trainer(m, batch_size=16, l1_coefficient=c) for m, c in zip(models, (1e-3, 1e-2))]
    sae.train_toy_many(trainers, toy, 4)
    solo = sae.Model(d_in=8, n_latents=8, model_seed=1)
    sae.Trainer(solo, batch_size=16, l1_coefficient=1e-2).train_toy(toy, 4)
    np.testing.assert_array_equal(models[1].W_dec, solo.W_dec)
    assert not np.array_equal(models[0].W_dec, models[1].W_dec)


def test_model_of_a_loaded_checkpoint_closes_with_its_trainer():
    toy = sae.Toy(n_features=4, d=4)
    trainer = sae.Trainer(sae.Model(d_in=4, n_latents=4), batch_size=8)
    resumed = sae.Trainer.from_bytes(trainer.to_bytes())
    model = resumed.model
    assert model.encode(toy.sample(2)).shape == (2, 4)
    resumed.close()
    assert model.closed
    with pytest.raises(ValueError):
        model.encode(toy.sample(2))
