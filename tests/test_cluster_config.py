"""cluster.yaml passes Ray's own cluster-config validation (no cloud calls), runs Ray's image at the versions
the project allows, gives the GPU workers their GPUs, syncs no ignored file, and keeps the dashboard private."""

import re
import shutil
import subprocess
import tomllib

import pytest
import ray
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from ray.autoscaler._private.command_runner import SSHCommandRunner
from ray.autoscaler._private.util import prepare_config, validate_config

from conftest import REPO


def load_cluster_config():
    return yaml.safe_load((REPO / "cluster.yaml").read_text())


def test_cluster_yaml_is_a_valid_ray_cluster_config():
    config = prepare_config(load_cluster_config())
    validate_config(config)
    assert config["head_node_type"] in config["available_node_types"]
    gpu_types = [name for name, node in config["available_node_types"].items() if node["node_config"]["InstanceType"].startswith(("p", "g"))]
    assert gpu_types, "cluster.yaml has no GPU worker type"


def test_dashboard_stays_on_localhost():
    config = load_cluster_config()
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start
    assert "0.0.0.0" not in (REPO / "cluster.yaml").read_text()


def test_nodes_install_this_project_with_pip():
    config = load_cluster_config()
    assert "~/music-scaling" in config["file_mounts"]
    assert any("pip install" in cmd and "~/music-scaling" in cmd for cmd in config["setup_commands"])


def images(config):
    """Every Docker image the cluster runs: the default, and each node type's own."""
    found = [config["docker"]["image"]]
    for node in config["available_node_types"].values():
        found += [node["docker"]["worker_image"]] if "worker_image" in node.get("docker", {}) else []
    return found


def image_versions(image):
    """(Ray version, Python version, build) from a tag like rayproject/ray:2.60.0-py311-gpu."""
    match = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py3(\d+)-(cpu|gpu|cu\d+)", image)
    assert match, f"{image} is not a pinned Ray image (rayproject/ray:<ray>-py3<minor>-<cpu|gpu|cuXYZ>)"
    return Version(match[1]), Version(f"3.{match[2]}"), match[3]


def test_images_run_the_python_and_ray_that_pyproject_allows_and_this_checkout_is_tested_with():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    ray_requirement = next(Requirement(r) for r in project["dependencies"] if Requirement(r).name == "ray")
    versions = {image_versions(image)[:2] for image in images(load_cluster_config())}
    assert len(versions) == 1, f"head and workers must run one Ray and one Python: {versions}"
    ray_version, python = versions.pop()
    assert ray_version in ray_requirement.specifier and python in SpecifierSet(project["requires-python"])
    assert ray_version == Version(ray.__version__), "the cluster's Ray is the one the tests ran with"


def test_gpu_workers_run_the_cuda_image_with_their_gpus():
    config = load_cluster_config()
    assert image_versions(config["docker"]["image"])[2] == "cpu"
    for name, node in config["available_node_types"].items():
        if node["node_config"]["InstanceType"].startswith(("p", "g")):
            assert image_versions(node["docker"]["worker_image"])[2] != "cpu", name
            assert "--gpus all" in node["docker"]["worker_run_options"], name
        else:
            assert "docker" not in node, f"{name}: a CPU node takes the CPU image"


@pytest.mark.skipif(not shutil.which("rsync"), reason="rsync is not installed")
def test_ray_up_syncs_the_project_without_what_gitignore_names(tmp_path):
    """The rsync that `ray up` runs for file_mounts, with Ray's own filter arguments, on a tree laid out as a
    checkout after `.ci/run` and the demo, with this repository's .gitignore."""
    tree = tmp_path / "checkout"
    for name in (".venv/bin/python", ".git/HEAD", "data/music21/meta.json", "results/demo/sweep.json",
                 "sweep/__pycache__/run.cpython-311.pyc", "sweep/run.py", "cluster.yaml"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("")
    shutil.copy(REPO / ".gitignore", tree)
    filters = SSHCommandRunner._create_rsync_filter_args(None, load_cluster_config())
    listing = subprocess.run(["rsync", "-an", "--out-format=%n", *filters, f"{tree}/", str(tmp_path / "node")],
                             capture_output=True, text=True, check=True).stdout.split()
    assert sorted(name for name in listing if not name.endswith("/")) == [".gitignore", "cluster.yaml", "sweep/run.py"]
