// One auto-scroll step: jump to the bottom of the page (and of the tallest scrollable
// element, for apps that scroll an inner container). Returns the page height afterwards.
// A synthetic "scroll" event follows: Chromium does not dispatch scroll events in a page that
// is not in front, and several pages render at once.
() => {
  const root = document.scrollingElement || document.documentElement;
  root.scrollTop = root.scrollHeight;
  window.scrollTo(0, root.scrollHeight);
  let inner = null;
  for (const el of document.querySelectorAll("main, section, div, ul, ol")) {
    if (el.scrollHeight > el.clientHeight + 50 && /(auto|scroll)/.test(getComputedStyle(el).overflowY)) {
      if (!inner || el.scrollHeight > inner.scrollHeight) inner = el;
    }
  }
  if (inner) inner.scrollTop = inner.scrollHeight;
  window.dispatchEvent(new Event("scroll"));
  document.dispatchEvent(new Event("scroll"));
  if (inner) inner.dispatchEvent(new Event("scroll"));
  return Math.max(root.scrollHeight, inner ? inner.scrollHeight : 0);
}
