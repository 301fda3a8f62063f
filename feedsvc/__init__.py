"""feedsvc: turn topic pages that have no feed into Atom feeds."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/feedsvc/feedsvc"
