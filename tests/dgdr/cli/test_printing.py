"""kubectl's printers, pure: plain columns (`printer`), jsonpath templates and custom columns
(`template`), `-o` values (`output`), and `-l` through `k8s.labels`."""

from __future__ import annotations

from typing import Any

import pytest

from dgdr.cli import output, printer, template
from dgdr.cli.reading import _selected
from k8s.labels import parse_label_selector


def obj(name: str, phase: str = "Deployed", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"model": "m", "autoApply": True},
        "status": {"phase": phase, "conditions": [{"type": "A"}, {"type": "B"}]},
    }


def test_columns_are_as_wide_as_their_content_three_spaces_apart_and_never_cut() -> None:
    long = "x" * 300
    text = printer.columns(
        ("NAME", "PHASE", "MESSAGE"), [["a", "Deployed", long], ["bb", "", "two\nlines"]]
    )
    assert text.splitlines() == [
        "NAME   PHASE      MESSAGE",
        f"a      Deployed   {long}",
        "bb                two lines",
    ]


def test_columns_count_terminal_cells_not_characters() -> None:
    text = printer.columns(("NAME", "PHASE"), [["模型-a", "Deployed"], ["e\u0301x", "Failed"]])
    assert text.splitlines() == [
        "NAME     PHASE",
        "模型-a   Deployed",  # two wide characters: 6 cells
        "e\u0301x       Failed",  # a combining accent: 2 cells
    ]


def test_a_watch_row_lines_up_with_the_table_printed_before() -> None:
    table = printer.Columns(("NAME", "PHASE"))
    header, first = table.lines([["one", "Pending"]])
    later = table.line(["two", "Deployed"])
    assert later.index("Deployed") == header.index("PHASE") == first.index("Pending")


def test_a_jsonpath_template_prints_paths_literals_and_ranges() -> None:
    data = {"kind": "List", "items": [obj("one"), obj("two", "Failed")]}
    run = lambda t: template.execute(template.parse_template(t), data)  # noqa: E731
    assert run("{.items[*].metadata.name}") == "one two"
    assert run('{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}') == (
        "one\tDeployed\ntwo\tFailed\n"
    )
    assert run("names: {.items[0].metadata.name}, {.missing.key}.") == "names: one, ."
    assert run("{range .items[*]}{range .status.conditions[*]}{.type}{end};{end}") == "AB;AB;"
    assert run("{range .items[*]}{$.kind}{end}") == "ListList"
    assert run("{.items[0].spec}") == '{"model":"m","autoApply":true}'
    assert run("{.items[0].spec.autoApply}") == "true"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("{.items", "unclosed action"),
        ("{end}", "{end} without a {range}"),
        ("{range .items[*]}{.a}", "{range} without its {end}"),
        ("{.items[?(@.x]}", "unsupported filter"),
    ],
)
def test_a_bad_template_is_one_line_naming_the_problem(bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=None) as raised:
        template.parse_template(bad)
    assert why in str(raised.value) and "\n" not in str(raised.value)


def test_custom_columns_read_kubectl_paths_and_show_none_for_nothing() -> None:
    columns = template.parse_custom_columns(
        "NAME:.metadata.name,TEAM:metadata.labels.team,TYPES:{.status.conditions[*].type}"
    )
    assert [c.header for c in columns] == ["NAME", "TEAM", "TYPES"]
    assert template.column_cells(columns, obj("one", team="a")) == ["one", "a", "A,B"]
    assert template.column_cells(columns, obj("two")) == ["two", "<none>", "A,B"]
    with pytest.raises(ValueError, match="is not HEADER:PATH"):
        template.parse_custom_columns("NAME:.metadata.name,PHASE")


def test_output_formats_as_kubectl_names_them() -> None:
    objects = [obj("one"), obj("two")]
    assert output.parse_output("name").objects(objects, single=False).splitlines() == [
        "dynamographdeploymentrequest.nvidia.com/one",
        "dynamographdeploymentrequest.nvidia.com/two",
    ]
    assert output.parse_output("=json").kind == "json"  # -o=json, as kubectl takes it
    with pytest.raises(ValueError, match="allowed formats are: custom-columns,json,jsonpath,name"):
        output.parse_output("xml")
    with pytest.raises(ValueError, match="-o jsonpath needs a value"):
        output.parse_output("jsonpath")
    watch = output.parse_output("yaml")
    assert watch.change(objects[0]).startswith("---\nmetadata:")


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("team=a", ["one"]),
        ("team==a", ["one"]),
        ("team!=a", ["two", "three"]),
        ("team in (a,b)", ["one", "two"]),
        ("team notin (a)", ["two", "three"]),
        ("tier", ["one"]),
        ("!tier", ["two", "three"]),
        ("team,!tier", ["two"]),
        ("", ["one", "two", "three"]),
    ],
)
def test_label_selectors_select_as_kubectl_does(selector: str, names: list[str]) -> None:
    objects = [obj("one", team="a", tier="gold"), obj("two", team="b"), obj("three")]
    chosen = _selected(objects, parse_label_selector(selector))
    assert [o["metadata"]["name"] for o in chosen] == names


@pytest.mark.parametrize("bad", ["team in (a", "=a", "team=a,", "team in a"])
def test_a_malformed_selector_is_a_value_error_in_the_servers_words(bad: str) -> None:
    with pytest.raises(ValueError, match="unable to parse requirement"):
        parse_label_selector(bad)
