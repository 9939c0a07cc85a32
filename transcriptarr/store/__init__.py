"""SQLite store: connection setup, migrations, queries."""
