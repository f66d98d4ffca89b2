#!/usr/bin/env python3
# The computed-input configs of BENCHMARKS.md ("AIM-relaxed tensors and computed inputs in chunks", "Computed inputs and
# RegMean's arrays within --max-memory") on the 70B slice: python3 scripts/computed-input-configs.py SLICE_DIR OUT_DIR.
# The same weights (symlinked) with 10,256-token vocabularies (ft1: 500 tokens of its own, ft2: base's tokens shuffled),
# ft1 read as ft1+lora (r 16 on q_proj, down_proj, lm_head), tokenizer: {source: union, pad_to_multiple_of: 64}. Standard library only.
import json, os, random, shutil, struct, sys
S, CV = sys.argv[1], sys.argv[2]
spec = ["<pad>", "<s>", "</s>", "<unk>"]
base = ["t%d" % i for i in range(10252)]
ft1 = base[:9752] + ["u%d" % i for i in range(500)]
ft2 = base[:]; random.Random(7).shuffle(ft2)
for name, toks in (("base", base), ("ft1", ft1), ("ft2", ft2)):
    d = os.path.join(CV, name); os.makedirs(d, exist_ok=True)
    for f in ("model.safetensors",):
        if not os.path.exists(os.path.join(d, f)): os.symlink(os.path.join(S, name, f), os.path.join(d, f))
    for f in ("config.json", "generation_config.json", "tokenizer_config.json"): shutil.copy(os.path.join(S, name, f), d)
    t = json.load(open(os.path.join(S, name, "tokenizer.json")))
    t["model"]["vocab"] = {tok: i for i, tok in enumerate(spec + toks)}
    t["model"]["merges"] = []
    json.dump(t, open(os.path.join(d, "tokenizer.json"), "w"))
lora = os.path.join(CV, "lora"); os.makedirs(lora, exist_ok=True)
json.dump({"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "down_proj", "lm_head"]}, open(os.path.join(lora, "adapter_config.json"), "w"))
p = "base_model.model."
shapes = {p + "model.layers.0.self_attn.q_proj.lora_A.weight": [16, 8192], p + "model.layers.0.self_attn.q_proj.lora_B.weight": [655, 16],
          p + "model.layers.0.mlp.down_proj.lora_A.weight": [16, 28672], p + "model.layers.0.mlp.down_proj.lora_B.weight": [655, 16],
          p + "lm_head.lora_A.weight": [16, 8192], p + "lm_head.lora_B.weight": [10260, 16]}
rng = random.Random(3)
hdr, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
for k, s in shapes.items():
    n = s[0] * s[1]
    a = struct.pack("<%df" % n, *(rng.gauss(0.0, 1.0) * 0.01 for _ in range(n)))
    hdr[k] = {"dtype": "F32", "shape": s, "data_offsets": [off, off + len(a)]}; off += len(a); blobs.append(a)
h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
with open(os.path.join(lora, "adapter_model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]
m = lambda n: os.path.join(CV, n)
tok = "tokenizer:\n  source: union\n  pad_to_multiple_of: 64\ndtype: bfloat16\n"
open(m("ties-cv.yml"), "w").write(f"merge_method: ties\nbase_model: {m('base')}\nmodels:\n  - model: {m('ft1')}+{lora}\n    parameters: {{weight: 0.5, density: 0.3}}\n  - model: {m('ft2')}\n    parameters: {{weight: 0.5, density: 0.3}}\n" + tok)
open(m("ta-cv.yml"), "w").write(f"merge_method: task_arithmetic\nbase_model: {m('base')}\nmodels:\n  - model: {m('ft1')}+{lora}\n    parameters: {{weight: 0.5}}\n  - model: {m('ft2')}\n    parameters: {{weight: 0.5}}\n" + tok)
