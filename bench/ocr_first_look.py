"""OCR's first look: how often it finds the text that is there (recall), how often it sends a picture
without text to the full read anyway, and what each costs, beside reading every picture in full (the
naive way, and ours before the first look).

Pictures (generated, JPEG q90, every one different): signs (a few big words on a coloured board),
receipts (15 lines of 18-22 px text on a narrow white slip), labels (a white tag with one line on a
photo-like background), screenshots (1280x800, window bars and 14-16 px text), and 12 MP photo-like
pictures with one line of 48-64 px letters in a corner; without text: 12 MP and 0.3 MP photo-like
pictures (bench/ingest.py's) and the demo model's drawings.

first look: `ocr.look_copy` and `ocr.look_at_many` on the picture decoded as for CLIP (what a worker's
encode batch does; its time here includes that decode, which the worker shares with CLIP);
"read" counts a text picture whose words the whole path (`ocr.read_image`'s decode, look, read) reads.

    .venv/bin/python bench/ocr_first_look.py [--per-kind 24]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

FONTS = ["dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf", "dejavu/DejaVuSerif.ttf",
         "liberation/LiberationSans-Regular.ttf", "liberation/LiberationMono-Regular.ttf"]
WORDS = ("harbour museum platform ticket exit garden bakery pharmacy station market bridge hotel coffee parking "
         "library bicycle tomato invoice total street avenue theatre gallery closed welcome").split()


def font(rnd, size):
    from PIL import ImageFont

    return ImageFont.truetype(f"/usr/share/fonts/truetype/{rnd.choice(FONTS)}", size)


def phrase(rnd, n=2) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(n)).title()


def text_picture(kind: str, seed: int):
    """(PIL image, a word that is written on it)."""
    import ingest as ingest_bench
    from PIL import Image, ImageDraw

    rnd = random.Random(seed)
    ink = tuple(rnd.randint(0, 60) for _ in range(3))
    if kind == "sign":
        im = Image.new("RGB", (640, 480), tuple(rnd.randint(120, 255) for _ in range(3)))
        words = phrase(rnd)
        ImageDraw.Draw(im).text((rnd.randint(20, 80), rnd.randint(60, 300)), words, fill=ink, font=font(rnd, rnd.randint(40, 64)))
    elif kind == "receipt":
        im = Image.new("RGB", (600, 1100), (250, 250, 246))
        draw, words = ImageDraw.Draw(im), phrase(rnd, 1).upper()
        for line in range(15):
            text = words if line == 0 else f"{phrase(rnd, 1)} {rnd.randint(1, 99)}.{rnd.randint(0, 99):02d}"
            draw.text((30, 30 + line * 60), text, fill=ink, font=font(rnd, rnd.randint(18, 22)))
    elif kind == "screenshot":
        im = Image.new("RGB", (1280, 800), (245, 245, 245))
        draw, words = ImageDraw.Draw(im), phrase(rnd)
        draw.rectangle((0, 0, 1280, 40), fill=(60, 60, 70))
        draw.rectangle((0, 40, 220, 800), fill=(225, 228, 232))
        for line in range(12):
            text = words if line == 3 else phrase(rnd, 4)
            draw.text((250, 70 + line * 50), text, fill=ink, font=font(rnd, rnd.randint(14, 16)))
    else:  # "label" (0.3 MP) and "12 MP corner": text on a photo-like background
        big = kind == "12 MP corner"
        path = common.BENCH_DIR / "first-look" / f"{kind}-{seed}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        ingest_bench.make_image(path, (4000, 3000) if big else (640, 480), seed)
        im = Image.open(path).convert("RGB")
        draw, words = ImageDraw.Draw(im), phrase(rnd)
        size = rnd.randint(48, 64) if big else rnd.randint(24, 32)
        f = font(rnd, size)
        w = int(draw.textlength(words, font=f))
        if big:  # a corner of the photo
            x, y = rnd.choice([80, 4000 - w - 80]), rnd.choice([80, 3000 - size - 120])
        else:
            x, y = rnd.randint(20, 200), rnd.randint(40, 380)
        draw.rectangle((x - 12, y - 10, x + w + 12, y + size + 16), fill=(250, 250, 250))
        draw.text((x, y), words, fill=ink, font=f)
    return im, words.split()[0].lower()


def no_text_pictures(per_kind: int):
    import ingest as ingest_bench
    from PIL import Image

    from demo.synth import gallery

    out = {label: [Image.open(p).convert("RGB") for p in ingest_bench.ensure_images(label, per_kind)]
           for label in ("12MP", "0.3MP")}
    out["drawing"] = [img for img, _ in gallery(per_kind, seed=11)]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-kind", type=int, default=24)
    ap.add_argument("--look-side", type=int, default=None, help="the look copy's longest side (default: the app's)")
    args = ap.parse_args(argv)
    common.setup_django()
    from embeddings.clip.device import cpu_kind
    from embeddings.files import image_policy
    from embeddings.pipeline import ocr
    from tests.support import jpeg_bytes

    ocr.FIRST_LOOK_SIDE = args.look_side or ocr.FIRST_LOOK_SIDE

    def look(data: bytes) -> tuple[bool, float]:
        """The look a worker takes in its encode batch: on the picture decoded as for CLIP (ViT-B/32's 224 px
        draft), the decode included (the pipeline shares it with CLIP, so this overstates the look's cost)."""
        t = time.perf_counter()
        found = ocr.look_at_many({0: ocr.look_copy(image_policy.decode(data, draft_target=224))})[0]
        return bool(found), time.perf_counter() - t

    def full(data: bytes) -> tuple[str, float]:  # every picture read in full: the path before the first look
        t = time.perf_counter()
        text = ocr.read_text(image_policy.decode(data, draft_target=ocr.MAX_SIDE))
        return text, time.perf_counter() - t

    ocr.read_text(image_policy.decode(jpeg_bytes(text_picture("sign", 0)[0])))  # starts the reading process
    rows, out = [], {"cpu": cpu_kind(), "machine": common.machine_line(), "load": common.wait_for_quiet(),
                     "look_side": ocr.FIRST_LOOK_SIDE, "kinds": {}}
    def measure(data: bytes) -> tuple[bool, str, float, float]:
        """(the look found text, the full read's text, ours s: the look and the read where it found text, naive s)."""
        found, look_s = look(data)
        text, full_s = full(data)
        return found, text, look_s + (full_s if found else 0.0), full_s

    def row(kind: str, n: int, sent: int, read: int | None, ours: list, naive: list) -> None:
        out["kinds"][kind] = r = {"pictures": n, "sent_on": sent / n, "read": None if read is None else read / n,
                                  "ours_ms": 1000 * sum(ours) / n, "naive_ms": 1000 * sum(naive) / n}
        rows.append([kind, n, f"{r['sent_on']:.2f}", "–" if read is None else f"{r['read']:.2f}", r["ours_ms"], r["naive_ms"]])

    for kind in ("sign", "receipt", "label", "screenshot", "12 MP corner"):
        sent = read = 0
        ours, naive = [], []
        for seed in range(args.per_kind):
            im, word = text_picture(kind, 1000 + seed)
            found, text, o, n = measure(jpeg_bytes(im))
            sent, read = sent + found, read + (found and word in text.lower())
            ours.append(o)
            naive.append(n)
        row(kind, args.per_kind, sent, read, ours, naive)
    for kind, images in no_text_pictures(args.per_kind).items():
        got = [measure(jpeg_bytes(im)) for im in images]
        row(f"{kind} (no text)", len(images), sum(g[0] for g in got), None, [g[2] for g in got], [g[3] for g in got])
    out["load_after"] = common.loadavg()
    print("CPU:", cpu_kind(), "|", common.machine_line())
    print(common.table(["pictures", "n", "first look finds text", "its word read", "ours ms (look, + read where found)",
                        "every picture read in full ms"], rows))
    name = f"ocr_first_look-{common.kind_tag()}-{ocr.FIRST_LOOK_SIDE}.json"
    (common.RESULTS_DIR / name).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
