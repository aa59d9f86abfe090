"""Action sinks for the RADAR Deployment stage (webhook, sql, file, python + plugins)."""
