"""Import a series of checkpoints already on disk as a trajectory file: :func:`import_checkpoints`.

A checkpoint is a PyTorch state dict (``.pt``, ``.pth``, ``.bin``, ``.ckpt``; read with
``torch.load(weights_only=True)``, never by unpickling arbitrary objects), a safetensors
file, an ``.npz`` of named arrays or one ``.npy`` array, or a Hugging Face checkpoint
folder (``checkpoint-500/model.safetensors``, sharded or not). Each becomes one row of
``/weights``; the parameter table comes from the tensor names (or from a model), the
steps from the names or the stored metadata. One checkpoint is read at a time; the file
is written beside the target under a temporary name and renamed into place when whole.
See ``docs/recorder.md`` (*Importing checkpoints*).
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import pathlib
import pickle
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pyengine.store._format import ParamInfo, chunk_shape
from pyengine.store._swmr import WriterLock
from pyengine.store.reduction import Reduction
from pyengine.store.writer import TrajectoryWriter

__all__ = ["ImportResult", "import_checkpoints"]

#: File suffixes read as checkpoints, and their reader.
SUFFIXES = {".pt": "torch", ".pth": "torch", ".bin": "torch", ".ckpt": "torch", ".safetensors": "safetensors",
            ".npz": "npz", ".npy": "npy"}
#: Weight files of a Hugging Face checkpoint folder, in order of preference (an index lists shards).
HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
#: Keys under which a checkpoint dict nests its state dict (Lightning, tutorials, DeepSpeed), in order.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module")
#: Metadata entries of a checkpoint: the optimizer step and the minibatch loss.
STEP_KEYS = ("global_step", "step")
LOSS_KEYS = ("loss",)
#: Name of the single tensor of an ``.npy`` file or of a checkpoint holding one bare tensor.
FLAT_NAME = "params"
#: Rows of /weights held in memory before one write (whole chunks), at most this many bytes.
BUFFER_BYTES = 256 * 2**20
#: Buffers of BatchNorm: float tensors, but running statistics, not parameters (kind "other").
RUNNING_STATS = ("running_mean", "running_var")
_NORM_OWNER = re.compile(r"norm|^(ln|bn)(_?[a-z0-9]*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class _Checkpoint:
    """One checkpoint: its name in messages (relative to SRC), its files (shards) and its folder."""

    label: str
    files: tuple[pathlib.Path, ...]
    folder: pathlib.Path | None = None

    @property
    def name(self) -> str:
        """The name the step is read from: the folder's, or the file's without its suffix."""
        return self.folder.name if self.folder is not None else self.files[0].stem


@dataclass
class _Tensor:
    shape: tuple[int, ...]
    dtype: str
    is_float: bool
    read: Callable[[], np.ndarray]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class _Contents:
    tensors: dict[str, _Tensor]
    ordered: bool  # the names are in the order they were saved (not so in safetensors files)
    step: int | None = None
    loss: float | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # entries that are not tensors


@dataclass
class ImportResult:
    """What :func:`import_checkpoints` wrote.

    Attributes
    ----------
    path : Path
        The trajectory file.
    n_snapshots, n_params : int
        Rows (checkpoints) and columns of ``/weights``.
    dtype : str
        Dtype of ``/weights``.
    steps : tuple of int
        First and last step.
    steps_from : dict of str to int
        How many steps came from each source: ``"step_regex"``, ``"metadata"`` (a
        ``global_step``/``step`` entry, ``trainer_state.json``), ``"name"`` (the last
        integer of the name).
    n_losses : int
        Snapshots with a loss (from the checkpoints' metadata); the others hold NaN and
        ``/loss`` declares it (``docs/format.md``).
    skipped : dict of str to str
        Tensors of the first checkpoint left out, with the reason (integer buffers such as
        ``num_batches_tracked``, tensors not selected by ``params``, ...).
    reduction : Reduction or None
        How the columns relate to the parameters for a sampled or sketched import
        (``n_params`` is then the full model's).

    Examples
    --------
    >>> print(import_checkpoints("ckpts/", "run.h5"))  # doctest: +SKIP
    run.h5: 20 checkpoints (steps 100 … 2000) × 24,378 parameters, float32
    """

    path: pathlib.Path
    n_snapshots: int
    n_params: int
    dtype: str
    steps: tuple[int, int]
    steps_from: dict[str, int]
    n_losses: int
    skipped: dict[str, str]
    reduction: Reduction | None = None

    def __str__(self) -> str:
        reduced = "" if self.reduction is None else f" ({self.reduction.method}: {self.reduction.n_kept:,} columns)"
        lines = [f"{self.path}: {self.n_snapshots} checkpoints (steps {self.steps[0]} … {self.steps[1]}) × "
                 f"{self.n_params:,} parameters{reduced}, {self.dtype}",
                 "steps from " + ", ".join(f"{_STEP_SOURCES[k]} ({n})" for k, n in self.steps_from.items())]
        if self.n_losses < self.n_snapshots:
            lines.append(f"loss: none stored in {self.n_snapshots - self.n_losses} of {self.n_snapshots} checkpoints "
                         "(NaN there; the analysis skips the loss statistics and the MSL)")
        if self.skipped:
            shown = "; ".join(f"{name} ({why})" for name, why in list(self.skipped.items())[:8])
            more = f"; … and {len(self.skipped) - 8} more" if len(self.skipped) > 8 else ""
            lines.append(f"skipped {len(self.skipped)} tensors: {shown}{more}")
        return "\n".join(lines)


_STEP_SOURCES = {"step_regex": "step_regex", "metadata": "stored metadata", "name": "the names"}


def import_checkpoints(
    src: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    step_regex: str | None = None,
    model=None,
    params: Sequence[str] | None = None,
    dtype: str | None = None,
    compression: str | None = None,
    settings: dict | None = None,
    sample=None,
    sketch=None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> ImportResult:
    """Write a series of checkpoints already on disk as one trajectory file.

    Parameters
    ----------
    src : path, glob or sequence of paths
        A folder, a glob pattern (``"ckpts/step-*.pt"``, ``**`` allowed) or a list of
        checkpoint files or folders. A folder's checkpoints are its files with a known
        suffix (``.pt .pth .bin .ckpt .safetensors .npz .npy``); a folder without such
        files is a folder of checkpoint folders: each sub-folder with the weights of a
        Hugging Face checkpoint (``model.safetensors``, ``pytorch_model.bin``, or a
        sharded ``*.index.json``), or with exactly one checkpoint file, is one checkpoint.
        Folders and globs are taken in natural order of their names (``ckpt-2`` before
        ``ckpt-10``); a list in its own order.
    out : path
        The trajectory file to write.
    step_regex : str, optional
        Regular expression searched in each checkpoint's path relative to ``src``: its
        group ``step`` (or its first group, or the whole match) is the step. Without it
        the step is the checkpoint's ``global_step`` or ``step`` entry (for a Hugging
        Face folder, ``trainer_state.json``), else the last integer of its name.
    model : torch.nn.Module, optional
        Take the parameter table from the model, as the :class:`~pyengine.record.Recorder`
        does (trainable parameters in ``named_parameters()`` order, kinds from the
        modules); each checkpoint must hold these tensors, other entries are skipped.
        Without it the table lists every float tensor of the first checkpoint in saved
        order (natural order of names for safetensors files, which keep none), kinds from
        the names.
    params : sequence of str, optional
        Keep only tensors matching a kind (``"weight"``, ``"bias"``, ``"norm"``,
        ``"other"``; BatchNorm running statistics are ``"other"``) or a glob pattern on
        the name, as the recorder's ``params``.
    dtype : {None, "float16", "float32", "float64"}
        Dtype of ``/weights``; default the widest float dtype of the first checkpoint
        (bfloat16 and float8 as float32), so that no value is rounded.
    compression : {None, "lz4", "gzip"}
        Lossless compression of ``/weights``.
    settings : dict, optional
        Run settings stored in the file (batch size, seed, ...), merged over the
        automatic ``{"import": ...}`` entry.
    sample : float or Sample, optional
        Keep a seeded subset of the coordinates, as ``Recorder(sample=...)`` does (needs
        torch); the file stores the same columns and reduction a recording would.
    sketch : int or Sketch, optional
        Store a seeded CountSketch of k columns, as ``Recorder(sketch=...)`` does (float64
        unless ``dtype`` says otherwise). At most one of ``sample`` and ``sketch``.
    overwrite : bool
        Replace an existing ``out``; otherwise it is refused before any work.
    progress : bool, optional
        Show progress (see :mod:`pyengine.progress`).

    Returns
    -------
    ImportResult

    Raises
    ------
    FileExistsError, IsADirectoryError
        ``out`` exists and ``overwrite`` is False; ``out`` is a folder.
    TypeError, ValueError
        A bad ``sample`` or ``sketch`` (checked before any checkpoint is read).
    BlockingIOError
        ``overwrite`` and a live writer (a recorder) holds ``out``.
    FileNotFoundError
        No checkpoint found.
    ValueError
        A checkpoint cannot be read, needs more than ``torch.load(weights_only=True)``
        allows, has no step, or differs from the first one (a tensor renamed, missing or
        of another shape); steps that do not increase. The message names the file(s)
        and the tensor. Nothing is left at ``out`` (nor beside it) after a failure.

    Examples
    --------
    >>> from pyengine.store import import_checkpoints
    >>> result = import_checkpoints("checkpoints/", "run.h5", step_regex=r"step=(\\d+)")  # doctest: +SKIP
    >>> result.n_snapshots, result.skipped  # doctest: +SKIP
    (20, {'bn1.num_batches_tracked': 'int64: not a float tensor'})
    """
    from pyengine.progress import progress_bar

    out = pathlib.Path(out)
    _check_out(out, overwrite)
    try:
        pattern = re.compile(step_regex) if step_regex is not None else None
    except re.error as exc:
        raise ValueError(f"step_regex {step_regex!r} is not a regular expression ({exc})") from None
    reduction = _reduction_spec(sample, sketch)
    checkpoints = find_checkpoints(src)
    temporary = out.with_name(f".{out.name}.importing")
    options = _Options(pattern, model, params, dtype, compression, settings or {}, src, reduction)
    with progress_bar(progress, "import", len(checkpoints), "checkpoints") as bar:
        result = _write(checkpoints, temporary, options, bar)  # removes the temporary file when it fails
    try:
        with contextlib.ExitStack() as stack:
            if out.exists():
                _check_out(out, overwrite)  # it appeared meanwhile
                stack.enter_context(WriterLock(out))  # a live writer's file is not replaced
            os.replace(temporary, out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    result.path = out
    return result


@dataclass(frozen=True)
class _Options:
    step_regex: re.Pattern | None
    model: object
    params: Sequence[str] | None
    dtype: str | None
    compression: str | None
    settings: dict
    src: object
    reduction: object = None  # a record.reduce Sample or Sketch


def _reduction_spec(sample, sketch):
    """The Sample or Sketch of ``sample=`` / ``sketch=``, or None (torch needed only for one)."""
    if sample is None and sketch is None:
        return None
    from pyengine.record.reduce import reduction_spec

    return reduction_spec(sample, sketch)


def _check_out(out: pathlib.Path, overwrite: bool) -> None:
    if out.is_dir():
        raise IsADirectoryError(f"{out} is a folder: give the trajectory file to write, e.g. {out / 'run.h5'}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists: pass overwrite=True (--overwrite) to replace it, or choose another name")
    if out.exists():
        WriterLock(out).release()  # refuse now, not after the work, a file a live writer holds
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out.parent}: no such folder for the output file")


# -- finding the checkpoints -----------------------------------------------------------


def natural_key(text: str) -> list:
    """Sort key putting ``ckpt-2`` before ``ckpt-10`` (digit runs compare as numbers).

    Examples
    --------
    >>> sorted(["ckpt-10.pt", "ckpt-2.pt", "ckpt-1.pt"], key=natural_key)
    ['ckpt-1.pt', 'ckpt-2.pt', 'ckpt-10.pt']
    """
    return [int(part) if i % 2 else part.lower() for i, part in enumerate(re.split(r"(\d+)", text))]


def find_checkpoints(src: str | os.PathLike | Sequence[str | os.PathLike]) -> list[_Checkpoint]:
    """The checkpoints of ``src`` (see :func:`import_checkpoints`), in import order.

    Raises
    ------
    FileNotFoundError
        Nothing found, naming what was looked for.
    ValueError
        A checkpoint folder with several candidate weight files.

    Examples
    --------
    >>> [c.label for c in find_checkpoints("ckpts/")]  # doctest: +SKIP
    ['step-1.pt', 'step-2.pt', 'step-10.pt']
    """
    if not isinstance(src, (str, os.PathLike)):
        paths = [pathlib.Path(p) for p in src]
        missing = [str(p) for p in paths if not p.exists()]
        if missing or not paths:
            raise FileNotFoundError(f"no such checkpoint: {', '.join(missing)}" if missing else "no checkpoint given")
        return [_checkpoint(p, str(p)) for p in paths]
    text = os.fspath(src)
    root = pathlib.Path(text)
    if root.is_dir():
        return _in_folder(root)
    if root.is_file():
        return [_checkpoint(root, root.name)]
    if any(c in text for c in "*?["):
        matches = [pathlib.Path(p) for p in glob.glob(text, recursive=True)]
        found = [_Checkpoint(str(p), (p,)) for p in matches if p.is_file() and p.suffix in SUFFIXES]
        found += [c for c in (_folder_checkpoint(p, str(p)) for p in matches if p.is_dir()) if c is not None]
        if not found:
            raise FileNotFoundError(f"{text}: matches no checkpoint file ({' '.join(SUFFIXES)}) or folder")
        return sorted(found, key=lambda c: natural_key(c.label))
    raise FileNotFoundError(f"{text}: no such file, folder or glob pattern")


def _in_folder(root: pathlib.Path) -> list[_Checkpoint]:
    files = [p for p in root.iterdir() if p.is_file() and p.suffix in SUFFIXES]
    if files:
        found = [_Checkpoint(p.name, (p,)) for p in files]
    else:
        found = [c for c in (_folder_checkpoint(d, d.name) for d in root.iterdir() if d.is_dir()) if c is not None]
    if not found:
        raise FileNotFoundError(f"{root}: holds no checkpoint file ({' '.join(SUFFIXES)}) and no checkpoint folder "
                                f"(one holding {' or '.join(HF_WEIGHTS[::2])}, or one checkpoint file)")
    return sorted(found, key=lambda c: natural_key(c.label))


def _checkpoint(path: pathlib.Path, label: str) -> _Checkpoint:
    if path.is_dir():
        found = _folder_checkpoint(path, label)
        if found is None:
            raise FileNotFoundError(f"{label}: a folder holding no checkpoint ({' or '.join(HF_WEIGHTS[::2])}, or one "
                                    "checkpoint file)")
        return found
    if path.suffix not in SUFFIXES:
        raise ValueError(f"{label}: not a checkpoint file: expected one of {' '.join(SUFFIXES)}")
    return _Checkpoint(label, (path,))


def _folder_checkpoint(folder: pathlib.Path, label: str) -> _Checkpoint | None:
    """A Hugging Face checkpoint folder (or a folder holding one checkpoint file), else None."""
    for name in HF_WEIGHTS:
        path = folder / name
        if path.is_file():
            return _Checkpoint(label, _shards(path, label) if name.endswith(".json") else (path,), folder)
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix in SUFFIXES), key=lambda p: p.name)
    if len(files) > 1:
        raise ValueError(f"{label}: a checkpoint folder with several weight files ({', '.join(p.name for p in files)}) "
                         "and none of " + ", ".join(HF_WEIGHTS) + ": give the files with a glob instead")
    return _Checkpoint(label, (files[0],), folder) if files else None


def _shards(index: pathlib.Path, label: str) -> tuple[pathlib.Path, ...]:
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        names = list(dict.fromkeys(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{label}/{index.name}: not a shard index (a JSON object with a 'weight_map'): "
                         f"{exc}") from None
    return tuple(index.parent / name for name in names)


# -- reading one checkpoint ------------------------------------------------------------


@contextlib.contextmanager
def _opened(checkpoint: _Checkpoint) -> Iterator[_Contents]:
    """The tensors (read on demand), step and loss of one checkpoint; its files stay open meanwhile."""
    with contextlib.ExitStack() as stack:
        parts = [stack.enter_context(_READERS[SUFFIXES[p.suffix]](p, _where(checkpoint, p)))
                 for p in checkpoint.files]
        contents = parts[0]
        for part, path in zip(parts[1:], checkpoint.files[1:]):
            twice = sorted(set(part.tensors) & set(contents.tensors))
            if twice:
                raise ValueError(f"{_where(checkpoint, path)}: tensor {twice[0]!r} is in another shard too")
            contents.tensors.update(part.tensors)
            contents.step = contents.step if contents.step is not None else part.step
            contents.loss = contents.loss if contents.loss is not None else part.loss
        if checkpoint.folder is not None:
            _trainer_state(checkpoint.folder, contents)
        yield contents


def _where(checkpoint: _Checkpoint, path: pathlib.Path) -> str:
    return checkpoint.label if checkpoint.folder is None else f"{checkpoint.label}/{path.name}"


def _trainer_state(folder: pathlib.Path, contents: _Contents) -> None:
    """Step and loss from a Hugging Face ``trainer_state.json``: ``global_step``; the logged
    training loss of that step when the Trainer logged every step (``logging_steps`` 1), as
    a loss logged less often is a mean over several steps."""
    try:
        state = json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return
    if not isinstance(state, dict):
        return
    step = _integer(state.get("global_step"))
    if contents.step is None and step is not None:
        contents.step = step
    if contents.loss is None and step is not None and state.get("logging_steps") == 1:
        for entry in state.get("log_history") or ():
            if isinstance(entry, dict) and entry.get("step") == step and "loss" in entry:
                contents.loss = _number(entry["loss"])


@contextlib.contextmanager
def _torch_file(path: pathlib.Path, where: str) -> Iterator[_Contents]:
    import torch

    obj = _torch_load(torch, path, where)
    state, meta = _state_dict(obj, where, lambda v: isinstance(v, torch.Tensor))
    tensors, skipped, seen = {}, {}, {}
    for name, value in state.items():
        name = str(name)
        if state is meta and name in STEP_KEYS + LOSS_KEYS and getattr(value, "ndim", 0) == 0:
            continue  # the checkpoint's step or loss beside the tensors
        if not isinstance(value, torch.Tensor):
            skipped[name] = f"{type(value).__name__}: not a tensor"
            continue
        key = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape), value.stride())
        if key in seen and value.numel():
            skipped[name] = f"the same tensor as {seen[key]} (tied weights)"
            continue
        seen[key] = name
        tensors[name] = _Tensor(tuple(value.shape), str(value.dtype).removeprefix("torch."),
                                value.is_floating_point(), lambda v=value: _torch_numpy(v))
    yield _Contents(tensors, True, _integer(_first(meta, STEP_KEYS)), _number(_first(meta, LOSS_KEYS)), skipped)


def _torch_load(torch, path: pathlib.Path, where: str):
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # files of the old (non-zip) format cannot be mapped
            if "mmap" not in str(exc):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found or re.search(r"WeightsUnpickler error: Unsupported", str(exc)):
            what = f"it pickles {found.group(1)}" if found else "it pickles objects other than tensors and containers"
            raise ValueError(f"{where}: refused: {what}, which torch.load(weights_only=True) does not allow, and "
                             "pyengine never unpickles arbitrary objects; save the weights alone "
                             "(torch.save(model.state_dict(), path)) or as safetensors") from None
        raise ValueError(f"{where}: cannot be read as a PyTorch checkpoint ({_first_line(exc)})") from None
    except (RuntimeError, KeyError, EOFError, ValueError, AttributeError, IndexError) as exc:
        raise ValueError(f"{where}: cannot be read as a PyTorch checkpoint ({type(exc).__name__}: "
                         f"{_first_line(exc)})") from None


def _torch_numpy(tensor) -> np.ndarray:
    import torch

    tensor = tensor.detach()
    if tensor.dtype not in (torch.float16, torch.float32, torch.float64):
        tensor = tensor.float()  # bfloat16, float8: exact in float32
    return tensor.numpy()


def _state_dict(obj, where: str, is_tensor: Callable[[object], bool]) -> tuple[Mapping, Mapping]:
    """The state dict inside a loaded checkpoint, and the mapping its metadata is read from."""
    if is_tensor(obj):
        return {FLAT_NAME: obj}, {}
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: holds a {type(obj).__name__}, not a state dict (a dict of tensors)")
    meta = obj
    for _ in range(3):  # {"model": {"state_dict": {...}}} and the like
        nested = next((obj[k] for k in STATE_DICT_KEYS if isinstance(obj.get(k), Mapping)), None)
        if nested is None:
            break
        obj = nested
    if not any(is_tensor(v) for v in obj.values()):
        keys = ", ".join(map(str, list(obj)[:8]))
        raise ValueError(f"{where}: no tensors found (keys: {keys}); a state dict is a dict of tensors, or one nested "
                         f"under {', '.join(STATE_DICT_KEYS)}")
    return obj, meta


@contextlib.contextmanager
def _safetensors_file(path: pathlib.Path, where: str) -> Iterator[_Contents]:
    try:
        from safetensors import safe_open
    except ImportError:
        raise ImportError(f"{where}: reading safetensors files needs the safetensors package: "
                          "pip install 'pyengine[safetensors]'", name="safetensors") from None
    framework = "pt" if _has_torch() else "numpy"
    try:
        handle = safe_open(str(path), framework=framework)
    except Exception as exc:  # SafetensorError is not importable by name in every version
        raise ValueError(f"{where}: cannot be read as a safetensors file ({_first_line(exc)})") from None
    with handle as f:
        tensors = {}
        for name in sorted(f.keys(), key=natural_key):
            sliced = f.get_slice(name)
            kind = sliced.get_dtype()
            read = (lambda n=name: _torch_numpy(f.get_tensor(n))) if framework == "pt" else (
                lambda n=name: f.get_tensor(n))
            tensors[name] = _Tensor(tuple(sliced.get_shape()), kind, kind.startswith(("F", "BF")), read)
        meta = f.metadata() or {}
        yield _Contents(tensors, False, _integer(_first(meta, STEP_KEYS)), _number(_first(meta, LOSS_KEYS)))


@contextlib.contextmanager
def _npz_file(path: pathlib.Path, where: str) -> Iterator[_Contents]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{where}: cannot be read as an .npz file ({_first_line(exc)})") from None
    with archive:
        if not hasattr(archive, "files"):
            raise ValueError(f"{where}: an .npy array in an .npz file; name it .npy")
        meta, tensors = {}, {}
        for name in archive.files:
            shape, dtype = _npz_header(archive, name, where)
            if name in STEP_KEYS + LOSS_KEYS and shape == ():
                meta[name] = archive[name][()]
                continue
            tensors[name] = _Tensor(shape, str(dtype), _numpy_float(dtype), lambda n=name: archive[n])
        yield _Contents(tensors, True, _integer(_first(meta, STEP_KEYS)), _number(_first(meta, LOSS_KEYS)))


def _npz_header(archive, name: str, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array of an .npz file, from its header (the data is not read)."""
    try:
        with archive.zip.open(f"{name}.npy") as member:
            version = np.lib.format.read_magic(member)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(member)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{where}: entry {name!r} cannot be read ({_first_line(exc)})") from None
    return tuple(shape), dtype


@contextlib.contextmanager
def _npy_file(path: pathlib.Path, where: str) -> Iterator[_Contents]:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{where}: cannot be read as an .npy file ({_first_line(exc)})") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{where}: an .npz archive named .npy; name it .npz")
    yield _Contents({FLAT_NAME: _Tensor(array.shape, str(array.dtype), _numpy_float(array.dtype),
                                        lambda: np.asarray(array))}, True)


