"""Point clouds and 3D cuboids: I/O (open3d, KITTI .bin, .npy), the cuboid model with 3D and
bird's-eye IoU, synthetic LiDAR scenes with exact ground truth, model-free cuboid proposals,
annotations per frame in the project database, and KITTI / nuScenes-style / Datumaro export.

open3d is imported only by the functions that use it, so ``import playground.pointcloud`` is cheap.
"""

from playground.pointcloud.cuboid import Cuboid, bev_iou, iou_3d, iou_matrix, points_in_box
from playground.pointcloud.io import FORMATS, PointCloud, read_cloud, read_cloud_bytes, write_cloud
from playground.pointcloud.proposals import DEFAULT_SIZES, ProposalParams, propose
from playground.pointcloud.scenes import Scene, SceneSpec, make_scene, sample_mesh

__all__ = [
    "DEFAULT_SIZES",
    "FORMATS",
    "Cuboid",
    "PointCloud",
    "ProposalParams",
    "Scene",
    "SceneSpec",
    "bev_iou",
    "iou_3d",
    "iou_matrix",
    "make_scene",
    "points_in_box",
    "propose",
    "read_cloud",
    "read_cloud_bytes",
    "sample_mesh",
    "write_cloud",
]
