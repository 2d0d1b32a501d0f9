"""Settings: parsers, aliases, precedence, platforms, clamping, errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rq_graceful import ConfigurationError, Mode, Platform, Settings
from rq_graceful._settings import (
    SETTINGS,
    TEARDOWN_RESERVE,
    Source,
    parse_bool,
    parse_max_interruptions,
    parse_platform,
    parse_seconds,
)

NO_DOCKER = "/nonexistent/.dockerenv"


def settings(env: dict[str, str] | None = None, **kwargs: object) -> Settings:
    return Settings.from_env(env or {}, dockerenv=NO_DOCKER, **kwargs)


# -- parsers ---------------------------------------------------------------------

TRUE_WORDS = ["1", "true", "yes", "on"]
FALSE_WORDS = ["0", "false", "no", "off", ""]


def _any_case(words: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(words).flatmap(
        lambda w: st.lists(st.booleans(), min_size=len(w), max_size=len(w)).map(
            lambda flags: "".join(c.upper() if f else c for c, f in zip(w, flags, strict=True))
        )
    )


@given(_any_case(TRUE_WORDS), st.sampled_from(["", " ", "\t"]))
def test_bool_true_words_in_any_case(word: str, pad: str) -> None:
    assert parse_bool(pad + word + pad) is True


@given(_any_case(FALSE_WORDS))
def test_bool_false_words_in_any_case(word: str) -> None:
    assert parse_bool(word) is False


@given(st.text())
def test_bool_accepts_exactly_the_documented_words(text: str) -> None:
    word = text.strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        assert parse_bool(text) is (word in TRUE_WORDS)
    else:
        with pytest.raises(ValueError, match="boolean"):
            parse_bool(text)


@given(st.floats(min_value=0, allow_nan=False, allow_infinity=False))
def test_seconds_round_trip(value: float) -> None:
    assert parse_seconds(repr(value)) == value


@given(st.floats())
def test_seconds_rejects_negative_and_non_finite(value: float) -> None:
    if math.isfinite(value) and value >= 0:
        assert parse_seconds(str(value)) == value
    else:
        with pytest.raises(ValueError):
            parse_seconds(str(value))


@given(st.text())
def test_seconds_never_accepts_what_float_rejects(text: str) -> None:
    try:
        expected = float(text)
    except ValueError:
        with pytest.raises(ValueError):
            parse_seconds(text)
        return
    if math.isfinite(expected) and expected >= 0:
        assert parse_seconds(text) == expected
    else:
        with pytest.raises(ValueError):
            parse_seconds(text)


@given(st.integers())
def test_max_interruptions_integers(value: int) -> None:
    if value >= 1:
        assert parse_max_interruptions(str(value)) == value
    else:
        with pytest.raises(ValueError, match=">= 1"):
            parse_max_interruptions(str(value))


@pytest.mark.parametrize("word", ["none", "None", " NONE "])
def test_max_interruptions_none(word: str) -> None:
    assert parse_max_interruptions(word) is None


@pytest.mark.parametrize("word", ["1.5", "ten", "", "-1"])
def test_max_interruptions_rejects(word: str) -> None:
    with pytest.raises(ValueError):
        parse_max_interruptions(word)


@pytest.mark.parametrize("platform", list(Platform))
def test_platform_names(platform: Platform) -> None:
    assert parse_platform(platform.value.upper()) is platform


# -- declarations ------------------------------------------------------------------


def test_every_setting_is_declared_once_with_doc_and_default() -> None:
    fields = [s.field for s in SETTINGS]
    assert len(fields) == len(set(fields))
    variables = [s.variable for s in SETTINGS] + [s.alias for s in SETTINGS if s.alias]
    assert len(variables) == len(set(variables))
    defaults = Settings()
    for s in SETTINGS:
        assert s.doc and s.expected
        assert s.variable.startswith("RQ_GRACEFUL_")
        assert getattr(defaults, s.field) == s.default


def test_spec_aliases() -> None:
    aliases = {s.variable: s.alias for s in SETTINGS}
    assert aliases == {
        "RQ_GRACEFUL_TERM_CHILD": "TERM_CHILD",
        "RQ_GRACEFUL_PRE_SHUTDOWN_TIMEOUT": "RESQUE_PRE_SHUTDOWN_TIMEOUT",
        "RQ_GRACEFUL_TERM_TIMEOUT": "RESQUE_TERM_TIMEOUT",
        "RQ_GRACEFUL_GRACEFUL_TERM": "GRACEFUL_TERM",
        "RQ_GRACEFUL_REQUEUE": None,
        "RQ_GRACEFUL_MAX_INTERRUPTIONS": None,
        "RQ_GRACEFUL_KILL_DEADLINE": None,
        "RQ_GRACEFUL_SAFETY_MARGIN": None,
        "RQ_GRACEFUL_PLATFORM": None,
    }


# -- precedence ----------------------------------------------------------------------


def test_defaults() -> None:
    s = settings()
    assert (s.term_child, s.pre_shutdown_timeout, s.term_timeout) == (False, 0.0, 4.0)
    assert (s.requeue, s.max_interruptions, s.kill_deadline, s.safety_margin) == (True, 10, None, 1.0)
    assert s.mode is Mode.ENTIRE
    assert s.sources["term_timeout"] == (Source.DEFAULT, "")
    assert s.warnings == ()


def test_alias_is_read() -> None:
    s = settings({"RESQUE_TERM_TIMEOUT": "8"})
    assert s.term_timeout == 8.0
    assert s.sources["term_timeout"] == (Source.ALIAS, "RESQUE_TERM_TIMEOUT")


def test_own_name_wins_over_alias_with_a_warning() -> None:
    # Given both names, set to different values
    s = settings({"RQ_GRACEFUL_TERM_TIMEOUT": "3", "RESQUE_TERM_TIMEOUT": "8"})
    # Then ours wins, and the difference is reported
    assert s.term_timeout == 3.0
    assert s.sources["term_timeout"] == (Source.VARIABLE, "RQ_GRACEFUL_TERM_TIMEOUT")
    assert any("RESQUE_TERM_TIMEOUT" in w and "wins" in w for w in s.warnings)


def test_same_value_under_both_names_is_quiet() -> None:
    assert settings({"RQ_GRACEFUL_TERM_TIMEOUT": "3", "RESQUE_TERM_TIMEOUT": "3.0"}).warnings == ()


def test_arguments_win_over_environment() -> None:
    s = settings({"TERM_CHILD": "0", "RESQUE_TERM_TIMEOUT": "8"}, term_child=True, term_timeout=2)
    assert s.term_child is True and s.term_timeout == 2.0
    assert s.sources["term_child"] == (Source.ARGUMENT, "term_child")


def test_term_child_wins_over_graceful_term_with_a_warning() -> None:
    s = settings({"TERM_CHILD": "1", "GRACEFUL_TERM": "1", "RESQUE_TERM_TIMEOUT": "2"})
    assert s.mode is Mode.HALFWAY
    assert any("TERM_CHILD wins" in w for w in s.warnings)


def test_graceful_term_alone_is_entire_graceful() -> None:
    assert settings({"GRACEFUL_TERM": "yes"}).mode is Mode.ENTIRE


def test_immediate_is_term_child_with_both_timeouts_zero() -> None:
    s = settings({"TERM_CHILD": "1", "RESQUE_TERM_TIMEOUT": "0"})
    assert s.mode is Mode.IMMEDIATE
    assert (s.budget().raise_at, s.budget().kill_at) == (0.0, 0.0)


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TERM_CHILD": "maybe"}, "TERM_CHILD='maybe'"),
        ({"RQ_GRACEFUL_TERM_CHILD": "2"}, "RQ_GRACEFUL_TERM_CHILD='2'"),
        ({"RESQUE_TERM_TIMEOUT": "-1"}, "RESQUE_TERM_TIMEOUT='-1'"),
        ({"RQ_GRACEFUL_PRE_SHUTDOWN_TIMEOUT": "nan"}, "RQ_GRACEFUL_PRE_SHUTDOWN_TIMEOUT='nan'"),
        ({"RQ_GRACEFUL_PRE_SHUTDOWN_TIMEOUT": "inf"}, "RQ_GRACEFUL_PRE_SHUTDOWN_TIMEOUT='inf'"),
        ({"RQ_GRACEFUL_KILL_DEADLINE": "0"}, "RQ_GRACEFUL_KILL_DEADLINE='0'"),
        ({"RQ_GRACEFUL_MAX_INTERRUPTIONS": "0"}, "RQ_GRACEFUL_MAX_INTERRUPTIONS='0'"),
        ({"RQ_GRACEFUL_PLATFORM": "heroku2"}, "RQ_GRACEFUL_PLATFORM='heroku2'"),
        ({"RQ_GRACEFUL_REQUEUE": "sure"}, "RQ_GRACEFUL_REQUEUE='sure'"),
        # a bad alias is an error even when the main name is also set
        ({"RQ_GRACEFUL_TERM_TIMEOUT": "x", "RESQUE_TERM_TIMEOUT": "1"}, "RQ_GRACEFUL_TERM_TIMEOUT='x'"),
    ],
)
def test_bad_value_names_variable_value_and_form(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        settings(env)
    assert named in str(info.value)
    assert "expected" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"term_child": "perhaps"}, "term_child='perhaps'"),
        ({"term_timeout": -2}, "term_timeout=-2"),
        ({"term_timeout": float("nan")}, "term_timeout=nan"),
        ({"term_child": 1}, "term_child=1"),
        ({"max_interruptions": 0}, "max_interruptions=0"),
        ({"max_interruptions": True}, "max_interruptions=True"),
        ({"platform": "mars"}, "platform='mars'"),
    ],
)
def test_bad_argument_names_it(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError, match="expected") as info:
        settings(**kwargs)
    assert named in str(info.value)


def test_unknown_argument() -> None:
    with pytest.raises(ConfigurationError, match="term_timout"):
        settings(term_timout=3)


def test_margin_that_leaves_no_time_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="RQ_GRACEFUL_SAFETY_MARGIN=30"):
        settings({"DYNO": "worker.1", "RQ_GRACEFUL_SAFETY_MARGIN": "30"})


# -- platforms and deadlines -------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "platform", "enforced", "reported"),
    [
        ({}, Platform.NONE, None, None),
        ({"DYNO": "worker.1"}, Platform.HEROKU, 30.0, 30.0),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, Platform.KUBERNETES, None, 30.0),
        ({"INVOCATION_ID": "abc"}, Platform.SYSTEMD, None, 90.0),
        ({"INVOCATION_ID": "abc", "RQ_GRACEFUL_KILL_DEADLINE": "45"}, Platform.SYSTEMD, 45.0, 45.0),
        ({"DYNO": "worker.1", "RQ_GRACEFUL_PLATFORM": "none"}, Platform.NONE, None, None),
        ({"RQ_GRACEFUL_PLATFORM": "heroku"}, Platform.HEROKU, 30.0, 30.0),
    ],
)
def test_platform_facts(
    env: dict[str, str], platform: Platform, enforced: float | None, reported: float | None
) -> None:
    s = settings(env)
    assert s.effective_platform is platform
    assert s.enforced_deadline == enforced
    assert s.reported_deadline == reported


def test_docker_is_detected_by_its_file(tmp_path: object) -> None:
    from pathlib import Path

    marker = Path(str(tmp_path)) / ".dockerenv"
    marker.touch()
    s = Settings.from_env({}, dockerenv=str(marker))
    assert s.effective_platform is Platform.DOCKER
    assert s.enforced_deadline is None and s.reported_deadline == 10.0


def test_heroku_halfway_that_fits_is_untouched() -> None:
    s = settings({"DYNO": "w.1", "TERM_CHILD": "1", "RESQUE_PRE_SHUTDOWN_TIMEOUT": "20", "RESQUE_TERM_TIMEOUT": "8"})
    assert s.warnings == ()
    assert (s.budget().raise_at, s.budget().kill_at) == (20.0, 28.0)


def test_heroku_halfway_that_overruns_is_clamped_with_a_warning() -> None:
    s = settings({"DYNO": "w.1", "TERM_CHILD": "1", "RESQUE_PRE_SHUTDOWN_TIMEOUT": "25", "RESQUE_TERM_TIMEOUT": "10"})
    b = s.budget()
    assert b.kill_at == 30 - 1 - TEARDOWN_RESERVE
    assert b.raise_at == b.kill_at - 10
    assert any("clamped" in w for w in s.warnings)


def test_entire_graceful_under_a_deadline_gets_phases() -> None:
    b = settings({"RQ_GRACEFUL_KILL_DEADLINE": "10"}).budget()
    assert b.mode is Mode.ENTIRE
    assert b.kill_at == 10 - 1 - TEARDOWN_RESERVE
    assert b.raise_at == b.kill_at - 4  # the term timeout before the kill
    assert b.done_by == 9


def test_entire_graceful_without_deadline_never_interrupts() -> None:
    b = settings().budget()
    assert (b.raise_at, b.kill_at, b.deadline) == (None, None, None)


@given(
    deadline=st.floats(min_value=0.01, max_value=3600),
    margin=st.floats(min_value=0, max_value=3600),
    pre=st.floats(min_value=0, max_value=3600),
    term=st.floats(min_value=0, max_value=3600),
    term_child=st.booleans(),
)
def test_budget_never_overruns_the_deadline(
    deadline: float, margin: float, pre: float, term: float, term_child: bool
) -> None:
    env = {
        "RQ_GRACEFUL_KILL_DEADLINE": repr(deadline),
        "RQ_GRACEFUL_SAFETY_MARGIN": repr(margin),
        "TERM_CHILD": "1" if term_child else "0",
        "RESQUE_PRE_SHUTDOWN_TIMEOUT": repr(pre),
        "RESQUE_TERM_TIMEOUT": repr(term),
    }
    if margin >= deadline:
        with pytest.raises(ConfigurationError):
            settings(env)
        return
    b = settings(env).budget()
    assert b.raise_at is not None and b.kill_at is not None
    assert 0 <= b.raise_at <= b.kill_at <= max(0.0, deadline - margin - TEARDOWN_RESERVE) + 1e-9
    if term_child:
        assert b.raise_at <= pre + 1e-9 and b.kill_at <= pre + term + 1e-9