_READERS = {"torch": _torch_file, "safetensors": _safetensors_file, "npz": _npz_file, "npy": _npy_file}


def _numpy_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" and dtype.itemsize <= 8


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _first(meta: Mapping, keys: tuple[str, ...]):
    return next((meta[k] for k in keys if k in meta), None)


def _integer(value) -> int | None:
    """An integer step from metadata (int, 0-d array or tensor, or its decimal text), else None."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return None


def _number(value) -> float | None:
    """A finite float loss from metadata, else None."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    try:
        number = float(value) if isinstance(value, (int, float, str, np.number)) and not isinstance(value, bool) \
            else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# -- the parameter table ---------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    params: list[ParamInfo]
    skipped: dict[str, str]
    dtype: np.dtype
    settings: dict


def _table(contents: _Contents, first: str, options: _Options) -> _Table:
    """The parameter table, from the model or from the first checkpoint's names."""
    skipped = dict(contents.skipped)
    for name, tensor in contents.tensors.items():
        if not tensor.is_float:
            skipped[name] = f"{tensor.dtype}: not a float tensor"
        elif tensor.size == 0:
            skipped[name] = "empty"
    if options.model is not None:
        params, settings = _model_table(contents, first, options, skipped)
    else:
        params, settings = _name_table(contents, options, skipped), {}
    dtype = np.dtype(options.dtype) if options.dtype else _widest([contents.tensors[p.name] for p in params])
    return _Table(params, skipped, dtype, settings)


