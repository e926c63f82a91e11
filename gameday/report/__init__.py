"""Reports of a game day: per-experiment HTML, the index with trends, history.jsonl,
Markdown summary, results table and JUnit XML."""
