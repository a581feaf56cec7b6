"""Model profiles: locate, assemble and verify the packaged models (nothing heavy is imported).

Models come from pinned PyPI packages listed in models/manifest.toml. Files are verified by
sha256 once; the result is remembered per (path, size, mtime) so later starts stay fast.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .config import MODELS_DIR, Settings
from .errors import ModelUnavailable

FIX = "run `scripts/setup.sh` (or `interviewer models fetch`)"


@dataclass(frozen=True)
class ModelFile:
    """One model ready to load: where it is and what it must hash to."""

    key: str
    kind: str  # "embedder" | "judge"
    name: str
    path: Path
    sha256: str | None  # None: a user-supplied file, hashed on first use
    size: int | None = None
    source: str = ""
    prompt: str = ""  # an embedder's instruction, put before every text it embeds
    cosine_floor: float = 0.0  # an embedder's cosine for unrelated texts (see `rescale`)


@dataclass(frozen=True)
class Profile:
    name: str
    embedder: ModelFile
    judge: ModelFile


def manifest() -> dict:
    with open(MODELS_DIR / "manifest.toml", "rb") as f:
        return tomllib.load(f)


def _site_path(relative: str) -> Path | None:
    """Find a file shipped by an installed package without importing the package."""
    top, _, rest = relative.partition("/")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / rest


def _entry(kind: str, key: str, data_dir: Path) -> ModelFile:
    entry = manifest()[kind + "s"].get(key)
    if entry is None:
        raise ModelUnavailable(f"no {kind} named {key!r} in models/manifest.toml")
    count = entry.get("parts", entry.get("chunks", ""))
    source = f"{entry['package']}=={entry['version']}".replace("{n}", f"1..{count}")
    if "parts" in entry:  # assembled from chunk packages into the data directory
        path = data_dir / "models" / f"{key}.gguf"
    elif "chunks" in entry:  # a model directory unpacked from chunks in versions of one package
        path = data_dir / "models" / key
    else:
        path = _site_path(entry["path"]) or Path(entry["path"])
    return ModelFile(key, kind, entry["name"], path, entry["sha256"], entry.get("size"), source,
                     entry.get("prompt", ""), entry.get("cosine_floor", 0.0))


def profile(settings: Settings, name: str | None = None) -> Profile:
    name = name or settings.profile
    profiles = manifest()["profiles"]
    if name not in profiles:
        raise ModelUnavailable(f"unknown model profile {name!r}; choose one of {', '.join(profiles)}")
    spec = profiles[name]
    embedder = _entry("embedder", spec["embedder"], settings.data_dir)
    judge = _entry("judge", spec["judge"], settings.data_dir)
    if settings.embedder_path:
        embedder = ModelFile("custom", "embedder", str(settings.embedder_path), settings.embedder_path, None)
    if settings.judge_path:
        judge = ModelFile("custom", "judge", settings.judge_path.name, settings.judge_path, None)
    return Profile(name, embedder, judge)


def weights_file(model: ModelFile) -> Path:
    if model.path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (model.path / name).exists():
                return model.path / name
        raise ModelUnavailable(f"{model.path} holds no model.safetensors or pytorch_model.bin")
    return model.path


def _fix(model: ModelFile) -> str:
    """The command that fetches this model: set-up, or, for a model only optional profiles use,
    `models fetch` with the profile."""
    users = [(name, bool(spec.get("optional"))) for name, spec in manifest()["profiles"].items()
             if model.key in (spec["embedder"], spec["judge"])]
    if users and all(optional for _, optional in users):
        return f"run `interviewer models fetch --profile {users[0][0]}`"
    return FIX


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


class _Verified:
    """A small JSON record of files already hashed, keyed by path, size and mtime."""

    def __init__(self, data_dir: Path):
        self.file = data_dir / "models" / "verified.json"

    def _read(self) -> dict:
        try:
            return json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _key(path: Path) -> str:
        st = path.stat()
        return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"

    def get(self, path: Path) -> str | None:
        return self._read().get(self._key(path))

    def put(self, path: Path, digest: str) -> None:
        """Remember a verified file. Best effort: several processes may write at once, and a lost
        record only means hashing the file again next time."""
        records = self._read()
        records[self._key(path)] = digest
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".verified-", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(records, indent=1))
            os.replace(tmp, self.file)
        except OSError:
            pass


def verify(model: ModelFile, data_dir: Path, *, full: bool = False) -> str:
    """Return the sha256 of the model's weights, raising ModelUnavailable when wrong or missing.

    A file hashed before (same path, size and mtime) is not hashed again unless `full`.
    """
    if not model.path.exists():
        raise ModelUnavailable(f"{model.kind} {model.name!r} not found at {model.path}; {_fix(model)}")
    weights = weights_file(model)
    cache = _Verified(data_dir)
    digest = None if full else cache.get(weights)
    if digest is None:
        digest = sha256_file(weights)
    if model.sha256 and digest != model.sha256:
        raise ModelUnavailable(
            f"{weights} is corrupt (sha256 {digest[:12]}…, expected {model.sha256[:12]}…); "
            f"delete it and {_fix(model)}"
        )
    cache.put(weights, digest)
    return digest


def _intact(model: ModelFile, data_dir: Path) -> bool:
    """Whether the model is in place and verified; a broken one is deleted, to be fetched again."""
    if not model.path.exists():
        return False
    try:
        verify(model, data_dir)
        return True
    except ModelUnavailable:
        if model.path.is_dir():
            shutil.rmtree(model.path)
        else:
            model.path.unlink()
        return False


def fetch(model: ModelFile, data_dir: Path, progress=None) -> bool:
    """Put a model that is not used where its package installs it in place: assembled from part
    packages, or unpacked from chunks in versions of one package. True if written."""
    return assemble(model, data_dir, progress) or unpack(model, data_dir, progress)


def assemble(model: ModelFile, data_dir: Path, progress=None) -> bool:
    """Concatenate a chunked model from its part packages, checking the sha256. True if written."""
    entry = manifest()[model.kind + "s"].get(model.key, {})
    if "parts" not in entry or _intact(model, data_dir):
        return False
    parts = [_site_path(entry["path"].format(n=n)) for n in range(1, entry["parts"] + 1)]
    missing = [str(n) for n, p in enumerate(parts, 1) if p is None or not p.exists()]
    if missing:
        pkgs = entry["package"].replace("{n}", "{" + ",".join(missing) + "}")
        raise ModelUnavailable(f"model parts missing: {pkgs}=={entry['version']}; {FIX}")
    model.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = model.path.with_suffix(".part")
    h = hashlib.sha256()
    with open(tmp, "wb") as out:
        for n, part in enumerate(parts, 1):
            data = part.read_bytes()
            h.update(data)
            out.write(data)
            if progress:
                progress(n, len(parts))
    if h.hexdigest() != model.sha256:
        tmp.unlink()
        raise ModelUnavailable(f"assembled {model.key} has sha256 {h.hexdigest()[:12]}…, expected "
                               f"{model.sha256[:12]}…; reinstall the parts: pip install --force-reinstall "
                               f"--no-deps -r models/requirements.txt")
    os.replace(tmp, model.path)
    _Verified(data_dir).put(model.path, h.hexdigest())
    return True


def unpack(model: ModelFile, data_dir: Path, progress=None) -> bool:
    """Fetch a model directory shipped as a zip archive cut into chunks, one chunk in each version
    of one package (pip installs one version at a time, so the wheels are downloaded, not
    installed): join the chunks, check the archive's sha256, unpack it. True if written."""
    entry = manifest()[model.kind + "s"].get(model.key, {})
    if "chunks" not in entry or _intact(model, data_dir):
        return False
    try:
        _unpack(model, entry, data_dir / "downloads" / model.key, progress)
    except (OSError, zipfile.BadZipFile, KeyError) as exc:  # a full disk or unwritable directory, a bad download
        raise ModelUnavailable(f"cannot fetch {model.key}: {exc}") from exc
    verify(model, data_dir, full=True)
    return True