def _model_table(contents: _Contents, first: str, options: _Options, skipped: dict) -> tuple[list[ParamInfo], dict]:
    from pyengine.record._params import select_params
    from pyengine.record._settings import model_settings

    _, params = select_params(options.model, options.params)
    try:
        for p in params:
            _check_tensor(contents, p, first, f"a parameter of the {type(options.model).__name__} given")
    except ValueError as exc:
        raise ValueError(f"{first}: {exc}") from None
    chosen = {p.name for p in params}
    skipped.update({n: "not a trainable parameter of the model" for n in contents.tensors
                    if n not in chosen and n not in skipped})
    return params, {"model": model_settings(options.model, params[-1].offset + params[-1].size)}


def _name_table(contents: _Contents, options: _Options, skipped: dict) -> list[ParamInfo]:
    names = [n for n in contents.tensors if n not in skipped]
    if not contents.ordered:
        names.sort(key=natural_key)
    norms = {n.rpartition(".")[0] for n in contents.tensors if n.rpartition(".")[2] in RUNNING_STATS}
    kinds = {n: name_kind(n, norms) for n in names}
    if options.params is not None:
        if isinstance(options.params, str):
            raise TypeError(f"params must be a list of kinds or name patterns, got the string {options.params!r}; "
                            f"write [{options.params!r}]")
        for n in names:
            if not any(s == kinds[n] or _glob(n, s) for s in options.params):
                skipped[n] = f"not selected by params={list(options.params)}"
        names = [n for n in names if n not in skipped]
    if not names:
        raise ValueError("no float tensor to import" + (f" (params={list(options.params)} matches none)"
                                                        if options.params is not None else ""))
    table, offset = [], 0
    for n in names:
        tensor = contents.tensors[n]
        table.append(ParamInfo(n, offset, tensor.size, tensor.shape, kinds[n]))
        offset += tensor.size
    return table


