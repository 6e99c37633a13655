"""X (Twitter): a logged-in browser renders profiles, posts and searches; posts come from the
captured GraphQL answers (docs/x.md)."""
