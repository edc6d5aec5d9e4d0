from tests.helpers import sample_config


def test_models_are_found_by_name_and_unknown_names_are_none() -> None:
    config = sample_config()
    assert [config.model(m.name) for m in config.models] == config.models
    assert config.model("no-such-model") is None


def test_a_copy_with_other_models_does_not_answer_from_the_originals() -> None:
    config = sample_config()
    assert config.model("sim-small") is not None  # the original's lookup is built
    fewer = config.model_copy(
        update={"models": [m for m in config.models if m.name != "sim-small"]}
    )
    assert fewer.model("sim-small") is None
    assert fewer.model("sim-large") is not None
    assert config.model("sim-small") is not None