def name_kind(name: str, norm_owners: set[str] = frozenset()) -> str:
    """Kind of a tensor from its name alone: ``"norm"``, ``"weight"``, ``"bias"`` or ``"other"``.

    The recorder takes the kind from the owning module (``pyengine.record.param_kind``);
    a state dict has names only. The owner is a normalisation layer when it holds BatchNorm
    running statistics (``norm_owners``) or its name says so (``...norm...``, ``ln_1``,
    ``bn1``); its ``weight`` and ``bias`` are then ``"norm"``. Otherwise the last part of
    the name decides, as in the recorder; running statistics are ``"other"``.

    Examples
    --------
    >>> [name_kind(n) for n in ["fc.weight", "fc.bias", "ln_f.weight", "layer1.0.bn1.bias", "pos_embed"]]
    ['weight', 'bias', 'norm', 'norm', 'other']
    """
    owner, _, leaf = name.rpartition(".")
    if leaf in ("weight", "bias") and (owner in norm_owners or _NORM_OWNER.search(owner.rpartition(".")[2])):
        return "norm"
    return leaf if leaf in ("weight", "bias") else "other"


def _glob(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern)


def _widest(tensors: list[_Tensor]) -> np.dtype:
    """The file dtype that holds every value exactly: float16 only if all are, float64 if any is."""
    sizes = {2 if t.dtype in ("float16", "F16") else 8 if t.dtype in ("float64", "F64") else 4 for t in tensors}
    return np.dtype({2: "float16", 4: "float32", 8: "float64"}[max(sizes)])


