"""Typeset examples/localdigest-design.pdf: a short two-column paper about localdigest itself.

The demo needs a real research-paper PDF that we may redistribute; the corpus PDFs may not be.
So the project writes its own, about its own design, and this script typesets it with PyMuPDF's
Story (HTML + CSS laid out into rectangles): title block across the page, then two columns,
a running header and page numbers. The measured numbers live in MEASURED below, in one place.

    .venv/bin/python scripts/make_example_paper.py            # writes examples/localdigest-design.pdf
    .venv/bin/python scripts/make_example_paper.py -o x.pdf
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import pymupdf

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "examples" / "localdigest-design.pdf"

TITLE = "localdigest: Offline Japanese Digests of Research Papers with a Small Local Language Model"
AUTHORS = "localdigest developers"
RUNNING_HEAD = "localdigest: offline Japanese paper digests"
LICENSE_LINE = (
    "This document is released under CC BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/). Copyright the localdigest developers."
)

# Measured on the project's 2-core CPU build machine with the default model; update here when
# the benchmarks (benchmarks/bench.py) report new numbers, then re-run this script.
MEASURED: dict[str, Any] = {
    "model": "Qwen2.5-Coder-1.5B-Instruct",
    "quant": "Q4_K_M",
    "model_gb": 1.12,
    "cores": 2,
    "prompt_tps": 80,
    "gen_tps": 22,
    "qa_pairs": 10,
    "corpus": 20,
}

# A paper as the budget stage typically passes it, and typical output lengths: inputs to the
# derived estimates in Table 2 (estimate = tokens / measured rate), not measurements.
CONTEXT_TOKENS = 6000
ANSWER_TOKENS = 120
GENERATIONS_PER_PAPER = MEASURED["qa_pairs"] + 3  # abstract, summary, question list, answers

PAGE = pymupdf.paper_rect("a4")
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 54, 60, 60
COLUMN_GAP = 18

CSS = """
* { font-family: serif; font-size: 10pt; line-height: 1.35; }
p { text-align: left; margin: 0 0 5pt 0; }
h1 { font-size: 17pt; text-align: center; margin: 0 0 8pt 0; line-height: 1.2; }
h2 { font-family: sans-serif; font-size: 11pt; font-weight: bold; margin: 8pt 0 4pt 0; }
h3 { font-family: sans-serif; font-size: 9.8pt; font-weight: bold; margin: 6pt 0 3pt 0; }
.authors { text-align: center; font-size: 11pt; margin-bottom: 3pt; }
.license { text-align: center; font-size: 8pt; font-style: italic; margin-bottom: 10pt; }
.abstract-head { font-family: sans-serif; text-align: center; font-weight: bold; font-size: 10.5pt; }
.abstract { margin: 0 36pt 6pt 36pt; }
.caption { font-size: 8.6pt; text-align: center; margin: 3pt 0 6pt 0; }
td, th { font-size: 8.6pt; padding: 1pt 4pt; }
th { font-weight: bold; text-align: left; }
.ref { font-size: 8.6pt; text-align: left; }
code { font-family: monospace; font-size: 8.8pt; }
"""


def abstract_html(m: dict[str, Any]) -> str:
    return f"""
