"""cluster.yaml passes Ray's own cluster-config validation (no cloud calls) and keeps the dashboard private."""

import yaml
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
