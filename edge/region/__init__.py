"""The region's side of the contract: a campaign dispatcher (campaign.py), its SQLite state (store.py),
design registration (designs.py) and the parts report (report.py). Used by `fabedge region`."""
