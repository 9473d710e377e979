"""report.html: report.md as one self-contained page (every image inlined as a data: URI, no script, no
link outside it), followed by each sample's score and sound."""

import base64
import html
import re

import markdown

MEDIA_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".ogg": "audio/ogg"}
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
table { border-collapse: collapse; display: block; overflow-x: auto; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; }
img { max-width: 100%; }
td img { max-width: 400px; }
.sample { border-top: 1px solid #ccc; margin-top: 1.5em; }
.score { background: white; width: 100%; }
audio { width: 100%; }
.note { color: #a33; }
"""


def data_uri(path):
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:{MEDIA_TYPES[path.suffix]};base64,{encoded}"


def inline_images(body, folder):
    """Every <img src="file"> of body that names a file in folder, with the file as a data: URI instead."""
    def replace(match):
        path = folder / html.unescape(match.group(1))
        return f'src="{data_uri(path)}"' if path.suffix in MEDIA_TYPES and path.is_file() else match.group(0)

    return re.sub(r'src="([^":]+)"', replace, body)


def sample_block(record):
    name = html.escape(record["sample"])
    parts = [f'<section class="sample"><h3>{name}</h3>']
    if record["score"]:
        parts.append(f'<img class="score" alt="score of {name}" src="{data_uri(record["score"])}">')
    else:
        parts.append(f'<p class="note">No score: {html.escape(record["score_note"])}.</p>')
    if record["audio"]:
        parts.append(f'<audio controls preload="metadata" src="{data_uri(record["audio"])}"></audio>')
    else:
        parts.append(f'<p class="note">No sound: {html.escape(record["audio_note"])}.</p>')
    parts.append(f"<details><summary>ABC</summary><pre>{html.escape(record['abc'])}</pre></details></section>")
    return "\n".join(parts)


def samples_part(media):
    records, audio_help = media
    if not records:
        return ""
    lines = ["<h2>Samples: scores and sound</h2>"]
    if audio_help:
        lines.append(f'<p class="note">{html.escape(audio_help)}</p>')
    return "\n".join(lines + [sample_block(record) for record in records])


def write_page(out, media=([], None)):
    """out/report.html from out/report.md and the images beside it; media: analysis.media.sample_media's."""
    text = (out / "report.md").read_text()
    title = html.escape(text.splitlines()[0].lstrip("# "))
    body = inline_images(markdown.markdown(text, extensions=["tables"]), out)
    page = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n{samples_part(media)}\n</body></html>\n")
    path = out / "report.html"
    path.write_text(page)
    return path
