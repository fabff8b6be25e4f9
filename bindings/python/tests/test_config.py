"""Parameters by keyword, the registry, error reporting and handle lifetimes."""
import gc
import math

import numpy as np
import pytest

import sae


def test_registry_lists_every_kind():
    for kind in sae.KINDS:
        infos = sae.params(kind)
        assert infos, kind
        for info in infos:
            assert info.kind == kind
            assert sae.param_info(info.name) == info
            assert info.doc, info.name
            if info.type in ("int", "float"):
                assert info.lo <= info.default <= info.hi, info


def test_config_roundtrip_int_float_array():
    cfg = sae.Config("toy", n_features=12, d=5, fire_prob=0.25, seed=9)
    assert cfg.kind == "toy"
    assert (cfg["n_features"], cfg["d"], cfg["seed"]) == (12, 5, 9)
    assert cfg["fire_prob"] == 0.25
    probs = np.linspace(0.1, 0.5, 12)
    cfg["fire_probs"] = probs
    np.testing.assert_array_equal(cfg["fire_probs"], probs)
    cfg.reset("fire_prob")
    assert cfg["fire_prob"] == sae.param_info("fire_prob").default
    copy = cfg.clone()
    copy["d"] = 7
    assert cfg["d"] == 5 and copy["d"] == 7


def test_enum_parameters_take_names():
    cfg = sae.Config("model", arch="relu")
    assert cfg["arch"] == sae.capi.SAE_ARCH_RELU
    cfg["arch"] = "SAE_ARCH_RELU"
    assert cfg["arch"] == sae.capi.SAE_ARCH_RELU
    with pytest.raises(ValueError):
        cfg["arch"] = "no_such_architecture"


def test_out_of_range_raises_with_library_message():
    cfg = sae.Config("toy")
    before = cfg["fire_prob"]
    with pytest.raises(sae.SaeError) as info:
        cfg["fire_prob"] = 1.5
    err = info.value
    assert err.status == sae.capi.SAE_E_RANGE
    assert err.status_name == "SAE_E_RANGE"
    assert "fire_prob" in err.message  # the library names the parameter
    assert cfg["fire_prob"] == before  # a failed call changes nothing


def test_nan_is_rejected():
    cfg = sae.Config("trainer")
    with pytest.raises(sae.SaeError) as info:
        cfg["lr"] = math.nan
    assert info.value.status == sae.capi.SAE_E_NONFINITE


def test_unknown_and_mistyped_parameters():
    cfg = sae.Config("toy")
    with pytest.raises(KeyError):
        cfg["no_such_parameter"] = 1
    with pytest.raises(TypeError):
        cfg["n_features"] = 2.5
    with pytest.raises(sae.SaeError):   # a model parameter on a toy configuration
        cfg["n_latents"] = 4


def test_validate_reports_reason():
    cfg = sae.Config("toy", n_features=4, fire_probs=[0.1, 0.2])  # 2 probabilities for 4 features
    ok, reason = cfg.check()
    assert not ok and reason
    with pytest.raises(sae.SaeError) as info:
        cfg.validate()
    assert info.value.status == sae.capi.SAE_E_CONFIG
    with pytest.raises(sae.SaeError) as info:
        sae.Toy(cfg)
    assert info.value.status == sae.capi.SAE_E_CONFIG and info.value.message == reason


def test_handles_need_matching_config_kind():
    with pytest.raises(TypeError):
        sae.Toy(sae.Config("model"))


def test_close_and_context_manager():
    with sae.Config("metrics") as cfg:
        assert not cfg.closed
    assert cfg.closed
    with pytest.raises(ValueError):
        cfg["recovery_threshold"] = 0.5
    cfg.close()  # idempotent


def test_finalisers_in_any_order():
    """Free model before trainer, trainer before model, everything at once: no crash."""
    for order in ("model_first", "trainer_first", "together"):
        model = sae.Model(d_in=8, n_latents=16)
        trainer = sae.Trainer(model, batch_size=4)
        toy = sae.Toy(n_features=8, d=8)
        if order == "model_first":
            model.close()
            trainer.train_toy(toy, 2)  # the C trainer still holds the model
            trainer.close()
        elif order == "trainer_first":
            trainer.close()
            assert model.encode(toy.sample(2)).shape == (2, 16)
        del model, trainer, toy
        gc.collect()


def test_repr_lists_parameters():
    text = repr(sae.Config("metrics", recovery_threshold=0.5))
    assert "recovery_threshold=0.5" in text


def test_enum_names_for_every_enum_parameter():
    for name, enum in sae.config.PARAM_ENUMS.items():
        info = sae.param_info(name)            # a real parameter ...
        assert info.type == "int"
        assert enum in sae.capi.ENUMS          # ... with a real enum
    cfg = sae.Config("toy", fire_profile="zipf", siblings="at_most_one", mag_model="exponential")
    assert cfg["fire_profile"] == sae.capi.SAE_TOY_FIRE_ZIPF
    assert cfg["siblings"] == sae.capi.SAE_TOY_AT_MOST_ONE
    assert cfg["mag_model"] == sae.capi.SAE_TOY_MAG_EXPONENTIAL
    m = sae.Config("metrics", metrics_compute=["recovery", "matching"])
    assert m["metrics_compute"] == sae.capi.SAE_MG_RECOVERY | sae.capi.SAE_MG_MATCHING
    with pytest.raises(ValueError):
        sae.Config("toy", n_features="many")


def test_public_api_has_docstrings():
    import inspect
    missing = []
    for name in sae.__all__:
        obj = getattr(sae, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        for member, value in (inspect.getmembers(obj) if inspect.isclass(obj) else []):
            if member.startswith("_") and member not in ("__getitem__", "__setitem__"):
                continue
            if (inspect.isfunction(value) or inspect.ismethod(value)
                    or isinstance(value, property)) and not (value.__doc__ or "").strip():
                missing.append(name + "." + member)
    assert not missing, "no docstring: " + ", ".join(missing)
