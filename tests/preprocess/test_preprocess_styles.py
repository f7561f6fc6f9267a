"""preprocess.styles: the one registry of target styles; every registered style renders and re-verifies
the generator's items, and the command line, the config and the run report take their names from it."""
import pytest

from eval.run_report import _targets
from preprocess.__main__ import build_parser
from preprocess.classify import PATTERNS
from preprocess.config import COT_STYLES as CONFIG_COT_STYLES, TARGET_STYLES as CONFIG_TARGET_STYLES
from preprocess.config import PreprocessConfig
from preprocess.cot import synthesize
from preprocess.pot_targets import POT_CATEGORIES
from preprocess.styles import COT_STYLE, COT_STYLES, DEFAULT_COT_STYLE, TARGET_STYLE, TARGET_STYLES
from preprocess.synthesize import generate_labelled

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def computational_items():
    return [(category, item) for category, item in generate_labelled(200, seed=5) if category in PATTERNS]


def _choices(option: str) -> tuple[str, ...]:
    action = next(a for a in build_parser()._actions if option in a.option_strings)
    return tuple(action.choices)


def test_the_names_come_from_the_registry():
    assert COT_STYLES == tuple(COT_STYLE) == CONFIG_COT_STYLES == _choices("--cot_style")
    assert TARGET_STYLES == tuple(TARGET_STYLE) == CONFIG_TARGET_STYLES == _choices("--target_style")
    assert DEFAULT_COT_STYLE in COT_STYLE and PreprocessConfig().cot_style == DEFAULT_COT_STYLE
    for name in TARGET_STYLES:
        assert _targets(name, "steps").startswith(name)


def test_every_recipe_style_covers_every_computational_category():
    for name, style in COT_STYLE.items():
        assert style.claims == (style.recipes is not None), name
        if style.claims:
            assert set(style.recipes) == set(PATTERNS) and style.check is not None, name


@pytest.mark.parametrize("cot_style", COT_STYLES)
def test_every_cot_style_verifies_the_generated_items(computational_items, cot_style):
    seen = set()
    for category, item in computational_items:
        res = synthesize(item["problem"], item["solution"], category, cot_style)
        assert res.verified, (cot_style, item, res.reason)
        if COT_STYLE[cot_style].claims:
            COT_STYLE[cot_style].check(res.cot.splitlines())
        else:
            assert res.cot.splitlines()[-1] == item["solution"].strip()
        seen.add(category)
    assert seen == set(PATTERNS)


@pytest.mark.parametrize("target_style", TARGET_STYLES)
def test_every_target_style_composes_a_checked_target_and_its_fallback(computational_items, target_style):
    style = TARGET_STYLE[target_style]
    if style.pot is None:
        assert style.compose is None and style.holds_cot
        return
    for category, item in computational_items:
        if category not in POT_CATEGORIES:
            continue
        res = synthesize(item["problem"], item["solution"], category, DEFAULT_COT_STYLE)
        pot = style.pot(item["problem"], res.answer, category)
        target, fallback = style.compose(pot, res.cot)
        assert (res.cot in target) == style.holds_cot
        # The fallback is shorter, so a record over the budget may fit on it.
        assert fallback is None or (len(fallback) < len(target) and fallback == pot)
