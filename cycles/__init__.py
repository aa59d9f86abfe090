"""radar-cycles: RADAR / PDCA improvement cycles as Prefect flows."""