def _check_tensor(contents: _Contents, p: ParamInfo, first: str, what: str) -> None:
    tensor = contents.tensors.get(p.name)
    if tensor is None:
        new = [n for n in contents.tensors if contents.tensors[n].is_float][:3]
        hint = f"; it holds e.g. {', '.join(new)}" if new else ""
        raise ValueError(f"tensor {p.name!r} ({what}) is missing{hint}")
    if tensor.shape != tuple(p.shape):
        raise ValueError(f"tensor {p.name!r} has shape {list(tensor.shape)}, but {list(p.shape)} in {first}")
    if not tensor.is_float:
        raise ValueError(f"tensor {p.name!r} is {tensor.dtype}, but a float tensor in {first}")


def _check_same_tensors(contents: _Contents, table: _Table, label: str, first: str) -> None:
    """A later checkpoint holds the first one's tensors (same names and shapes), and no new float tensor."""
    try:
        for p in table.params:
            _check_tensor(contents, p, first, f"in {first}")
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}: every checkpoint must hold the tensors of the first one") from None
    known = {p.name for p in table.params} | set(table.skipped)
    new = [n for n, t in contents.tensors.items() if n not in known and t.is_float]
    if new:
        raise ValueError(f"{label}: tensor {new[0]!r} is not in {first}"
                         + (f" (nor {len(new) - 1} other tensors)" if len(new) > 1 else "")
                         + ": every checkpoint must hold the tensors of the first one")


