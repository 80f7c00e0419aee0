import gzip

import numpy as np
import pytest
import torch
from PIL import Image

import playground.data.fashion as fashion
from playground.data import dataset_status, load_dataset
from playground.data.folder import load_image_folder
from playground.data.splits import (
    class_subset,
    limit_per_split,
    old_new_split,
    query_gallery_split,
    random_split,
)
from playground.errors import ConfigError, DataFormatError, DataNotFoundError
from tests.conftest import FASHION_DIR, needs_fashion_mnist


def write_idx(path, array: np.ndarray, compress=True):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


def fake_torchvision_root(root, n_train=12, n_test=6, compress=False):
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    suffix = ".gz" if compress else ""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{split}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)), compress)
        write_idx(raw / f"{split}-labels-idx1-ubyte{suffix}", np.arange(n) % 10, compress)
    return root


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path / "no-debian-package")


def test_fashion_from_a_torchvision_layout_root(no_debian, tmp_path):
    root = fake_torchvision_root(tmp_path / "data")
    train = load_dataset("fashion_mnist", "train", root=root)
    assert train.images.shape == (12, 1, 28, 28) and train.labels.tolist() == [i % 10 for i in range(12)]
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    assert train.classes[0] == "T-shirt/top" and train.source.endswith("raw")
    assert len(load_dataset("fashion_mnist", "test", root=root)) == 6


def test_debian_package_is_searched_before_the_user_root(monkeypatch, tmp_path):
    debian = fake_torchvision_root(tmp_path / "deb", n_train=4, compress=True) / "FashionMNIST" / "raw"
    monkeypatch.setattr(fashion, "DEBIAN_DIR", debian)
    user = fake_torchvision_root(tmp_path / "user", n_train=8)
    assert len(load_dataset("fashion_mnist", "train", root=user)) == 4


def test_missing_fashion_mnist_says_how_to_get_it(no_debian, tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("fashion_mnist", "train", root=tmp_path / "empty")
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message and "download=true" in message
    assert str(tmp_path / "empty") in message and "\n" not in message


def test_download_is_opt_in_and_fails_offline_with_the_fix(no_debian, tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    def offline(root, train, download):
        calls.append(download)
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(DataNotFoundError):
        load_dataset("fashion_mnist", "train", root=tmp_path / "data")
    assert calls == []  # never downloads unless asked
    with pytest.raises(DataNotFoundError, match="needs a data_root"):
        load_dataset("fashion_mnist", "train", download=True)
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("fashion_mnist", "train", root=tmp_path / "data", download=True)
    assert calls == [True]
    message = str(info.value)
    assert "network is unreachable" in message and "apt-get install dataset-fashion-mnist" in message
    assert "\n" not in message


def test_truncated_idx_file_is_a_clear_error(no_debian, tmp_path):
    root = fake_torchvision_root(tmp_path / "data")
    path = root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataFormatError, match="truncated"):
        load_dataset("fashion_mnist", "train", root=root)


@needs_fashion_mnist()
def test_real_fashion_mnist_from_the_debian_package():
    train, test = load_dataset("fashion_mnist", "train"), load_dataset("fashion_mnist", "test")
    assert (len(train), len(test)) == (60000, 10000)
    assert train.source == str(FASHION_DIR)
    assert set(test.class_counts().values()) == {1000}


def test_digits_train_test_split_is_stratified_and_disjoint():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(train) + len(test) == 1797 and train.image_shape == (1, 8, 8)
    assert min(test.class_counts().values()) >= 40
    assert float(train.images.max()) == 1.0


def make_folder(root, classes=("cat", "dog"), per_class=3, size=(20, 12)):
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            colour = (index * 200, 50, i * 40)
            Image.new("RGB", size, colour).save(root / name / f"{i}.png")
    return root


def test_image_folder_loads_resizes_and_labels(tmp_path):
    root = make_folder(tmp_path / "pets")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / "broken.png").write_bytes(b"garbage")
    data = load_image_folder(root, image_size=16, channels=3)
    assert data.classes == ["cat", "dog"] and data.images.shape == (6, 3, 16, 16)
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.images[3, 0].mean() == pytest.approx(200 / 255, abs=1e-3)  # dog images are red
    assert f"skipped unreadable file {root / 'dog' / 'broken.png'}: cannot be decoded" in " ".join(data.notes)
    grey = load_image_folder(root, image_size=8, channels=1)
    assert grey.images.shape == (6, 1, 8, 8)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataFormatError, match="no class sub-folders"):
        load_image_folder(tmp_path / "flat")
    (tmp_path / "flat" / "a").mkdir()
    with pytest.raises(DataFormatError, match="no image files"):
        load_image_folder(tmp_path / "flat")
    make_folder(tmp_path / "many", per_class=3)
    with pytest.raises(DataFormatError, match="max_images"):
        load_image_folder(tmp_path / "many", max_images=4)


def test_a_decompression_bomb_in_the_folder_is_one_error_naming_it(tmp_path):
    from playground.data.image_file import ImageTooLargeError
    from tests.data.test_image_file import header_png

    root = make_folder(tmp_path / "pets")
    (root / "dog" / "bomb.png").write_bytes(header_png(30000, 30000))
    with pytest.raises(
        ImageTooLargeError, match=r"dog/bomb\.png cannot be read as an image: too many pixels"
    ):
        load_image_folder(root, image_size=8)
    (root / "dog" / "bomb.png").write_bytes(header_png(8000, 7000))  # over the cap, under PIL's limit
    with pytest.raises(ImageTooLargeError, match="8000x7000 pixels, more than max_pixels=50000000"):
        load_image_folder(root, image_size=8)