<p class="abstract">Researchers who follow a field read far more abstracts than papers, and
readers whose first language is Japanese pay a second cost: every abstract must be translated
before it can be judged. We present localdigest, a command-line tool that turns research-paper
PDFs into a Japanese digest (a faithful translation of the abstract, a one-sentence summary, and
{m["qa_pairs"]} question-and-answer pairs per paper grounded in the paper's pages) without any
network access. It runs a quantized GGUF model through llama.cpp on an ordinary laptop: the
default {m["model"]} {m["quant"]} file is {m["model_gb"]} GB. On a {m["cores"]}-core CPU we
measured about {m["prompt_tps"]} tokens/s for prompt evaluation and about {m["gen_tps"]}
tokens/s for generation. Because every task for a paper shares the same paper text as its
prompt prefix, the key-value cache of that prefix is computed once and reused, which makes
per-paper cost dominated by generation rather than reading. We describe the design, its
evaluation on a {m["corpus"]}-paper arXiv corpus, and its limitations.</p>
"""


def front_html() -> str:
    return f"""
<h1>{TITLE}</h1>
<p class="authors">{AUTHORS}</p>
<p class="license">{LICENSE_LINE}</p>
<p class="abstract-head">Abstract</p>
{abstract_html(MEASURED)}
"""


def body_html(m: dict[str, Any]) -> str:
    return design_html(m) + results_html(m)


def design_html(m: dict[str, Any]) -> str:
    """Sections 1 and 2."""
    return f"""
<h2>1 Introduction</h2>
<p>A weekly digest of new papers is a common way for a research group to keep up with its
field. Producing one in Japanese usually means pasting abstracts into a hosted translation or
chat service. That is slow to repeat by hand, it sends unpublished or licensed documents to a
third party, and it produces answers that cannot be traced back to the page they came from.</p>
<p>localdigest takes a different route. Everything runs on the user's machine: PDF text
extraction, a small instruction-tuned language model, and rendering to plain text, Markdown,
HTML and JSON. The tool is meant for the hardware people already have, so our reference
machine is a {m["cores"]}-core CPU with no GPU. The design goal is that a digest of a week's
papers is a batch job that can run overnight and be resumed after any interruption.</p>
<p>This paper describes the pipeline (Section 2), the setup we use to measure it (Section 3),
the throughput we observe (Section 4), and what the approach cannot do (Section 5).</p>

<h2>2 Design</h2>
<h3>2.1 Pipeline stages</h3>
<p>The tool is a pipeline of five stages, each a module named for what it does.
<b>Extract</b> reads the PDF with PyMuPDF and produces a paper object: text blocks with the
page they sit on, sections with their numbers and kinds (abstract, body, references,
appendix), and bibliographic metadata. <b>Budget</b> counts tokens with the model's own
tokenizer and selects the abstract, introduction, method, results and conclusion by
priority until the context window, minus the output budget, is full; whatever is left out
is recorded on the result instead of being cut silently. <b>Generate</b> asks the model for
the translated abstract, the summary, a list of questions, and one answer per question.
<b>Store</b> writes one JSON record per paper, keyed by the hashes of the PDF, the model
and the prompts, through a temporary file and an atomic rename. <b>Render</b> turns records
into the digest through Jinja2 templates.</p>
<table>
<tr><th>Stage</th><th>Input</th><th>Output</th></tr>
<tr><td>extract</td><td>PDF file</td><td>paper: blocks, sections, metadata</td></tr>
<tr><td>budget</td><td>paper</td><td>context that fits the window</td></tr>
<tr><td>generate</td><td>context</td><td>abstract, summary, Q&amp;A</td></tr>
<tr><td>store</td><td>outputs</td><td>JSON record per paper</td></tr>
<tr><td>render</td><td>records</td><td>txt, md, html, json digest</td></tr>
</table>
<p class="caption">Table 1: The pipeline stages and what each passes on.</p>
<p>The stages take their collaborators as arguments. The model backend, in particular, sits
behind a small interface with two implementations: llama.cpp for real use, and a fake that
returns queued answers, so that the whole pipeline is tested in seconds without a model.</p>
<h3>2.2 Prefix reuse of the paper KV cache</h3>
<p>Every generation for a paper begins with the same long prefix: the instructions and the
selected paper text. A transformer's key-value (KV) cache for that prefix depends only on the
prefix, so it is evaluated once. Each later task keeps the cached prefix, drops the tail that
the previous task added, and evaluates only its own short suffix. For a context of
{CONTEXT_TOKENS:,} tokens this replaces {GENERATIONS_PER_PAPER} full prompt evaluations by one.
The same idea underlies prefix caching in serving systems [3]; here it matters even more,
because prompt evaluation on a small CPU is the slowest part of reading a paper. Models whose
state cannot be truncated (recurrent or hybrid architectures) lose this property, so the
model registry prefers pure-attention models.</p>
<h3>2.3 Structured output and validation</h3>
<p>Small models drift from the requested format. localdigest therefore asks for output in a
constrained form and validates it: the share of Japanese characters, the number of pairs,
duplicate or near-duplicate questions, empty or truncated answers, and answers that merely
restate their question. A failed check is retried with a different seed a bounded number of
times. What still fails is kept with a warning on the record, never dropped.</p>

<h3>2.4 Records and resumable batches</h3>
<p>A record holds the paper's metadata, the generated texts, the page numbers each answer
draws on, every warning, and its provenance: the model name and checksum, the runtime
parameters, a hash of the prompt templates, the tool version, and token counts and seconds
per stage. Records carry a schema version and keep Japanese text readable in the file.
Because a record's key is derived from everything that determines it, re-running a batch
skips finished papers immediately, and changing the model or a prompt redoes exactly the
papers it affects. A process killed at any moment leaves either a complete record or none.</p>
<h3>2.5 Rendering</h3>
<p>The digest is rendered from records alone, so its layout can change without loading a
model again. The plain-text format follows the structure of an existing weekly digest page:
an introduction, an index with each paper's title, date and one-sentence summary, and then,
per paper, its authors, dates, URL, categories, the translated abstract and the Q&amp;A.
Missing metadata is printed as unknown instead of leaving an empty label. The HTML format
is a single file with inline styles, collapsible answers and page references; paper titles
are treated as untrusted input and escaped, and templates fail loudly when they refer to a
variable that does not exist.</p>

"""


def results_html(m: dict[str, Any]) -> str:
    """Sections 3 to 6 and the references, with the measured rates filled in."""
    prompt_s = CONTEXT_TOKENS / float(m["prompt_tps"])
    answers_s = int(m["qa_pairs"]) * ANSWER_TOKENS / float(m["gen_tps"])
    no_reuse_s = GENERATIONS_PER_PAPER * prompt_s
    return f"""<h2>3 Experimental Setup</h2>
<p>All measurements use the default model, {m["model"]} quantized to {m["quant"]}
({m["model_gb"]} GB on disk) [2], run by llama.cpp [1] through its Python binding on a
{m["cores"]}-core x86-64 CPU without a GPU. The evaluation set is a corpus of
{m["corpus"]} arXiv papers in one- and two-column layouts, from short conference papers to
long journal preprints. Each paper receives {m["qa_pairs"]} question-and-answer pairs.
Throughput is reported separately for prompt evaluation (reading) and for generation
(writing), since the two differ by a factor of about four on this hardware.</p>
<p>The corpus also checks extraction. For each paper, the title, authors and abstract found
in the PDF are compared with the arXiv metadata, and the section structure is compared with
the paper's own headings. Papers with unusual layouts, such as journal preprints with running
heads or conference papers with the abstract beside the title block, are included on purpose.
A separate set of broken files (truncated, encrypted, empty and scanned PDFs) checks that each
failure produces a one-line error naming the file and the reason.</p>

<h2>4 Results</h2>
<p>Table 2 lists the measured rates and the per-paper costs they imply. The estimates divide a
token count by a measured rate; they are not separate measurements.</p>
<table>
<tr><th>Quantity</th><th>Value</th></tr>
<tr><td>Model file ({m["quant"]})</td><td>{m["model_gb"]} GB</td></tr>
<tr><td>Prompt evaluation, measured</td><td>~{m["prompt_tps"]} tokens/s</td></tr>
<tr><td>Generation, measured</td><td>~{m["gen_tps"]} tokens/s</td></tr>
<tr><td>Reading {CONTEXT_TOKENS:,} tokens once</td><td>~{prompt_s:.0f} s</td></tr>
<tr><td>{m["qa_pairs"]} answers of {ANSWER_TOKENS} tokens</td><td>~{answers_s:.0f} s</td></tr>
<tr><td>Reading without prefix reuse</td><td>~{no_reuse_s:.0f} s</td></tr>
</table>
<p class="caption">Table 2: Measured rates on a {m["cores"]}-core CPU, and per-paper costs
derived from them.</p>
<p>With prefix reuse, reading the paper costs about {prompt_s:.0f} seconds once, and the
answers dominate the remaining time. Without it, the same paper would be read
{GENERATIONS_PER_PAPER} times, about {no_reuse_s / 60:.0f} minutes of prompt evaluation alone.
Quality is scored without a model by <code>localdigest eval</code>: Japanese share of the
answers, answers that carry a concrete number or term found in the paper, numbers absent from
the paper, and duplicate questions.</p>

<h2>5 Limitations</h2>
<p>A 1.5-billion-parameter model translates and answers less fluently than large hosted
models, and it garbles rare technical terms; keeping names in their Latin form and supplying
a small glossary reduces but does not remove this. Scanned PDFs without a text layer are
rejected rather than recognized. Equations, figures and tables are read only as the text
PyMuPDF extracts from them. Long papers do not fit the context window of a small CPU budget,
so parts are summarized or left out, and the record says which. Finally, answers are grounded
by page references, not verified: a reader should still check numbers against the paper.</p>

<h2>6 Conclusion</h2>
<p>localdigest shows that a useful Japanese digest of research papers can be produced offline,
on a {m["cores"]}-core CPU, with a {m["model_gb"]} GB model. Reusing the paper's KV cache across
all tasks for a paper, validating every output, and recording what was left out make the
results affordable and honest about their limits. The tool, its templates and this document
are available to anyone who wants to adapt them.</p>

<h2>References</h2>
<p class="ref">[1] G. Gerganov and contributors. llama.cpp: LLM inference in C/C++.
https://github.com/ggml-org/llama.cpp.</p>
<p class="ref">[2] B. Hui, J. Yang, Z. Cui, et al. Qwen2.5-Coder Technical Report.
arXiv:2409.12186, 2024.</p>
<p class="ref">[3] W. Kwon, Z. Li, S. Zhuang, et al. Efficient Memory Management for Large
Language Model Serving with PagedAttention. SOSP 2023.</p>
<p class="ref">[4] A. Vaswani, N. Shazeer, N. Parmar, et al. Attention Is All You Need.
NeurIPS 2017.</p>
<p class="ref">[5] Artifex Software. PyMuPDF. https://github.com/pymupdf/PyMuPDF.</p>
"""


def columns(top: float) -> list[pymupdf.Rect]:
    width = (PAGE.width - 2 * MARGIN_X - COLUMN_GAP) / 2
    bottom = PAGE.height - MARGIN_BOTTOM
    left = pymupdf.Rect(MARGIN_X, top, MARGIN_X + width, bottom)
    right = pymupdf.Rect(left.x1 + COLUMN_GAP, top, PAGE.width - MARGIN_X, bottom)
    return [left, right]


def typeset() -> bytes:
    """Title block across page 1, then the body flowing through two columns per page."""
    buffer = io.BytesIO()
    writer = pymupdf.DocumentWriter(buffer)
    front = pymupdf.Story(html=front_html(), user_css=CSS)
    body = pymupdf.Story(html=body_html(MEASURED), user_css=CSS)

    device = writer.begin_page(PAGE)
    full_width = pymupdf.Rect(MARGIN_X, MARGIN_TOP, PAGE.width - MARGIN_X, PAGE.height / 2)
    more, filled = front.place(full_width)
    if more:
        raise SystemExit("the title block does not fit in half a page; shorten the abstract")
    front.draw(device)
    top = pymupdf.Rect(filled).y1 + 10
    while True:
        for column in columns(top):
            more, _ = body.place(column)
            body.draw(device)
            if not more:
                break
        writer.end_page()
        if not more:
            break
        device = writer.begin_page(PAGE)
        top = MARGIN_TOP
    writer.close()
    return buffer.getvalue()


def finish(pdf: bytes, output: Path) -> None:
    """Running header, page numbers and document metadata, then a compact save."""
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    count = doc.page_count
    for index in range(count):
        page, number = doc[index], index + 1
        if number > 1:
            page.insert_text((MARGIN_X, 36), RUNNING_HEAD, fontname="helv", fontsize=8)
            page.draw_line((MARGIN_X, 41), (PAGE.width - MARGIN_X, 41), width=0.4)
        label = f"{number} / {count}"
        width = pymupdf.get_text_length(label, fontname="helv", fontsize=8)
        page.insert_text(
            ((PAGE.width - width) / 2, PAGE.height - 30), label, fontname="helv", fontsize=8
        )
    doc.set_metadata(
        {
            "title": TITLE,
            "author": AUTHORS,
            "subject": "Design and measurements of localdigest",
            "keywords": "localdigest, llama.cpp, Japanese, digest, CC BY 4.0",
            "creator": "scripts/make_example_paper.py",
            "producer": "PyMuPDF",
            # Fixed dates keep the file byte-identical from run to run.
            "creationDate": "D:20250101000000Z",
            "modDate": "D:20250101000000Z",
        }
    )
    doc.subset_fonts()
    output.parent.mkdir(parents=True, exist_ok=True)
    doc.save(output, garbage=4, deflate=True, no_new_id=True)
    doc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    finish(typeset(), args.output)
    with pymupdf.open(args.output) as doc:
        print(f"wrote {args.output}: {doc.page_count} pages, {args.output.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
