"""Libraries, folders indexed in place: add, remove and locked scans (libraries), one scan (scan),
and what a scan changes in the database (reconcile). May import: everything below services,
services itself and the queue; never the pipeline or the jobs (scans are queued by name)."""
