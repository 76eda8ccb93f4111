#!/usr/bin/env python
"""Train the bundled demo CLIP model on procedurally drawn shapes.

    .venv/bin/python -m demo.train            # writes demo/model/

The model must rank the 48 "a <colour> <shape>" queries with precision@5 of at least 0.85 on a
freshly drawn gallery; the bundled one scores about 0.98 (printed at the end of a run).

Seeded and repeatable on one machine (same torch build and thread count). Steps:
  1. build a small CLIP byte-level BPE tokenizer (the 256 byte symbols, their `</w>` forms,
     merges learnt from the caption vocabulary plus a list of common English words);
  2. draw a fixed set of captioned images with demo/synth.py at several sizes and put them
     through the very CLIPImageProcessor that is saved with the model (shortest edge 64, crop 64);
  3. train a tiny transformers.CLIPModel contrastively; a caption is drawn afresh for each image at
     each step, and every caption in a batch whose stated attributes fit an image counts as a
     positive for it (captions often leave attributes out, and a batch holds many equal ones);
     auxiliary heads (training only) read the attributes off both embeddings, and per-patch heads
     read "is this patch on the shape, and which shape" off the vision tower's patch tokens: with
     them, precision@5 after 600 steps was 0.62 instead of 0.41;
  4. save model, tokenizer and image processor in the standard Hugging Face layout.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import shutil
import tempfile
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# transformers' own byte table (the one CLIP's tokenizer uses) and the CLIP normalisation constants.
from transformers.convert_slow_tokenizer import bytes_to_unicode
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from demo import synth
from demo.metrics import precision_at_k, relevant_ids

MODEL_DIR = Path(__file__).resolve().parent / "model"  # the bundled model
IMAGE_SIZE = 64
PATCH_SIZE = 8
MAX_TEXT = 77
BOS, EOS = "<|startoftext|>", "<|endoftext|>"

# Common English words, so that ordinary queries tokenise into whole words or sensible pieces.
ENGLISH = """
a about above across after again against all almost alone along also always am among an and
animal another any anything apple are area arm around art as at away baby back background bad bag
ball banana band bank bar base be beach bear beautiful because bed been before behind being bell
below best better between bicycle big bike bird black blank block blue board boat body book boot
both bottle bottom bowl box boy branch bread bridge bright brown building bus but butterfly by cake
call camera can car card care carpet castle cat center centre chair change child children church
circle city clean clear clock close cloud coat coffee cold color colour come computer cook corner
could country cow cross cup cut dark day dead deep desk did different do does dog door down dress
drink drive dry duck each ear early earth east eat edge egg empty end evening every eye face fall
family far farm fast father field fire first fish five flag flat floor flower fly food foot for
forest fork four free friend from front fruit full game garden gate girl glass go gold good grass
gray great green grey ground group hair half hand happy hard has hat have he head heart heavy help
her here high hill him his hold hole home horse hot house how ice if image in inside into is island
it its jacket just key kid kind king kitchen knife lake lamp land large last late leaf left leg
letter light like line lion little long look low made make man many map me middle milk mirror
moon more morning most mother mountain mouse mouth much music my name near neck new next night no
north nose not nothing now number object ocean of off office old on one open orange other our out
outside over page pair paper park part party pen people person phone photo picture piece pink
place plane plant plate play please point pool poor purple put queen rain red right ring river
road rock roof room round row run sad same sand say school sea seat see shape sheep shelf ship
shirt shoe shop short show side sign silver simple sit six sky sleep small snow so sofa some
something sound south space square stand star station stone stop street strong summer sun sunset
table tail tall tea tree three through tiger time tiny to together top towel tower town toy train
tree triangle truck two under up us very view wall warm watch water wave way we weather west wet
what wheel when where white who wide wind window winter with woman wood word world yellow young
your zebra zero dot disc box plus donut hoop outline figure symbol icon form thing scarlet coloured
colored textured patterned striped noisy grainy speckled mottled gradient smooth shaded solid busy
plain flat huge big little tiny small large rendering drawing illustration close-up picture photo
there that this these those which while without within beside near far cat kitten puppy portrait
landscape city street night beach snow forest mountain river lake car truck bicycle flower garden
food pizza burger salad sandwich cake coffee wine beer bottle glass cup plate table chair sofa bed
laptop phone keyboard screen television book painting statue building bridge tower church castle
airplane boat ship train bus horse cow sheep dog bird fish elephant giraffe bear monkey rabbit
people man woman child baby face smile group crowd team player sport football soccer tennis
basketball baseball golf running walking swimming dancing sitting standing eating drinking reading
cyan magenta pink brown grey gray gold silver beige navy teal violet indigo turquoise maroon
oval rectangle hexagon pentagon diamond heart arrow line curve spiral wave pattern stripe spot
"""


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------
def learn_merges(word_freq: Counter, num_merges: int) -> list[tuple[str, str]]:
    """Plain BPE over byte-encoded words ending in `</w>`; ties broken by the pair itself."""
    b2u = bytes_to_unicode()
    words = {}
    for w, f in word_freq.items():
        syms = [b2u[b] for b in w.encode("utf-8")]
        syms[-1] += "</w>"
        words[tuple(syms)] = words.get(tuple(syms), 0) + f
    merges = []
    for _ in range(num_merges):
        pairs: Counter = Counter()
        for syms, f in words.items():
            for a, b in pairwise(syms):
                pairs[(a, b)] += f
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        joined = best[0] + best[1]
        new_words = {}
        for syms, f in words.items():
            out, i = [], 0
            while i < len(syms):
                if i < len(syms) - 1 and syms[i] == best[0] and syms[i + 1] == best[1]:
                    out.append(joined)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + f
        words = new_words
    return merges


def build_tokenizer(out_dir: Path, seed: int, num_merges: int):
    import re

    from transformers import CLIPTokenizer

    rng = np.random.default_rng([seed, 1])
    pat = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+")
    freq: Counter = Counter()
    colours, shapes, sizes = list(synth.COLOURS), synth.SHAPES, synth.SIZES
    for _ in range(20000):
        cap = synth.caption_with_attributes(
            rng, colours[rng.integers(8)], shapes[rng.integers(6)], sizes[rng.integers(2)],
            synth.BACKGROUNDS[rng.integers(4)],
        )[0]
        freq.update(pat.findall(cap.lower()))
    for w in ENGLISH.split():
        freq.update(pat.findall(w.lower()))
        freq[w.lower()] += 2 if "-" not in w else 0
    merges = learn_merges(freq, num_merges)

    b2u = bytes_to_unicode()
    base = list(b2u.values())
    vocab_list = base + [v + "</w>" for v in base] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    assert len(vocab) == len(vocab_list), "duplicate vocabulary entries"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
    )
    tok = CLIPTokenizer(
        vocab=vocab, merges=merges, model_max_length=MAX_TEXT,
    )
    # Every word the demo must know is one token.
    for w in colours + list(shapes) + list(sizes):
        ids = tok(w, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, (w, tok.convert_ids_to_tokens(ids))
    return tok


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def make_image_processor():
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        do_resize=True, size={"shortest_edge": IMAGE_SIZE}, resample=3,
        do_center_crop=True, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD, do_convert_rgb=True,
    )


def _to_model_input(img: Image.Image) -> np.ndarray:
    """What CLIPImageProcessor (PIL backend) does before rescaling, kept as uint8 HxWx3.

    Checked against the processor in main(): bicubic resize of the shortest edge to 64 and a
    centre crop (the drawn images are square, so the crop is a no-op).
    """
    w, h = img.size
    s = IMAGE_SIZE / min(w, h)
    img = img.convert("RGB").resize((max(IMAGE_SIZE, round(w * s)), max(IMAGE_SIZE, round(h * s))), Image.BICUBIC)
    w, h = img.size
    left, top = (w - IMAGE_SIZE) // 2, (h - IMAGE_SIZE) // 2
    return np.asarray(img.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE)), dtype=np.uint8)


DRAW_SIZES = (96, 128, 160, 192, 224, 224, 256, 320)


def _draw_chunk(args):
    seed, chunk, count = args
    rng = np.random.default_rng([seed, 2, chunk])
    imgs = np.empty((count, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    attrs = np.empty((count, 4), dtype=np.int64)  # colour, shape, size, background kind
    g = IMAGE_SIZE // PATCH_SIZE
    masks = np.empty((count, g, g), dtype=np.uint8)  # shape coverage per patch, 0..255
    colours = list(synth.COLOURS)
    for i in range(count):
        c, s, z = int(rng.integers(8)), int(rng.integers(6)), int(rng.integers(2))
        n = int(DRAW_SIZES[rng.integers(len(DRAW_SIZES))])
        img, kind, mask = synth.draw_scene(rng, colours[c], synth.SHAPES[s], synth.SIZES[z], n, with_mask=True)
        imgs[i] = _to_model_input(img)
        attrs[i] = (c, s, z, synth.BACKGROUNDS.index(kind))
        masks[i] = np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).resize((g, g), Image.BOX))
    return imgs, attrs, masks


def make_dataset(n: int, seed: int, workers: int):
    chunk = 500
    jobs = [(seed, k, min(chunk, n - k * chunk)) for k in range((n + chunk - 1) // chunk)]
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_draw_chunk, jobs, chunksize=1)
    else:
        parts = [_draw_chunk(j) for j in jobs]
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------
def make_model(vocab_size: int, bos_id: int, eos_id: int):
    from transformers import CLIPConfig, CLIPModel

    text = dict(
        vocab_size=vocab_size, hidden_size=128, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=MAX_TEXT, hidden_act="quick_gelu",
        bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=eos_id, projection_dim=128,
    )
    vision = dict(
        hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, num_channels=3, hidden_act="quick_gelu",
        projection_dim=128,
    )
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=128, logit_scale_init_value=2.6592)
    config.name_or_path = "clipsearch-demo-clip"
    return CLIPModel(config)


def caption_batch(rng, attrs_np):
    """Fresh captions for a batch and the attributes each states (-1 = not stated)."""
    colours = list(synth.COLOURS)
    caps, stated = [], np.full((len(attrs_np), 3), -1, dtype=np.int64)
    for i, (c, s, z, k) in enumerate(attrs_np):
        cap, st = synth.caption_with_attributes(
            rng, colours[c], synth.SHAPES[s], synth.SIZES[z], synth.BACKGROUNDS[k]
        )
        caps.append(cap)
        if st["colour"] is not None:
            stated[i, 0] = c
        if st["shape"] is not None:
            stated[i, 1] = s
        if st["size"] is not None:
            stated[i, 2] = z
    return caps, stated


def augment_with_mask(x: torch.Tensor, m: torch.Tensor, g: torch.Generator):
    """The same flips and quarter turns on images (B,3,H,W) and their patch masks (B,g,g)."""
    b = x.shape[0]
    flip = torch.rand(b, generator=g) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    m = torch.where(flip[:, None, None], m.flip(-1), m)
    turn = torch.rand(b, generator=g) < 0.5
    x = torch.where(turn[:, None, None, None], x.transpose(-1, -2), x)
    m = torch.where(turn[:, None, None], m.transpose(-1, -2), m)
    return x, m


@torch.no_grad()
def evaluate(model, tok, proc, seed: int, n: int = 480) -> dict[str, float]:
    gal = synth.gallery(n, seed)
    pix = proc(images=[im for im, _ in gal], return_tensors="pt")["pixel_values"]
    metas = [meta for _, meta in gal]
    img = F.normalize(_features(model.get_image_features(pixel_values=pix)), dim=-1)
    res = {}
    for kind, keys in (("colour x shape", ("colour", "shape")), ("size x shape", ("size", "shape"))):
        queries = (
            [(c, s) for c in synth.COLOURS for s in synth.SHAPES]
            if kind == "colour x shape" else [(z, s) for z in synth.SIZES for s in synth.SHAPES]
        )
        t = tok([f"a {a} {b}" for a, b in queries], padding=True, return_tensors="pt")
        txt = F.normalize(_features(model.get_text_features(**t)), dim=-1)
        top = (txt @ img.T).topk(5, dim=1).indices.tolist()
        relevant = [relevant_ids(metas, **dict(zip(keys, q, strict=True))) for q in queries]
        res[kind] = precision_at_k(top, relevant, 5)
    return res


def _features(out):
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def main(argv=None):
    global IMAGE_SIZE, PATCH_SIZE  # set from the arguments; read by the (forked) drawing workers
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=MODEL_DIR)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--images", type=int, default=24000, help="size of the drawn training set")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (the bundled model used 1; another count changes the float sums)")
    ap.add_argument("--aux", type=float, default=1.0, help="weight of the auxiliary attribute heads")
    ap.add_argument("--dense", type=float, default=0.5,
                    help="weight of the per-patch auxiliary loss (shape coverage and shape class)")
    ap.add_argument("--eval-every", type=int, default=0, help="print precision@5 every N steps")
    ap.add_argument("--image-size", type=int, default=IMAGE_SIZE)
    ap.add_argument("--patch-size", type=int, default=PATCH_SIZE)
    ap.add_argument("--merges", type=int, default=1800)
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=False,
                    help="bf16 autocast (slower on most CPUs; off by default)")
    args = ap.parse_args(argv)
    IMAGE_SIZE, PATCH_SIZE = args.image_size, args.patch_size
    if IMAGE_SIZE % PATCH_SIZE:
        ap.error("--image-size must be a multiple of --patch-size")
    t0 = time.time()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)

    tmp = Path(tempfile.mkdtemp(prefix="demo_clip_"))
    try:
        tok = build_tokenizer(tmp / "tok", args.seed, args.merges)
        print(f"tokenizer: {len(tok)} tokens ({time.time() - t0:.0f}s)", flush=True)
        proc = make_image_processor()

        imgs, attrs, masks = make_dataset(args.images, args.seed, args.threads)
        # The fast path must equal the real processor.
        probe = synth.draw_shape_image(np.random.default_rng(0), "red", "star", "small", 200)
        ref = proc(images=[probe], return_tensors="np")["pixel_values"][0]
        mine = (_to_model_input(probe).astype(np.float32) / 255 - OPENAI_CLIP_MEAN) / OPENAI_CLIP_STD
        assert np.abs(mine.transpose(2, 0, 1) - ref).max() < 1e-4, "image pipeline differs from CLIPImageProcessor"
        print(f"dataset: {len(imgs)} images ({time.time() - t0:.0f}s)", flush=True)

        mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
        data = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()  # uint8 N,3,H,W
        attrs_t = torch.from_numpy(attrs)
        masks_t = torch.from_numpy(masks)  # uint8 N,g,g: shape coverage per patch

        model = make_model(len(tok), tok.bos_token_id, tok.eos_token_id)
        nparams = sum(p.numel() for p in model.parameters())
        print(f"model: {nparams / 1e6:.2f}M parameters", flush=True)
        # Auxiliary linear heads (training only, not saved): they read the attributes off the
        # projected image embedding, and the stated attributes (or "not stated") off the text
        # embedding. They speed up learning a lot at this tiny scale.
        dim = model.config.projection_dim
        heads = torch.nn.ModuleList([torch.nn.Linear(dim, k) for k in (8, 6, 2, 9, 7, 3)])
        # Per-patch heads on the vision tower's last hidden states: is this patch covered by the
        # shape, and which shape is it. A dense signal on every patch teaches the tiny ViT
        # where the shape is and what its outline looks like far sooner than the pooled loss alone.
        vdim = model.config.vision_config.hidden_size
        heads.append(torch.nn.Linear(vdim, 1 + len(synth.SHAPES)))
        params = list(model.named_parameters()) + [("heads." + n, p) for n, p in heads.named_parameters()]
        decay = [p for n, p in params if p.ndim >= 2 and "embedding" not in n]
        no_decay = [p for n, p in params if not (p.ndim >= 2 and "embedding" not in n)]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
            lr=args.lr, betas=(0.9, 0.98), eps=1e-6,
        )
        warm = max(1, args.steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))
        )
        g = torch.Generator().manual_seed(args.seed)
        cap_rng = np.random.default_rng([args.seed, 3])
        model.train()
        t_train = time.time()
        for step in range(args.steps):
            idx = torch.randint(len(data), (args.batch,), generator=g)
            x, m = augment_with_mask(
                data[idx].float().div_(255).sub_(mean).div_(std), masks_t[idx].float().div_(255), g
            )
            a = attrs_t[idx]
            caps, stated = caption_batch(cap_rng, a.numpy())
            t = tok(caps, padding=True, truncation=True, max_length=MAX_TEXT, return_tensors="pt")
            st = torch.from_numpy(stated)
            # match[i, j]: caption j states nothing that contradicts image i.
            match = ((st[None, :, :] < 0) | (st[None, :, :] == a[:, None, :3])).all(-1).float()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                vis = model.vision_model(pixel_values=x)
                img_f = model.visual_projection(vis.pooler_output)
                txt_f = _features(model.get_text_features(input_ids=t["input_ids"], attention_mask=t["attention_mask"]))
            img_f_raw, txt_f_raw = img_f.float(), txt_f.float()
            img_f = F.normalize(img_f_raw, dim=-1)
            txt_f = F.normalize(txt_f_raw, dim=-1)
            logits = model.logit_scale.exp().clamp(max=100) * img_f @ txt_f.T
            loss_i = -(F.log_softmax(logits, 1) * (match / match.sum(1, keepdim=True))).sum(1).mean()
            loss_t = -(F.log_softmax(logits, 0) * (match / match.sum(0, keepdim=True))).sum(0).mean()
            aux = sum(F.cross_entropy(heads[k](img_f_raw), a[:, k]) for k in range(3))
            aux = aux + sum(F.cross_entropy(heads[3 + k](txt_f_raw), st[:, k] + 1) for k in range(3))
            loss = (loss_i + loss_t) / 2 + args.aux * aux / 6
            if args.dense > 0:
                tok_out = heads[6](vis.last_hidden_state[:, 1:].float())  # B, g*g, 1+shapes
                cov = m.flatten(1)
                dense = F.binary_cross_entropy_with_logits(tok_out[..., 0], cov)
                w = (cov > 0.25).float()
                ce = F.cross_entropy(
                    tok_out[..., 1:].flatten(0, 1), a[:, 1].repeat_interleave(cov.shape[1]), reduction="none"
                )
                dense = dense + (ce * w.flatten()).sum() / w.sum().clamp(min=1)
                loss = loss + args.dense * dense
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
            opt.step()
            sched.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            if args.eval_every and (step + 1) % args.eval_every == 0:
                model.eval()
                res = evaluate(model, tok, proc, seed=args.seed + 999)
                model.train()
                print(f"eval step {step + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in res.items()), flush=True)
            if step % 50 == 0 or step == args.steps - 1:
                el = time.time() - t_train
                print(
                    f"step {step + 1}/{args.steps} loss {loss.item():.3f} aux {aux.item() / 6:.3f} "
                    f"scale {model.logit_scale.exp().item():.1f} "
                    f"lr {sched.get_last_lr()[0]:.2e} {el:.0f}s ({el / (step + 1):.2f}s/step)",
                    flush=True,
                )
        model.eval()

        args.out.mkdir(parents=True, exist_ok=True)
        for old in ("pytorch_model.bin", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                    "special_tokens_map.json", "vocab.json", "merges.txt", "preprocessor_config.json",
                    "config.json", "processor_config.json"):
            (args.out / old).unlink(missing_ok=True)
        model.save_pretrained(args.out, safe_serialization=True)
        tok.save_pretrained(args.out)
        for f in ("vocab.json", "merges.txt"):  # the plain BPE files as well, byte for byte
            shutil.copy(tmp / "tok" / f, args.out / f)
        proc.save_pretrained(args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # Reload exactly the way openai/clip-vit-base-patch32 is loaded, and check it.
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel, CLIPTokenizer, CLIPTokenizerFast

    m2 = CLIPModel.from_pretrained(args.out).eval()
    t_fast = CLIPTokenizerFast.from_pretrained(args.out)
    t_slow = CLIPTokenizer.from_pretrained(args.out)
    t_auto = AutoTokenizer.from_pretrained(args.out)
    p2 = CLIPImageProcessor.from_pretrained(args.out)
    probes = ["a red circle", "A photo of a LARGE blue star!", "a small ring on a textured background",
              "un cercle rouge, très joli", "猫の写真 🐱", "x" * 10000]
    for s in probes:
        ids = t_fast(s, truncation=True)["input_ids"]
        assert ids == t_slow(s, truncation=True)["input_ids"] == t_auto(s, truncation=True)["input_ids"], s
        assert ids[0] == t_fast.bos_token_id and ids[-1] == t_fast.eos_token_id and len(ids) <= MAX_TEXT, s
    res = evaluate(m2, t_fast, p2, seed=args.seed + 999)
    size = sum(f.stat().st_size for f in args.out.iterdir() if f.is_file())
    print(f"saved {args.out} ({size / 1e6:.2f} MB); precision@5 on a fresh synth gallery: "
          + ", ".join(f"{k} {v:.3f}" for k, v in res.items()))
    print(f"total time {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
