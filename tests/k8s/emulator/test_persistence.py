"""The emulator keeps its objects in its data dir: restarted on it, it serves the same objects with
the same uids, and resourceVersions continue instead of starting again from 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8s.emulator import Emulator, gpu_nodes
from k8s.kube import DGDR_PLURAL, DGDR_VERSION, GROUP
from tests.support import manifest

pytestmark = pytest.mark.timeout(60)


async def test_objects_uids_and_resource_versions_outlive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "emulator"
    first = Emulator(nodes=gpu_nodes(1), data_dir=data)
    await first.start(port=0)
    try:
        created = await first.store.create(
            GROUP, DGDR_VERSION, DGDR_PLURAL, "default", manifest("kept", "default")
        )
        await first.store.patch_status(
            GROUP, DGDR_VERSION, DGDR_PLURAL, "default", "kept", {"phase": "Deployed"}
        )
        last = int(first.store.resource_version)
    finally:
        await first.stop()

    second = Emulator(nodes=gpu_nodes(3), data_dir=data)  # the stored nodes win over new seeds
    await second.start(port=0)
    try:
        kept = second.store.get(GROUP, DGDR_VERSION, DGDR_PLURAL, "default", "kept")
        assert kept is not None and kept["metadata"]["uid"] == created["metadata"]["uid"]
        assert kept["status"] == {"phase": "Deployed"}
        assert kept["metadata"]["resourceVersion"] == str(last)
        assert len(second.store.list("", "v1", "nodes")) == 1
        other = await second.store.create(
            GROUP, DGDR_VERSION, DGDR_PLURAL, "default", manifest("later", "default")
        )
        assert int(other["metadata"]["resourceVersion"]) == last + 1
    finally:
        await second.stop()


def test_a_damaged_snapshot_is_one_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "objects.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"objects\.json: not an emulator snapshot"):
        Emulator(data_dir=tmp_path)
