"""The orders app: customers, orders, the fulfilment queue, sales statistics."""
