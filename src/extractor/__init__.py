"""extractor: news articles -> events, verbatim-grounded quotes and stances."""
