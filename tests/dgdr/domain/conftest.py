import pytest

pytest.register_assert_rewrite("tests.dgdr.domain.builders")
