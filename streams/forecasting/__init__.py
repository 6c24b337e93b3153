"""Forecasts of intervention counts by time bin and sector (``vigie forecast``): pure logic on count matrices.

``calendar``: the hourly grid in the brigade's local time (hour of week, days, holidays); ``models``: the
baselines and the weekly-profile model; ``distribution``: counts around a mean (negative binomial) — quantiles
and scores; ``backtest``: rolling-origin evaluation against the baselines. No ClickHouse, no Kafka here:
``sinks/forecasts.py`` reads the counts and writes the forecasts.
"""
