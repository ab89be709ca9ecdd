"""The demo inspections API on Flask, protected by maskinporten-guard."""
