// Title and visible text of the rendered page (for the pages table and full-text search).
() => ({
  title: document.title || "",
  text: document.body ? document.body.innerText : "",
})
