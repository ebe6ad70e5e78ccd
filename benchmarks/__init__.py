"""`make bench`: performance figures, each measured against a baseline taken in the same run."""
