// The file list (`/files`): filter by name, sort by column, copy links. The
// table is rendered on the server and works without this script.

import { copyLinkButtons } from "../clipboard.js";
import { statusLine } from "../dom.js";

export function init(section) {
  copyLinkButtons(section);
  const tbody = section.querySelector("tbody");
  if (!tbody) return;
  const rows = () => Array.from(tbody.rows);
  const filter = section.querySelector("#files-filter");
  const status = statusLine(section);
  filter.addEventListener("input", () => {
    const q = filter.value.trim().toLowerCase();
    let shown = 0;
    for (const tr of rows()) {
      const match = tr.dataset.filename.toLowerCase().includes(q);
      tr.hidden = !match;
      if (match) shown += 1;
    }
    status.textContent = q ? `${shown} of ${rows().length} files shown` : "";
  });
  for (const button of section.querySelectorAll("button.sort")) {
    button.addEventListener("click", () => {
      const th = button.closest("th");
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      for (const other of section.querySelectorAll("thead th")) other.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const key = button.dataset.sort;
      const numeric = button.dataset.type === "number";
      const value = (tr) => (numeric ? Number(tr.dataset[key]) : tr.dataset[key]);
      const sorted = rows().sort((a, b) => {
        const x = value(a);
        const y = value(b);
        let c;
        if (numeric) c = x - y;
        else if (key === "filename") c = x.localeCompare(y, undefined, { sensitivity: "base", numeric: true });
        else c = x < y ? -1 : x > y ? 1 : 0;
        return ascending ? c : -c;
      });
      tbody.append(...sorted);
    });
  }
}
