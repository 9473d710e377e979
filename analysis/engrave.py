"""Engrave one score as SVG with verovio: python analysis/engrave.py SCORE OUT.svg

Run as a process of its own (analysis.media does): verovio crashes the whole process (a segfault, no
exception) on some inputs, and a model's samples are the kind of input that finds such cases.
The page is tall enough for any sample (a tune of 18,000 tokens fits), so OUT.svg is the whole score.
"""

import sys

import verovio

OPTIONS = {"pageWidth": 2100, "pageHeight": 60000, "adjustPageHeight": True, "scale": 40,
           "header": "none", "footer": "none"}


def main(source, target):
    verovio.enableLog(verovio.LOG_OFF)
    toolkit = verovio.toolkit()
    toolkit.setOptions(OPTIONS)
    if not toolkit.loadFile(source) or toolkit.getPageCount() < 1:
        print(f"verovio could not read {source}", file=sys.stderr)
        return 1
    with open(target, "w", encoding="utf-8") as out:
        out.write(toolkit.renderToSVG(1))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
