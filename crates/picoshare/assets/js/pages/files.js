// The file list (`/files`): copy links, and filter, sort and page without
// reloading. The server does the work: the list is a page of 100 files
// sorted and filtered by the query (`?sort=&order=&q=&page=`), with links
// and a form that work without this script. Here, those links and the
// filter fetch the same page and swap its results (`#files-results`) in,
// keeping the filter's focus, and the address follows.

import { copyLinkButtons } from "../clipboard.js";
import { statusLine } from "../dom.js";

/** Wait after the last keystroke before filtering, ms. */
const FILTER_DELAY = 250;

export function init(section) {
  copyLinkButtons(section);
  const form = section.querySelector("#files-filter-form");
  const filter = section.querySelector("#files-filter");
  const status = statusLine(section);
  let results = section.querySelector("#files-results");
  if (!form || !filter || !results) return;
  let latest = 0;
  let timer;

  // Fetches the list at `url` and swaps its results in; only the answer to
  // the latest request is shown.
  async function load(url) {
    const ticket = ++latest;
    section.setAttribute("aria-busy", "true");
    try {
      const resp = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      const html = await resp.text();
      if (ticket !== latest) return;
      const doc = new DOMParser().parseFromString(html, "text/html");
      const fresh = doc.querySelector("#files-results");
      if (!resp.ok || !fresh) {
        window.location.assign(url);
        return;
      }
      results.replaceWith(fresh);
      results = fresh;
      status.textContent = results.dataset.summary || "";
      history.replaceState(null, "", url);
    } catch {
      if (ticket === latest) window.location.assign(url);
    } finally {
      if (ticket === latest) section.removeAttribute("aria-busy");
    }
  }

  // The form's query as a URL of the first page.
  function formUrl() {
    const params = new URLSearchParams(new FormData(form));
    if (!params.get("q")) params.delete("q");
    return `/files?${params}`;
  }

  filter.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => load(formUrl()), FILTER_DELAY);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    load(formUrl());
  });
  // Sort headings and page links, whichever results are shown.
  section.addEventListener("click", (event) => {
    const link = event.target.closest("a.sort, nav.pager a");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    const url = new URL(link.href);
    // The filter as typed, with the order of the link.
    form.elements.sort.value = url.searchParams.get("sort") ?? form.elements.sort.value;
    form.elements.order.value = url.searchParams.get("order") ?? form.elements.order.value;
    load(url.pathname + url.search);
  });
}
