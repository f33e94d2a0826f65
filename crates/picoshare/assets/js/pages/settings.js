// The settings (`/settings`): the default expiration, saved through PUT /api/settings.

import * as api from "../api.js";
import { showError } from "../dom.js";

export function init(section) {
  const form = section.querySelector("#settings-form");
  const never = section.querySelector("#settings-never");
  const value = section.querySelector("#settings-value");
  const unit = section.querySelector("#settings-unit");
  const error = section.querySelector("#settings-error");
  const status = section.querySelector("#settings-status");
  const sync = () => {
    value.disabled = never.checked;
    unit.disabled = never.checked;
    value.max = unit.value === "years" ? "10" : "3650";
  };
  never.addEventListener("change", sync);
  unit.addEventListener("change", sync);
  form.addEventListener("input", () => {
    status.textContent = "";
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, "");
    status.textContent = "";
    const body = never.checked
      ? { defaultNeverExpire: true }
      : {
          defaultExpirationDays: Number(value.value) * (unit.value === "years" ? 365 : 1),
          defaultNeverExpire: false,
        };
    if (await api.request(error, "PUT", "/api/settings", body)) {
      status.textContent = "Settings saved";
    }
  });
}