# -- steps and writing ------------------------------------------------------------------


def _step(checkpoint: _Checkpoint, contents: _Contents, pattern: re.Pattern | None) -> tuple[int, str]:
    if pattern is not None:
        found = pattern.search(checkpoint.label)
        text = None if found is None else (found.group("step") if "step" in pattern.groupindex else
                                           found.group(1) if pattern.groups else found.group(0))
        if text is None or not text.isdigit():
            raise ValueError(f"{checkpoint.label}: step_regex '{pattern.pattern}' finds no step in it (its match "
                             f"must be a whole number: the group 'step', the first group, or the whole match)")
        return int(text), "step_regex"
    if contents.step is not None:
        return contents.step, "metadata"
    numbers = re.findall(r"\d+", checkpoint.name)
    if not numbers:
        raise ValueError(f"{checkpoint.label}: no step: no {' or '.join(STEP_KEYS)} entry and no number in the name; "
                         "pass step_regex (--step-regex)")
    return int(numbers[-1]), "name"


def _check_order(step: int, label: str, previous: tuple[int, str] | None) -> None:
    if previous is not None and step <= previous[0]:
        same = "the same step" if step == previous[0] else "an earlier step"
        raise ValueError(f"{label}: step {step} after step {previous[0]} of {previous[1]} ({same}): steps must "
                         "increase; leave one out (with a glob), or give the steps with step_regex")


