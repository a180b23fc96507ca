"""inspect_file end to end: a GAIA copy in today's layout (parquet, string Level, file_path) holding one
attachment of every GAIA type, each made here with its real library; agent code reads a known token out of
each through inspect_file inside the real sandbox, to full reward. Images and audio also go through a
real loopback OpenAI-compatible server (vision answers, transcripts, caching, outages)."""

from __future__ import annotations

import io
import json
import wave
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from openai_server import TRANSCRIPTIONS_PATH, FakeOpenAIServer, image_parts

import toolr1_env  # noqa: F401 - registers the env
from toolr1_env.readers import inspect_file
from toolr1_env.sandbox import SandboxConfig

LIGHT = SandboxConfig(preload=(), step_timeout=60.0)
SOLVE = "```py\nimport re\nfinal_answer(re.search(r'TOKEN-[A-Z0-9]+-[0-9]+', inspect_file({name!r})).group())\n```"


# ----------------------------------------------------------------------------- attachments, one per type


def _xlsx(path: Path, token: str) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Stock"
    sheet.append(["Item", "Code"])
    sheet.append(["widget", token])
    book.save(path)


def _xls(path: Path, token: str) -> None:
    xlwt = pytest.importorskip("xlwt")
    book = xlwt.Workbook()
    sheet = book.add_sheet("Legacy")
    for col, value in enumerate(["Item", "Code"]):
        sheet.write(0, col, value)
    sheet.write(1, 0, "gadget")
    sheet.write(1, 1, token)
    book.save(str(path))


def _pdf(path: Path, token: str) -> None:
    from reportlab.pdfgen import canvas

    page = canvas.Canvas(str(path))
    page.drawString(72, 720, f"Quarterly report. Reference {token}.")
    page.save()


def _docx(path: Path, token: str) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Minutes of the meeting.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Item", "Code"
    table.cell(1, 0).text, table.cell(1, 1).text = "motion", token
    document.save(path)


def _pptx(path: Path, token: str) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Results"
    table = slide.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    table.cell(0, 0).text, table.cell(0, 1).text = "Item", "Code"
    table.cell(1, 0).text, table.cell(1, 1).text = "slide", token
    second = deck.slides.add_slide(deck.slide_layouts[1])
    second.shapes.title.text = "Backup"
    second.notes_slide.notes_text_frame.text = "Speaker notes only."
    deck.save(path)


def _zip(path: Path, token: str) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("inner/data.csv", f"item,code\nboxed,{token}\n")
        archive.writestr("readme.txt", "Two files.")


def _png(path: Path, token: str) -> None:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", token)
    Image.new("RGB", (40, 30), (255, 0, 0)).save(path, pnginfo=info)


def _jpg(path: Path, token: str) -> None:
    from PIL import Image

    image = Image.new("RGB", (24, 16), (0, 0, 255))
    exif = image.getexif()
    exif[270] = token  # ImageDescription
    image.save(path, exif=exif)


def _pcm(seconds: float, rate: int = 8000) -> bytes:
    return b"\x00\x01" * int(seconds * rate)


