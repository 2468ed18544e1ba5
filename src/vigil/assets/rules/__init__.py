"""Rules: alert rules (low battery, missing, maintenance overdue) and the periodic check that applies them."""