def _write(checkpoints: list[_Checkpoint], temporary: pathlib.Path, options: _Options, bar) -> ImportResult:
    first = checkpoints[0].label
    writer = rows = table = reducer = None
    steps_from: dict[str, int] = {}
    previous: tuple[int, str] | None = None
    n_losses = 0
    try:
        for checkpoint in checkpoints:
            with _opened(checkpoint) as contents:
                step, source = _step(checkpoint, contents, options.step_regex)
                _check_order(step, checkpoint.label, previous)
                if writer is None:
                    table = _table(contents, first, options)
                    writer, rows, reducer = _open_writer(temporary, table, options, first)
                else:
                    _check_same_tensors(contents, table, checkpoint.label, first)
                rows.add(_flatten(contents, table, reducer), step, contents.loss)
            n_losses += contents.loss is not None
            steps_from[source] = steps_from.get(source, 0) + 1
            previous = (step, checkpoint.label)
            bar.update()
        rows.flush()
        writer.close()
    except BaseException:
        if writer is not None:  # the temporary file is ours: a failed import leaves nothing
            writer.close()
            temporary.unlink(missing_ok=True)
        raise
    p = table.params[-1].offset + table.params[-1].size
    return ImportResult(temporary, len(checkpoints), p, str(rows.weights.dtype), rows.steps_range, steps_from,
                        n_losses, table.skipped, None if reducer is None else reducer.reduction)


