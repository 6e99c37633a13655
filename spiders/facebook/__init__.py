"""Facebook pages rendered in a logged-in browser; posts parsed from ``[role="article"]``
(docs/facebook.md)."""
