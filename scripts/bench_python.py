"""sentence-transformers (PyTorch) throughput and latency on the same corpus, for bench-vs-python.sh."""
import json, sys, time
import torch
from sentence_transformers import SentenceTransformer

model_dir, corpus, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
texts = [l.strip() for l in open(corpus) if l.strip()]
model = SentenceTransformer(model_dir, device="cpu")
model.encode(texts[:32], batch_size=32)
for b in [1, 8, 32, 128]:
    t = time.perf_counter()
    for i in range(0, len(texts), b):
        model.encode(texts[i:i + b], batch_size=b, normalize_embeddings=True)
    rate = len(texts) / (time.perf_counter() - t)
    print(json.dumps({"tool": "sentence-transformers", "batch": b, "sentences_per_s": round(rate, 1)}))
lat = []
for s in texts[:200]:
    t = time.perf_counter()
    model.encode([s], batch_size=1, normalize_embeddings=True)
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
print(json.dumps({"tool": "sentence-transformers", "latency_p50_ms": round(lat[len(lat) // 2], 2),
                  "latency_p95_ms": round(lat[int(round((len(lat) - 1) * 0.95))], 2)}))