def _open_writer(temporary: pathlib.Path, table: _Table, options: _Options, first: str):
    """The writer of the temporary file, its row buffer and the reducer (None for every
    coordinate); a reduced file gets the columns, table and reduction a recording would."""
    reducer, n_cols, params, dtype = None, table.params[-1].offset + table.params[-1].size, table.params, table.dtype
    if options.reduction is not None:
        from pyengine.record.reduce import Sketch, make_reducer

        reducer = make_reducer(options.reduction, table.params)
        n_cols, params = reducer.n_cols, reducer.table
        if isinstance(options.reduction, Sketch) and not options.dtype:
            dtype = np.dtype(np.float64)
    n_rows = max(1, min(chunk_shape(n_cols, None, None)[0], BUFFER_BYTES // (n_cols * dtype.itemsize)))
    source = options.src if isinstance(options.src, (str, os.PathLike)) else [os.fspath(p) for p in options.src]
    auto = {"import": {"source": os.fspath(source) if isinstance(source, os.PathLike) else source,
                       "first": first, "skipped": table.skipped}, **table.settings}
    writer = TrajectoryWriter(temporary, n_cols, dtype=dtype, params=params, attrs={**auto, **options.settings},
                              compression=options.compression, chunk_steps=n_rows, swmr=False, overwrite=True,
                              missing_loss=True, reduction=None if reducer is None else reducer.reduction,
                              kept_index=getattr(reducer, "kept", None))
    return writer, _Rows(writer, n_rows, n_cols, dtype), reducer


def _flatten(contents: _Contents, table: _Table, reducer=None) -> np.ndarray:
    """The checkpoint's flat weight vector (one in memory at a time), reduced by ``reducer``
    as the recorder reduces its parameters (float64 for a sketch)."""
    row = np.empty(table.params[-1].offset + table.params[-1].size, table.dtype)
    for p in table.params:
        row[p.offset:p.offset + p.size] = np.asarray(contents.tensors[p.name].read()).reshape(-1)
    if reducer is None:
        return row
    import torch

    full = torch.from_numpy(row)
    out = torch.empty(reducer.n_cols, dtype=torch.float64)
    reducer.copy_into([full[p.offset:p.offset + p.size] for p in table.params], out)
    return out.numpy()


class _Rows:
    """Rows waiting to be appended as whole chunks (the writer rewrites a compressed chunk at each append)."""

    def __init__(self, writer: TrajectoryWriter, n_rows: int, n_params: int, dtype: np.dtype) -> None:
        self.writer = writer
        self.weights = np.empty((n_rows, n_params), dtype)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.first_step: int | None = None
        self.last_step: int | None = None

    def add(self, row: np.ndarray, step: int, loss: float | None) -> None:
        self.weights[len(self.steps)] = row
        self.steps.append(step)
        self.losses.append(math.nan if loss is None else loss)
        self.first_step = step if self.first_step is None else self.first_step
        self.last_step = step
        if len(self.steps) == len(self.weights):
            self.flush()

    def flush(self) -> None:
        if self.steps:
            self.writer.append(self.weights[:len(self.steps)], self.steps, self.losses)
            self.steps, self.losses = [], []

    @property
    def steps_range(self) -> tuple[int, int]:
        return self.first_step, self.last_step
