"""Operations: rows first, run by a worker, with a log that grows while they run."""