def _wav(path: Path, token: str) -> None:
    from mutagen.id3 import TIT2
    from mutagen.wave import WAVE

    with wave.open(str(path), "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(2)
        recording.setframerate(8000)
        recording.writeframes(_pcm(0.75))
    tagged = WAVE(str(path))
    tagged.add_tags()
    tagged.tags.add(TIT2(encoding=3, text=token))
    tagged.save()


def _mp3(path: Path, token: str) -> None:
    lameenc = pytest.importorskip("lameenc")
    from mutagen.easyid3 import EasyID3

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(32)
    encoder.set_in_sample_rate(16000)
    encoder.set_channels(1)
    path.write_bytes(encoder.encode(_pcm(1.0, 16000)) + encoder.flush())
    tags = EasyID3()
    tags["title"] = token
    tags.save(str(path))


TEXT_FILES = {
    "txt": "Plain notes. Code {token}.",
    "md": "# Heading\n\nThe code is **{token}**.",
    "py": "def code():\n    return '{token}'\n",
    "csv": "item,code\nrow,{token}\n",
    "json": json.dumps({"items": [{"code": "{token}"}]}),
    "jsonld": json.dumps({"@context": "https://schema.org", "@type": "Thing", "identifier": "{token}"}),
    "xml": "<root><item code='{token}'>x</item></root>",
    "html": "<html><head><title>Report</title></head><body><article><h1>Report</h1><p>The long awaited "
            "annual code is {token}, as announced in the ceremony held last spring.</p></article></body></html>",
    "pdb": "HEADER    PROTEIN\nCOMPND    {token}\nATOM      1  N   MET A   1      27.340  24.430   2.614  1.00\nEND\n",
}
BINARY_FILES = {"xlsx": _xlsx, "xls": _xls, "pdf": _pdf, "docx": _docx, "pptx": _pptx, "zip": _zip,
                "png": _png, "jpg": _jpg, "wav": _wav, "mp3": _mp3}  # fmt: skip
KINDS = [*BINARY_FILES, *TEXT_FILES]


def token_for(kind: str) -> str:
    return f"TOKEN-{kind.upper()}-{100 + KINDS.index(kind)}"


def write_attachment(folder: Path, name: str, kind: str) -> Path:
    path = folder / name
    if kind in TEXT_FILES:
        path.write_text(TEXT_FILES[kind].replace("{token}", token_for(kind)))
    else:
        BINARY_FILES[kind](path, token_for(kind))
    return path


def write_gaia(root: Path, kinds: list[str]) -> Path:
    """A GAIA repository root in today's layout with one validation task per attachment kind."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    split = root / "2023" / "validation"
    split.mkdir(parents=True)
    rows = []
    for i, kind in enumerate(kinds):
        task_id = f"task-{kind}"
        name = f"{task_id}.{kind}"
        write_attachment(split, name, kind)
        rows.append({"task_id": task_id, "Question": f"What is the code in the attached {kind} file?",
                     "Level": str(1 + i % 3), "Final answer": token_for(kind), "file_name": name,
                     "file_path": f"2023/validation/{name}",
                     "Annotator Metadata": {"Steps": "Read the file.", "Number of steps": "1", "Tools": "a reader"}})
    pq.write_table(pa.Table.from_pylist(rows), split / "metadata.parquet")
    return root


@pytest.fixture(scope="module")
def gaia_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kinds = []
    for kind in KINDS:  # xls and mp3 need writers (xlwt, lameenc) that may be missing
        try:
            write_attachment(tmp_path_factory.mktemp("probe"), f"probe.{kind}", kind)
        except pytest.skip.Exception:
            continue
        kinds.append(kind)
    return write_gaia(tmp_path_factory.mktemp("GAIA"), kinds)


# ----------------------------------------------------------------------------- every type, in the sandbox


def test_every_attachment_type_reads_its_token_inside_the_sandbox(gaia_root: Path) -> None:
    env = gym.make("ToolR1-GAIA-v0", tasks=gaia_root, split="validation", sandbox=LIGHT, step_timeout=60)
    try:
        task_set = env.unwrapped.task_set
        assert {"xlsx", "pdf", "docx", "pptx", "zip", "png", "jpg", "wav", "pdb", "jsonld"} <= {
            t.task_id.split("-", 1)[1] for t in task_set.tasks}
        failures = []
        for task in task_set.tasks:
            env.reset(options={"task_id": task.task_id})
            name = Path(task.files[0]).name
            obs, reward, terminated, _, info = env.step(SOLVE.format(name=name))
            if not (terminated and reward == pytest.approx(1.2)):
                failures.append((name, obs[-600:], info.get("final_answer")))
        assert not failures, failures
    finally:
        env.close()


def test_readers_format_details(gaia_root: Path) -> None:
    folder = gaia_root / "2023" / "validation"
    pptx = inspect_file(str(folder / "task-pptx.pptx"))
    assert pptx.startswith("Slide 1\nResults") and "Item | Code" in pptx and "Notes: Speaker notes only." in pptx
    archive = inspect_file(str(folder / "task-zip.zip"))
    assert "Archive task-zip.zip: 2 files, unpacked into task-zip_extracted/" in archive
    assert "=== task-zip_extracted/inner/data.csv ===" in archive and "boxed," in archive
    assert (folder / "task-zip_extracted" / "readme.txt").read_text() == "Two files."
    member = inspect_file(str(folder / "task-zip.zip" / "inner" / "data.csv"))
    assert member == f"item,code\nboxed,{token_for('zip')}\n"
    with pytest.raises(FileNotFoundError, match="no member 'nope.txt'"):
        inspect_file(str(folder / "task-zip.zip" / "nope.txt"))
    png = inspect_file(str(folder / "task-png.png"), question="What colour is it?")
    assert "Size: 40 x 30 pixels" in png and "No vision model is configured" in png
    jpg = inspect_file(str(folder / "task-jpg.jpg"))
    assert "Format: JPEG" in jpg and f"EXIF ImageDescription: {token_for('jpg')}" in jpg
    wav = inspect_file(str(folder / "task-wav.wav"))
    assert "Duration: 0.75 seconds" in wav and "Sample rate: 8000 Hz" in wav and "No transcription" in wav
    html = inspect_file(str(folder / "task-html.html"))
    assert "<p>" not in html and "annual code is" in html
    assert json.loads(inspect_file(str(folder / "task-jsonld.jsonld")))["@type"] == "Thing"


def test_mp3_duration_and_tags(gaia_root: Path) -> None:
    path = gaia_root / "2023" / "validation" / "task-mp3.mp3"
    if not path.exists():
        pytest.skip("lameenc is not installed: no mp3 writer")
    text = inspect_file(str(path))
    assert "Duration: 1." in text and f"Tag title: {token_for('mp3')}" in text


def test_unreadable_types_and_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(ValueError, match="cannot read .doc files"):
        inspect_file(str(tmp_path / "old.doc"))
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match="not a text file"):
        inspect_file(str(tmp_path / "blob.bin"))
    (tmp_path / "broken.zip").write_bytes(b"PK not really")
    with pytest.raises(ValueError, match="not a valid zip archive"):
        inspect_file(str(tmp_path / "broken.zip"))
    with pytest.raises(TypeError, match="question must be a string"):
        inspect_file(str(tmp_path / "old.doc"), question=3)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- vision and transcription


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def _describe(body: dict[str, Any]) -> str:
    from PIL import Image

    images = image_parts(body)
    if not images:
        return "no image"
    mime, data = images[0]
    question = next(p["text"] for m in body["messages"] for p in m["content"] if p.get("type") == "text")
    with Image.open(io.BytesIO(data)) as image:
        return f"{mime} {image.width}x{image.height}, colour {image.getpixel((0, 0))}; asked: {question}"


@pytest.fixture
def media_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        server.responder = _describe
        server.transcriber = lambda data, fields: f"the speaker says TOKEN-SPOKEN-{len(data)} ({fields['model']})"
        yield server


def _media_env(gaia_root: Path, server: FakeOpenAIServer, cache_dir: Path, **kwargs: Any) -> gym.Env:
    endpoint = {"base_url": server.base_url, "api_key": "k", "cache_dir": str(cache_dir), "max_retries": 0,
                "timeout": 10.0}
    return gym.make("ToolR1-GAIA-v0", tasks=gaia_root / "2023", split="validation", sandbox=LIGHT,
                    vision={**endpoint, "model": "vision-test", "cache_dir": str(cache_dir / "v")},
                    transcription={**endpoint, "model": "whisper-test", "cache_dir": str(cache_dir / "t")}, **kwargs)


def test_image_question_and_audio_transcript_through_a_real_server(gaia_root: Path, media_server: FakeOpenAIServer,
                                                                   tmp_path: Path) -> None:
    env = _media_env(gaia_root, media_server, tmp_path)
    try:
        prompt, _ = env.reset(options={"task_id": "task-png"})
        assert "vision_answer" not in prompt and "transcribe_audio" not in prompt  # hidden host tools
        obs, *_ = env.step("print(inspect_file('task-png.png', question='What colour is the square?'))")
        assert "Size: 40 x 30 pixels" in obs
        assert "Vision model's answer: image/png 40x30, colour (255, 0, 0); asked: What colour is the square?" in obs
        (request,) = media_server.chat_requests
        assert request.body["model"] == "vision-test"
        obs, *_, info = env.step("print(inspect_file('task-png.png', question='What colour is the square?'))")
        assert "colour (255, 0, 0)" in obs and len(media_server.chat_requests) == 1  # cached on disk
        assert "infra_error" not in info
        env.reset(options={"task_id": "task-wav"})
        obs, *_ = env.step("print(inspect_file('task-wav.wav'))")
        size = (gaia_root / "2023" / "validation" / "task-wav.wav").stat().st_size
        assert "Duration: 0.75 seconds" in obs and f"the speaker says TOKEN-SPOKEN-{size} (whisper-test)" in obs
        assert [r.path for r in media_server.requests].count(TRANSCRIPTIONS_PATH) == 1
    finally:
        env.close()


def test_a_vision_outage_is_an_infra_error_not_a_wrong_answer(gaia_root: Path, media_server: FakeOpenAIServer,
                                                              tmp_path: Path) -> None:
    env = _media_env(gaia_root, media_server, tmp_path)
    try:
        env.reset(options={"task_id": "task-jpg"})
        media_server.fail_next(500, 1)
        obs, reward, terminated, _, info = env.step("text = inspect_file('task-jpg.jpg', question='Colour?')")
        assert "ToolError" in obs and "vision model" in obs
        assert info["infra_kind"] == "vision" and isinstance(info["infra_error"], str)
        obs, reward, terminated, _, info = env.step("final_answer('blue')")
        assert terminated and info["infra_kind"] == "vision"  # still flagged at the end of the episode
        env.reset(options={"task_id": "task-jpg"})
        _, _, _, _, info = env.step("print(inspect_file('task-jpg.jpg', question='Colour?'))")
        assert "infra_error" not in info  # a new episode starts clean; the server answers again
    finally:
        env.close()
