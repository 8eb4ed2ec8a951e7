"""The numbers a request may carry, bounded by what the documents database can hold.

Row ids are ``Integer`` columns: 32-bit on PostgreSQL, so a larger id cannot name a row
there, and SQLite refuses a number past 64 bits outright. Rather than let the database
fail on such a number (a 500), the routes declare the range in their parameters: FastAPI
refuses anything outside it with a 422 before the database is asked, and the OpenAPI
schema shows the same bounds. One range serves both databases, so an id valid on one is
valid on the other. An offset can never usefully pass the number of rows, so it shares
the bound.
"""

from __future__ import annotations

MAX_ROW_ID = 2**31 - 1
MAX_OFFSET = MAX_ROW_ID
