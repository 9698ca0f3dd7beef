"""The Sample Bookshop project: settings, URLs, request ids in logs, a simulated slow mail relay."""
