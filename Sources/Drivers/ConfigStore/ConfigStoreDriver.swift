// The runtime config store driver (DESIGN A4): SQLite or PostgreSQL.
