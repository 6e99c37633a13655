// Click every visible, enabled element matching one of the "load more" selectors.
// Returns how many were clicked.
(selectors) => {
  let clicked = 0;
  for (const selector of selectors) {
    let found;
    try { found = document.querySelectorAll(selector); } catch (e) { continue; }
    for (const el of found) {
      const box = el.getBoundingClientRect();
      if (el.disabled || box.width === 0 || box.height === 0) continue;
      el.scrollIntoView({ block: "center" });
      el.click();
      clicked++;
    }
  }
  return clicked;
}
