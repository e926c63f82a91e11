"""The open-model load generator: its run loop, statistics (HDR histograms), outputs
(outcomes log, live file) and workers."""
