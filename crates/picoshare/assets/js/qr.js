// QR codes: the server draws them (`GET /qr.svg?text=…`, http/pages/qr.rs,
// with the `qrcode` crate); this module only makes the images. Used for the
// `[data-qr]` placeholders of the server's pages (filled on every page by
// app.js) and for the upload result's code, shown on demand.

/** An `<img>` of the QR code of `text`, described by `label`. */
export function qrImage(text, label = "QR code") {
  const img = document.createElement("img");
  img.className = "qr";
  img.src = `/qr.svg?text=${encodeURIComponent(text)}`;
  img.alt = label;
  img.width = 200;
  img.height = 200;
  return img;
}

/**
 * Draws a QR code in every `[data-qr]` element of the page: the absolute URL
 * of its `data-qr` path, described by `data-qr-label`.
 */
export function fillQrCodes() {
  for (const el of document.querySelectorAll("[data-qr]")) {
    if (el.querySelector("img")) continue;
    el.append(qrImage(new URL(el.dataset.qr, window.location.origin).href, el.dataset.qrLabel || "QR code"));
  }
}

/**
 * A "Show QR code" disclosure for `text`: the image is only asked for when it
 * is opened (one code on demand, not one per upload).
 */
export function qrDetails(text, label = "QR code") {
  const details = document.createElement("details");
  details.className = "qr-details";
  const summary = document.createElement("summary");
  summary.textContent = "Show QR code";
  details.append(summary);
  details.addEventListener("toggle", () => {
    if (!details.open || details.querySelector("img")) return;
    const img = qrImage(text, label);
    // Brought into view once drawn (on a phone it may open below the screen).
    img.addEventListener("load", () => img.scrollIntoView({ block: "nearest" }));
    details.append(img);
  });
  return details;
}
