// Text previews (`<pre data-preview-text=URL data-limit=N>`, made by
// http/pages/preview.rs): the first N bytes of the file, fetched with a Range
// request and shown as text (textContent, never parsed as HTML). A multi-byte
// character cut at the end is dropped.

/** Fills every text preview of the page (run on every page by app.js). */
export async function fillTextPreviews() {
  for (const pre of document.querySelectorAll("pre[data-preview-text]")) {
    const limit = Number(pre.dataset.limit) || 65536;
    try {
      const resp = await fetch(pre.dataset.previewText, { headers: { Range: `bytes=0-${limit - 1}` } });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const buf = await resp.arrayBuffer();
      const text = new TextDecoder("utf-8").decode(buf.slice(0, limit), { stream: true });
      pre.textContent = text;
      pre.dataset.loaded = "true";
    } catch (err) {
      pre.textContent = `The preview could not be loaded: ${err.message}`;
      pre.dataset.loaded = "error";
    }
  }
}
