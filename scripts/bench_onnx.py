"""ONNX Runtime fp32 and int8 on the same corpus, for bench-vs-python.sh.

Exports the sentence-transformers model's transformer with torch.onnx once (cached beside the
venv), quantizes it with onnxruntime.quantization.quantize_dynamic(per_channel=True), and runs both
with mean pooling and normalisation as sentence-transformers does. Prints JSON lines like
bench_python.py, plus each int8 embedding's cosine against ORT fp32's on the first 256 sentences.
"""
import json, os, sys, time

import numpy as np
import onnxruntime as ort
from transformers import AutoTokenizer

model_dir, corpus, threads, cache = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
os.makedirs(cache, exist_ok=True)
fp32_path = os.path.join(cache, "minilm-fp32.onnx")
int8_path = os.path.join(cache, "minilm-int8.onnx")
tok = AutoTokenizer.from_pretrained(model_dir)
max_len = 256  # sentence_bert_config.json's max_seq_length for all-MiniLM-L6-v2

if not os.path.exists(fp32_path):
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir).eval()
    enc = tok(["an example sentence"], return_tensors="pt")
    args = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "seq"} for n in names}
    axes["last_hidden_state"] = {0: "batch", 1: "seq"}
    kwargs = dict(input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17)
    try:
        torch.onnx.export(model, args, fp32_path, dynamo=False, **kwargs)
    except TypeError:
        torch.onnx.export(model, args, fp32_path, **kwargs)
if not os.path.exists(int8_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(fp32_path, int8_path, per_channel=True, weight_type=QuantType.QInt8)


def session(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def encode(sess, texts):
    enc = tok(texts, padding=True, truncation=True, max_length=max_len, return_tensors="np")
    feed = {i.name: enc[i.name].astype(np.int64) for i in sess.get_inputs()}
    h = sess.run(None, feed)[0]
    mask = enc["attention_mask"][..., None].astype(np.float32)
    e = (h * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
    return e / np.clip(np.linalg.norm(e, axis=1, keepdims=True), 1e-12, None)


texts = [l.strip() for l in open(corpus) if l.strip()]
sessions = {"onnxruntime fp32": session(fp32_path), "onnxruntime int8": session(int8_path)}
ref = encode(sessions["onnxruntime fp32"], texts[:256])
q = encode(sessions["onnxruntime int8"], texts[:256])
cos = (ref * q).sum(1)
print(json.dumps({"tool": "onnxruntime int8", "cosine_mean": round(float(cos.mean()), 5),
                  "cosine_min": round(float(cos.min()), 5)}))
for name, sess in sessions.items():
    encode(sess, texts[:32])
    for b in [1, 8, 32, 128]:
        t = time.perf_counter()
        for i in range(0, len(texts), b):
            encode(sess, texts[i:i + b])
        rate = len(texts) / (time.perf_counter() - t)
        print(json.dumps({"tool": name, "batch": b, "sentences_per_s": round(rate, 1)}))
    lat = []
    for s in texts[:200]:
        t = time.perf_counter()
        encode(sess, [s])
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    print(json.dumps({"tool": name, "latency_p50_ms": round(lat[len(lat) // 2], 2),
                      "latency_p95_ms": round(lat[int(round((len(lat) - 1) * 0.95))], 2)}))
