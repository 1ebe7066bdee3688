"""Open data: streamed exports, Atom feeds, JSON-LD, sitemap.xml and robots.txt."""
