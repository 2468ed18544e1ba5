"""Maintenance: scheduled tasks on one asset, whose overdue alert the rules check raises."""
