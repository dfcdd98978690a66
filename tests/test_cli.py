"""pipeline/cli.py: every overridable Recipe setting is a `build` flag that reaches the recipe."""

import pytest

from tfjs_transfer import cli, heads

BASE = ["build", "--data", "d", "--weights", "none"]
# the flags users know; a new Recipe option adds itself to this list
FLAGS = ["--epochs", "--batch-size", "--learning-rate", "--validation-split", "--augment-copies", "--fine-tune-from",
         "--fine-tune-epochs", "--fine-tune-learning-rate", "--early-stopping"]


def _flags(parser):
    build = parser._subparsers._group_actions[0].choices["build"]
    return {a.option_strings[0]: a for a in build._actions if a.option_strings}


def test_each_overridable_recipe_field_is_a_build_flag_with_its_type_and_help():
    flags = _flags(cli.parser())
    fields = heads.overridable_fields()
    assert sorted("--" + f.name.replace("_", "-") for f in fields) == sorted(FLAGS)
    for f in fields:
        action = flags["--" + f.name.replace("_", "-")]
        sample = {int: "7", float: "0.25", str: "conv_dw_13"}[f.metadata["cli_type"]]
        assert type(action.type(sample)) is f.metadata["cli_type"]  # the declared type, range-checked (see below)
        assert action.help == f.metadata["help"] and action.default is None


@pytest.mark.parametrize("flag,value", [("--epochs", "-1"), ("--batch-size", "0"), ("--learning-rate", "-0.001"),
                                        ("--validation-split", "1.0"), ("--augment-copies", "-2")])
def test_a_recipe_value_out_of_range_is_refused_by_argparse(flag, value, capsys):
    with pytest.raises(SystemExit) as e:
        cli.parser().parse_args([*BASE, flag, value])
    assert e.value.code == 2 and f"argument {flag}: must be" in capsys.readouterr().err


@pytest.mark.parametrize("field", [f.name for f in heads.overridable_fields()])
def test_a_flag_reaches_the_recipe(field):
    f = next(f for f in heads.overridable_fields() if f.name == field)
    value = {int: "7", float: "0.25", str: "conv_dw_13"}[f.metadata["cli_type"]]
    args = cli.parser().parse_args([*BASE, "--" + field.replace("_", "-"), value])
    cfg = cli.build_config(args)
    assert cfg.recipe_overrides == {field: f.metadata["cli_type"](value)}
    recipe = heads.resolve_recipe(cfg.recipe, **cfg.recipe_overrides)
    assert getattr(recipe, field) == f.metadata["cli_type"](value)


def test_without_flags_the_recipe_is_untouched():
    cfg = cli.build_config(cli.parser().parse_args(BASE + ["--recipe", "pooled", "--folds", "3", "--no-fold"]))
    assert cfg.recipe_overrides == {} and cfg.cv_folds == 3 and cfg.fold_batch_norms is False
    assert heads.resolve_recipe(cfg.recipe, **cfg.recipe_overrides) == heads.RECIPES["pooled"]


def test_fine_tune_from_help_states_the_default():
    assert "default 0" in _flags(cli.parser())["--fine-tune-from"].help


def _subparsers(parser):
    return parser._subparsers._group_actions[0].choices


def test_each_subcommand_has_an_example():
    assert set(_subparsers(cli.parser())) == set(cli.EXAMPLES)


@pytest.mark.parametrize("name", sorted(cli.EXAMPLES))
def test_help_ends_with_an_example_of_that_subcommand_that_parses(name):
    """The example is the last thing --help prints, and it is a valid command line for that subcommand."""
    import shlex

    text = _subparsers(cli.parser())[name].format_help()
    head, _, example = text.rpartition("\nexample:\n")
    assert head and example.strip(), text
    assert "--help" not in example and example.rstrip("\n") == "  " + cli.EXAMPLES[name]
    argv = shlex.split(example.splitlines()[0])
    assert argv[:2] == ["tfjs-transfer", name]
    assert cli.parser().parse_args(argv[1:]).command == name


def test_main_help_shows_an_example_and_says_each_command_has_one():
    text = cli.parser().format_help()
    assert "\nexample:\n  tfjs-transfer build " in text and "--help ends with its own example" in text
