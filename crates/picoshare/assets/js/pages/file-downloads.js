// A file's download history (`/files/{id}/downloads`): the unique-IP checkbox
// reloads the page with or without `?unique=true`.

export function init(section) {
  const box = section.querySelector("#unique-ips");
  if (!box) return;
  box.addEventListener("change", () => {
    const url = new URL(window.location.href);
    if (box.checked) url.searchParams.set("unique", "true");
    else url.searchParams.delete("unique");
    window.location.assign(url.href);
  });
}
