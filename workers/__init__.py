"""The workers: stateless, each implementing waybill.worker.v1.WorkerService."""
