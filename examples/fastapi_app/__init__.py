"""An inspections API protected by maskinporten-guard, on FastAPI."""
