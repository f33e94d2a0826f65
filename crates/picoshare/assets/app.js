// PicoShare's browser code: plain modules, no framework, no build step.
// The page's own behaviour is chosen by the `data-page` attribute of <main>'s first child.

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-action=logout]");
  if (!button) return;
  await fetch("/api/auth", { method: "DELETE" });
  window.location.assign("/");
});
