import pytest

from genolm.compat import TESTED, check_versions, untested_versions
from genolm.errors import GenolmError

INSIDE = {name: low + ".1" for name, (low, _) in TESTED.items()}


def test_installed_versions_are_the_tested_ones() -> None:
    assert untested_versions() == []


def test_untested_version_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENOLM_ALLOW_UNTESTED", raising=False)
    newer = {**INSIDE, "transformers": "5.99.0"}
    with pytest.raises(GenolmError, match=r"transformers 5\.99\.0 \(tested: >=5\.24,<5\.25\)") as err:
        check_versions(newer)
    assert "\n" not in str(err.value) and "lightning" not in str(err.value)
    assert untested_versions({**INSIDE, "lightning": "2.5.9"}) == ["lightning 2.5.9 (tested: >=2.6,<2.7)"]
    assert untested_versions({k: v for k, v in INSIDE.items() if k != "tokenizers"})[0].startswith(
        "tokenizers not installed")
    monkeypatch.setenv("GENOLM_ALLOW_UNTESTED", "1")
    check_versions(newer)  # warns instead


def test_pre_and_local_releases_compare_by_release_number() -> None:
    assert untested_versions({**INSIDE, "transformers": "5.24.0.dev0"}) == []
    assert untested_versions({**INSIDE, "lightning": "2.6.6+cpu"}) == []
    assert untested_versions({**INSIDE, "transformers": "5.25.0rc1"}) != []
