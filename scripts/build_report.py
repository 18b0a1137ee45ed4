"""Exports the executed notebook to a standalone report.html: figures and tables are
embedded (no file next to it), a table of contents links every section, code cells can
be shown or hidden with a button (or left out entirely), and no script is fetched from
the network, so the page opens offline.

usage: build_report.py NOTEBOOK.ipynb REPORT.html [--hide-code | --no-code]

  --hide-code   code cells start collapsed (the button shows them)
  --no-code     code cells are left out of the page (outputs and prose only)
"""
import argparse
import html
import re

import nbformat
from nbconvert import HTMLExporter

TOGGLE = """
<style>
  body.lab-hide-code .jp-CodeCell .jp-Cell-inputWrapper { display: none; }
  #lab-toc { position: fixed; top: 0; left: 0; width: 17rem; height: 100vh; overflow-y: auto;
             padding: 1rem; box-sizing: border-box; font: 13px/1.4 sans-serif;
             background: #f7f7f8; border-right: 1px solid #ddd; z-index: 10; }
  #lab-toc a { color: #24478f; text-decoration: none; display: block; margin: 2px 0; }
  #lab-toc a.lab-toc-h3 { padding-left: 1rem; font-size: 12px; }
  #lab-toc button { margin: 0 0 .8rem 0; }
  body { margin-left: 18rem !important; }
  /* Wide figures (several panels) shrink to the column instead of running off the page. */
  .jp-OutputArea-output img, .jp-OutputArea-output svg { max-width: 100%; height: auto; }
  @media print { #lab-toc { display: none; } body { margin-left: 0 !important; } }
</style>
<script>
  function labToggleCode() {
    document.body.classList.toggle('lab-hide-code');
    document.getElementById('lab-code-button').textContent =
      document.body.classList.contains('lab-hide-code') ? 'Show code' : 'Hide code';
  }
</script>
"""

HEADING = re.compile(r'<h([23]) id="([^"]+)"[^>]*>(.*?)(?:<a class="anchor-link".*?</a>)?</h\1>', re.S)
REMOTE_SCRIPT = re.compile(r'<script[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>', re.S)
# Inline module scripts that import from a CDN (nbconvert's mermaid loader).
REMOTE_MODULE = re.compile(r"<script[^>]*>(?:(?!</script>).)*?import\(\s*\"https?://(?:(?!</script>).)*</script>", re.S)


def toc(page: str, code_button: bool, start_hidden: bool) -> str:
    links = []
    for level, anchor, text in HEADING.findall(page):
        label = html.escape(html.unescape(re.sub(r"<[^>]+>", "", text)).strip())
        links.append(f'<a class="lab-toc-h{level}" href="#{anchor}">{label}</a>')
    button = ""
    if code_button:
        label = "Show code" if start_hidden else "Hide code"
        button = f'<button id="lab-code-button" onclick="labToggleCode()">{label}</button>'
    return f'<nav id="lab-toc"><strong>Contents</strong><br>{button}{"".join(links)}</nav>'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("notebook")
    ap.add_argument("out")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--hide-code", action="store_true")
    group.add_argument("--no-code", action="store_true")
    a = ap.parse_args()
    nb = nbformat.read(a.notebook, as_version=4)
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = a.no_code
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    page, _ = exporter.from_notebook_node(nb)
    # MathJax and require.js come from a CDN; the report uses neither, and offline they
    # would only stall the page.
    page = REMOTE_MODULE.sub("", REMOTE_SCRIPT.sub("", page))
    page = page.replace("</head>", TOGGLE + "</head>", 1)
    nav = toc(page, not a.no_code, a.hide_code)
    if a.hide_code:
        page = page.replace('<body class="', '<body class="lab-hide-code ', 1)
    page = re.sub(r"<body([^>]*)>", lambda m: f"<body{m.group(1)}>" + nav, page, count=1)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(page)
    print(f"wrote {a.out} ({len(page) / 1e6:.1f} MB, {len(HEADING.findall(page))} sections in the contents)")


if __name__ == "__main__":
    main()
