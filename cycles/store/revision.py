"""The schema revision this radar knows, free of SQLAlchemy so readers can check it cheaply."""

HEAD = "0001"  # the newest migration; a database at this revision needs no upgrade