def test_a_bad_pixel_cap_in_the_environment_is_one_config_error(tmp_path, monkeypatch):
    from playground.data.image_file import PIXELS_ENV

    root = make_folder(tmp_path / "pets")
    monkeypatch.setenv(PIXELS_ENV, "-1")
    with pytest.raises(
        ConfigError, match="PLAYGROUND_MAX_IMAGE_PIXELS must be a positive whole number of pixels, not .-1."
    ):
        load_image_folder(root, image_size=8)
    monkeypatch.setenv(PIXELS_ENV, "100")  # 20x12 = 240 pixels
    with pytest.raises(DataFormatError, match="20x12 pixels, more than max_pixels=100"):
        load_image_folder(root, image_size=8)


def test_a_folder_of_only_broken_files_names_the_first_and_why(tmp_path):
    (tmp_path / "pets" / "cat").mkdir(parents=True)
    (tmp_path / "pets" / "cat" / "a.png").write_bytes(b"text")
    with pytest.raises(
        DataFormatError, match=r"1 files could not be decoded; first: .*a\.png: cannot be decoded"
    ):
        load_image_folder(tmp_path / "pets")


def test_folder_dataset_splits_a_tree_without_train_test(tmp_path):
    root = make_folder(tmp_path / "pets", per_class=10)
    train = load_dataset("folder", "train", root=root, image_size=8)
    test = load_dataset("folder", "test", root=root, image_size=8)
    assert (len(train), len(test)) == (16, 4)
    with pytest.raises(ConfigError, match="data_root"):
        load_dataset("folder", "train")


def test_dataset_status_reports_each_dataset(tmp_path):
    rows = {r.name: r for r in dataset_status(make_folder(tmp_path / "pets"))}
    assert rows["digits"].available and rows["shapes"].available
    assert rows["folder"].available and "6 images in 2 classes" in rows["folder"].detail
    assert rows["fashion_mnist"].available == FASHION_DIR.is_dir()
    with pytest.raises(ConfigError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


def test_class_subset_and_old_new_split():
    data = load_dataset("digits", "all")
    old, new = old_new_split(data, [0, 1, 2, 3, 4])
    assert set(old.labels.tolist()) == {0, 1, 2, 3, 4} and len(new) == len(data)
    relabelled = class_subset(data, [7, 3], relabel=True)
    assert relabelled.classes == ["7", "3"] and set(relabelled.labels.tolist()) == {0, 1}
    assert torch.equal(relabelled.images[relabelled.labels == 0], data.images[data.labels == 7])
    with pytest.raises(DataFormatError, match="class ids"):
        class_subset(data, [12])


def test_query_gallery_split_is_disjoint_stratified_and_seeded():
    data = load_dataset("digits", "all")
    data.images = torch.arange(len(data)).float().view(-1, 1, 1, 1)  # tag each image by index
    query, gallery = query_gallery_split(data, 0.2, seed=3)
    q, g = set(query.images.flatten().tolist()), set(gallery.images.flatten().tolist())
    assert not q & g and len(q) + len(g) == len(data)
    assert all(0.15 < query.class_counts()[c] / data.class_counts()[c] < 0.25 for c in data.classes)
    again, _ = query_gallery_split(data, 0.2, seed=3)
    assert torch.equal(again.images, query.images)
    other, _ = query_gallery_split(data, 0.2, seed=4)
    assert not torch.equal(other.images, query.images)
    with pytest.raises(DataFormatError):
        random_split(data, 1.5)
    assert len(limit_per_split(data, 100)) == 100


def test_an_idx_header_is_checked_before_anything_is_allocated_or_inflated(tmp_path):
    """Issue 25: a header claiming 60000 x 2^31 x 2^31 values (whose product wrapped to 0 in int64, so
    a header-only file passed and reshape raised a bare ValueError), 255 dimensions (a bare
    ValueError from frombuffer), or a gzip file that inflates to more values than its header gives."""
    huge = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (60000, 2**31, 2**31))
    (tmp_path / "huge-idx3-ubyte").write_bytes(huge)
    with pytest.raises(DataFormatError, match="claims shape \\(60000, 2147483648, 2147483648\\)"):
        fashion.read_idx(tmp_path / "huge-idx3-ubyte")
    (tmp_path / "dims-idx").write_bytes(bytes([0, 0, 8, 255]) + bytes(10))
    with pytest.raises(DataFormatError, match="damaged IDX header \\(255 dimensions"):
        fashion.read_idx(tmp_path / "dims-idx")
    header = bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big")
    (tmp_path / "bomb.gz").write_bytes(gzip.compress(header + bytes(50_000_000)))
    with pytest.raises(DataFormatError, match="has bytes after its values"):
        fashion.read_idx(tmp_path / "bomb.gz")
    (tmp_path / "ok.gz").write_bytes(gzip.compress(header + bytes(range(10))))
    assert fashion.read_idx(tmp_path / "ok.gz").tolist() == list(range(10))
    with pytest.raises(DataFormatError, match="claims shape \\(10,\\): 10 values, more than the 9"):
        fashion.read_idx(tmp_path / "ok.gz", max_bytes=9)
