// Login sessions (`/sessions`): end one (DELETE /api/sessions/{id}) or all the
// others (DELETE /api/sessions). Ending this browser's own session logs it out.

import * as api from "../api.js";
import { confirmAction } from "../dom.js";

export function init(section) {
  const status = section.querySelector("#sessions-status");
  const endOthers = section.querySelector("[data-action=end-other-sessions]");

  section.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    if (button.dataset.action === "end-other-sessions" && !(await confirmAction("End every other session? Those browsers must log in again.", "End sessions"))) return;
    button.disabled = true;
    try {
      if (button.dataset.action === "end-session") {
        const row = button.closest("tr");
        const own = row.querySelector(".badge") !== null;
        const resp = await api.send("DELETE", `/api/sessions/${encodeURIComponent(row.dataset.sessionId)}`);
        if (!resp.ok) throw new Error(await api.errorText(resp));
        if (own) {
          window.location.assign("/");
          return;
        }
        row.remove();
        status.textContent = "Session ended";
        endOthers.disabled = section.querySelectorAll("tbody tr").length <= 1;
      } else if (button.dataset.action === "end-other-sessions") {
        const resp = await api.send("DELETE", "/api/sessions");
        if (!resp.ok) throw new Error(await api.errorText(resp));
        const { ended } = await resp.json();
        for (const row of section.querySelectorAll("tbody tr")) {
          if (row.querySelector(".badge") === null) row.remove();
        }
        status.textContent = `${ended} other session${ended === 1 ? "" : "s"} ended`;
        return;
      }
    } catch (e) {
      status.textContent = e.message;
      button.disabled = false;
    }
  });
}
