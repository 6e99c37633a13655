// Make lazy images and frames load now: data-src/data-srcset become src/srcset, native
// loading="lazy" becomes eager, and every srcset candidate and the img's own src (not only the
// one this screen's pixel density picks) is loaded once, so replay on any screen finds its image.
// Resolves (at most WAIT_MS later) once the images it started have loaded or failed: an image
// request starts asynchronously after src is set, and on a busy machine it could start after
// the network had looked idle, when the page was already being closed (a lazy image of the
// last "load more" page was missed that way).
// Returns how many elements were changed or images requested.
async () => {
  const WAIT_MS = 5000;
  const started = [];
  const settled = (img) => new Promise((done) => {
    if (img.complete) { done(); return; }
    img.addEventListener("load", done, { once: true });
    img.addEventListener("error", done, { once: true });
  });
  let changed = 0;
  for (const el of document.querySelectorAll("img, source, iframe, video")) {
    let touched = false;
    const src = el.getAttribute("data-src") || el.getAttribute("data-lazy-src");
    if (src && el.getAttribute("src") !== src) { el.setAttribute("src", src); changed++; touched = true; }
    const srcset = el.getAttribute("data-srcset");
    if (srcset && el.getAttribute("srcset") !== srcset) { el.setAttribute("srcset", srcset); changed++; touched = true; }
    if (el.getAttribute("loading") === "lazy") { el.setAttribute("loading", "eager"); changed++; touched = true; }
    if (touched && el.tagName === "IMG") started.push(settled(el));
  }
  const seen = window.__socialarkSrcset || (window.__socialarkSrcset = new Set());
  for (const el of document.querySelectorAll("img[srcset], source[srcset]")) {
    // The src of an img with a srcset is its 1x candidate: loaded too, since Chromium may show
    // a denser candidate it already has (the ones loaded below) and never ask for the 1x one.
    const own = el.tagName === "IMG" && el.getAttribute("src") ? [el.getAttribute("src")] : [];
    for (const candidate of [...own, ...el.getAttribute("srcset").split(/,\s+/)]) {
      const url = candidate.trim().split(/\s+/)[0];
      if (!url || url.startsWith("data:")) continue;
      const abs = new URL(url, document.baseURI).href;
      if (seen.has(abs)) continue;
      seen.add(abs);
      const img = new Image();
      img.src = abs;
      started.push(settled(img));
      changed++;
    }
  }
  if (started.length) {
    await Promise.race([Promise.all(started),
                        new Promise((done) => setTimeout(done, WAIT_MS))]);
  }
  return changed;
}
