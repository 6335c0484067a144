"""OpenAI's Batch API: batches of a file's requests, run by the gateway itself across its
replicas (service.py), on the job store's queues and leases."""
