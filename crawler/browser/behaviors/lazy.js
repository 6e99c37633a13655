// Make lazy images and frames load now: data-src/data-srcset become src/srcset, native
// loading="lazy" becomes eager, and every srcset candidate (not only the one this screen's
// pixel density picks) is loaded once, so replay on any screen finds its image.
// Returns how many elements were changed or images requested.
() => {
  let changed = 0;
  for (const el of document.querySelectorAll("img, source, iframe, video")) {
    const src = el.getAttribute("data-src") || el.getAttribute("data-lazy-src");
    if (src && el.getAttribute("src") !== src) { el.setAttribute("src", src); changed++; }
    const srcset = el.getAttribute("data-srcset");
    if (srcset && el.getAttribute("srcset") !== srcset) { el.setAttribute("srcset", srcset); changed++; }
    if (el.getAttribute("loading") === "lazy") { el.setAttribute("loading", "eager"); changed++; }
  }
  const seen = window.__socialarkSrcset || (window.__socialarkSrcset = new Set());
  for (const el of document.querySelectorAll("img[srcset], source[srcset]")) {
    for (const candidate of el.getAttribute("srcset").split(/,\s+/)) {
      const url = candidate.trim().split(/\s+/)[0];
      if (!url || url.startsWith("data:")) continue;
      const abs = new URL(url, document.baseURI).href;
      if (seen.has(abs)) continue;
      seen.add(abs);
      new Image().src = abs;
      changed++;
    }
  }
  return changed;
}