def _unpack(model: ModelFile, entry: dict, downloads: Path, progress) -> None:
    downloads.mkdir(parents=True, exist_ok=True)
    archive = downloads / "model.zip"
    h = hashlib.sha256()
    with open(archive.with_suffix(".part"), "wb") as out:
        for n in range(1, entry["chunks"] + 1):
            with zipfile.ZipFile(_wheel(entry, entry["version"].format(n=n), downloads)) as wheel:
                with wheel.open(entry["member"]) as chunk:
                    while data := chunk.read(1 << 22):
                        h.update(data)
                        out.write(data)
            if progress:
                progress(n, entry["chunks"])
    if h.hexdigest() != entry["archive_sha256"]:
        shutil.rmtree(downloads)
        raise ModelUnavailable(f"the chunks of {model.key} join into an archive with sha256 {h.hexdigest()[:12]}…, "
                               f"expected {entry['archive_sha256'][:12]}…; the downloads are deleted, {_fix(model)} again")
    os.replace(archive.with_suffix(".part"), archive)
    staging = model.path.with_name(f".{model.key}.unpacking")
    shutil.rmtree(staging, ignore_errors=True)
    prefix = entry["archive_dir"].rstrip("/") + "/"
    with zipfile.ZipFile(archive) as z:
        for member in z.infolist():
            if member.filename.startswith(prefix) and not member.is_dir():
                target = staging / member.filename[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
    os.replace(staging, model.path)
    shutil.rmtree(downloads)


def _wheel(entry: dict, version: str, downloads: Path) -> Path:
    """The package's wheel at this version, downloaded (without its dependencies) if not there yet."""
    name = entry["package"].replace("-", "_")
    found = sorted(downloads.glob(f"{name}-{version}-*.whl"))
    if not found:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-d", str(downloads), f"{entry['package']}=={version}"]
        done = subprocess.run(command, capture_output=True, text=True)
        found = sorted(downloads.glob(f"{name}-{version}-*.whl"))
        if done.returncode or not found:
            raise ModelUnavailable(f"cannot download {entry['package']}=={version} from the package index: "
                                   f"{(done.stderr or done.stdout).strip()[-300:]}")
    return found[0]


def rescale(cosine, floor: float):
    """An embedder's cosine on all-MiniLM-L6-v2's scale, which the calibration's thresholds and
    anchors are set on: (cosine - floor) / (1 - floor). Models differ in how close they put
    unrelated texts: EmbeddingGemma gives the off-topic probes 0.42-0.51 where MiniLM gives
    0.10-0.26, and a floor of 0.35 puts them, and the strong answers, where MiniLM does."""
    return (cosine - floor) / (1.0 - floor)


def onnx_path(model: ModelFile, digest: str, data_dir: Path) -> Path:
    """Where the embedder's ONNX export lives: named by its weights' sha256 and the export's version."""
    from .embed import ONNX_VERSION

    return data_dir / "models" / f"{model.key}-{digest[:12]}-v{ONNX_VERSION}.onnx"


def remove_old_exports(model: ModelFile, digest: str, data_dir: Path) -> list[Path]:
    """Delete this model's ONNX exports of earlier export versions; the paths deleted."""
    current = onnx_path(model, digest, data_dir)
    old = [p for p in current.parent.glob(f"{model.key}-{digest[:12]}-v*.onnx") if p != current]
    for path in old:
        path.unlink(missing_ok=True)
    return old


def default_profiles() -> list[str]:
    """The profiles set-up fetches: all but those marked optional (large downloads to opt into)."""
    return [name for name, spec in manifest()["profiles"].items() if not spec.get("optional")]


def profile_models(settings: Settings, names: list[str]) -> list[ModelFile]:
    """The models of these profiles, each once."""
    out: dict[tuple[str, str], ModelFile] = {}
    for name in names:
        p = profile(settings, name)
        for m in (p.embedder, p.judge):
            out.setdefault((m.kind, m.key), m)
    return list(out.values())


def all_models(settings: Settings) -> list[ModelFile]:
    m = manifest()
    out = [_entry("embedder", k, settings.data_dir) for k in m["embedders"]]
    return out + [_entry("judge", k, settings.data_dir) for k in m["judges"]]
