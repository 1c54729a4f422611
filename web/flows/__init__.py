"""Multi-step flows shared by the API and the pages (sign-in)."""
