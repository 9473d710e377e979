"""report.html from a small real fixture (three samples judged by analysis.samples, a figure, report.md's
sample section), opened from disk in a real headless Chromium: every image and score is drawn, every audio
element has a duration. FluidSynth, a soundfont and Chromium come from Debian's packages (.ci/run)."""

import json
import os
import re
import shutil
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from analysis.media import (HOW_TO_GET_AUDIO, SOUNDFONT_ENV, find_soundfont, find_synth, render_audio,  # noqa: E402
                            sample_media)
from preprocessing.abc_tools import abc_to_midi  # noqa: E402
from analysis.page import write_page  # noqa: E402
from analysis.report import samples_section  # noqa: E402
from analysis.samples import sample_quality, shown_samples  # noqa: E402

SAMPLES = {
    "t0.9_00.abc": "X:1\nM:6/8\nL:1/8\nQ:1/4=120\nK:D\nV:1\n|:A|dfa afd|gbg fdf|ecA efg|fdd d2:|\n"
                   "|:g|fdf afd|gbg fdB|ABA AFA|BGE E2:|\n",
    "t0.9_01.abc": "X:1\nM:4/4\nL:1/8\nQ:1/4=100\nK:G\nV:1\nGABc d2B2|c2A2 B2G2|A2F2 G4|\n"
                   "V:2\nG,4 D,4|E,4 G,4|D,4 G,4|\n",
    "t1.2_00.abc": "K:\n|]]]] ((( not a tune\n",  # a sample no reader makes sense of
}
BROWSER = "chromium"
# A demo model's sample of runaway ties: abc2midi's MIDI of it held notes that never end, and FluidSynth rendered
# it for over five minutes.
RUNAWAY_TIES = ("X:1\nM:2/2\nL:1/8\nQ:1/4=120\nK:A\nV:1\n"
    "d-d-g-g-g-g-f-f-f-f-f-e-e-e-e-d-d-d-d-d-g-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-e-d-d-d-f-"
    "f-f-f-f-f-f-f-f-ed-d-d-d-f-e-B-A-A-A-A-c-A-A-A-d-d-d-d-d-d-d-d-d-d-c-c-c-B-E-A-A-A-A-A-A-A/2-G-G-G-G"
    "-G-G-G-G-G-G-G-G-G-G-G-G-G-G-G-G-]/2[a-g-g-g-g-g-g-g-g-f-f-e-e-e-d-d-d-e-e-d-d-d-d-d-d-d/2-d-d-d-d-d"
    "-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d- eg-d(3ea-g-g-g-g-d-d-de-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-d-c-c-"
    "B-B-B-B-B-F-A-A-A-A-A-A-A-A-A-A-G-A-A-B-A-A-A-A-A-A-A-A-A-A-A-A-A-A-A-A-A-A-B-A-B-A-A-A-A-A-A-A-A-A-"
    "G-A-A-A-A-A-A-A-A-G\n")


def require(program, why):
    """Skip without the program on a developer's machine; CI installs it, so there its absence fails."""
    if shutil.which(program) is None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"{program} not found: {why}")


def build_page(out, samples):
    """What analyze() writes, on the fixture: sample quality, report.md (its samples section and a figure),
    each sample's score and sound, then the page."""
    table, summary = sample_quality(samples, out / "samples")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2, 3], [3, 2, 1.5])
    fig.savefig(out / "scaling_gpt.png")
    plt.close(fig)
    lines = ["# Scaling analysis: fixture", "", "## Figures", "", "![scaling_gpt](scaling_gpt.png)", "",
             "## Sample quality", "", *samples_section(table, summary)]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return write_page(out, sample_media(shown_samples(table, samples), out / "samples"))


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    folder = tmp_path_factory.mktemp("best") / "samples"
    folder.mkdir()
    for name, text in SAMPLES.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def page(samples, tmp_path_factory):
    require("fluidsynth", "apt install fluidsynth")
    if find_soundfont()[0] is None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)("no soundfont: " + HOW_TO_GET_AUDIO)
    return build_page(tmp_path_factory.mktemp("analysis"), samples)


def test_the_page_holds_everything_and_reaches_nothing_outside(page):
    text = page.read_text()
    assert "<table>" in text and "Scaling analysis: fixture" in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(source.startswith("data:") for source in sources)
    assert "<script" not in text and "<link" not in text and "http" not in text.replace("http://www.w3.org", "")
    assert text.count('<img class="score"') == 2 and text.count("<audio") == 2  # the two readable samples
    assert "No score: music21 cannot read it." in text and "No sound: abc2midi rendered no MIDI." in text
    assert (page.parent / "samples" / "t0.9_01.svg").stat().st_size > 0
    assert (page.parent / "samples" / "t0.9_01.ogg").read_bytes()[:4] == b"OggS"


def test_without_a_soundfont_the_page_says_how_to_get_one(samples, tmp_path, monkeypatch):
    monkeypatch.setenv(SOUNDFONT_ENV, str(tmp_path / "missing.sf2"))
    text = build_page(tmp_path, samples).read_text()
    assert f"No sound: {SOUNDFONT_ENV}={tmp_path / 'missing.sf2'} is not a file" in text
    assert "apt install musescore-general-soundfont-small" in text and "<audio" not in text
    assert text.count('<img class="score"') == 2


PROBE = """<script>
// Once every audio element has its metadata (or failed, or 10 s passed), write what the browser drew and
// can play.
window.addEventListener("load", async () => {
  const audios = [...document.querySelectorAll("audio")];
  const loaded = Promise.all(audios.map(a => a.readyState >= 1 || a.error ? null :
    new Promise(done => { a.onloadedmetadata = done; a.onerror = done; })));
  await Promise.race([loaded, new Promise(done => setTimeout(done, 10000))]);
  const images = [...document.querySelectorAll("img")].map(i => {
    const box = i.getBoundingClientRect();
    return {alt: i.alt, natural: i.naturalWidth, width: box.width, height: box.height};
  });
  const sounds = audios.map(a => ({duration: a.duration, error: a.error && a.error.code}));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images, sounds});
  document.body.append(out);
});
</script>"""


def chromium(*args, timeout=60):
    command = [BROWSER, "--headless=new", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
               "--hide-scrollbars", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def test_a_real_browser_shows_every_figure_and_score_and_can_play_every_sample(page, tmp_path):
    require(BROWSER, "apt install chromium")
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    done = chromium("--virtual-time-budget=20000", "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-2000:]
    result = json.loads(found.group(1).replace("&quot;", '"'))
    images = result["images"]
    assert len(images) == 1 + 2 + 2  # the figure, two piano rolls, two scores
    assert all(i["natural"] > 0 and i["width"] > 100 and i["height"] > 50 for i in images), images
    assert len(result["sounds"]) == 2
    assert all(s["error"] is None and s["duration"] > 1 for s in result["sounds"]), result["sounds"]

    shot = tmp_path / "page.png"
    chromium(f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri())
    image = matplotlib.image.imread(shot)
    assert image.shape[:2] == (2400, 1280) and image[..., :3].std() > 0.05, "blank screenshot"


def test_a_sample_whose_ties_never_end_is_heard_in_seconds(tmp_path):
    require("fluidsynth", "the sound of each sample")
    synth, missing = find_synth()
    assert synth, missing
    assert abc_to_midi(RUNAWAY_TIES, tmp_path / "ties.mid")[0]
    assert render_audio(tmp_path / "ties.mid", tmp_path / "ties.ogg", synth, timeout=60) == (True, None)
    assert (tmp_path / "ties.ogg").stat().st_size > 1000
