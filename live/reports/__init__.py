"""The report of one live session: sales from the order service, viewers from live."""
