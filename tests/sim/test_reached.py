import pytest

from .reached import Reached


def test_a_branch_no_example_reached_fails_the_property() -> None:
    reached = Reached()
    reached("refused")
    with pytest.raises(AssertionError, match=r"no example reached \['profiled'\]"):
        reached.assert_reached("profiled", "refused")
    reached("profiled")
    reached.assert_reached("profiled", "refused")
