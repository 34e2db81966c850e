package bench.baseline;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Counters of the whole job. Flink's local environment runs every subtask in this one JVM, so plain static counters
 * see all of them. A daemon thread writes them as one JSON object to a file (written aside, then renamed) for the
 * bench script, which reads it to follow the drain and to report.
 */
final class Stats {
    /** Kafka messages read (tombstones included). */
    static final AtomicLong EVENTS = new AtomicLong();
    /** Messages whose key could not be read (bad JSON, no key field): skipped. */
    static final AtomicLong UNDECODABLE = new AtomicLong();
    /** Job ids emitted by the extraction (one per key, or one per job of an excluded client). */
    static final AtomicLong IDS_EXTRACTED = new AtomicLong();
    /** Resolve queries (one per clients_to_exclude message). */
    static final AtomicLong RESOLVE_QUERIES = new AtomicLong();
    /** Merge queries run (one per job id). */
    static final AtomicLong MERGE_QUERIES = new AtomicLong();
    /** Rows the merge queries returned (handed to the sink). */
    static final AtomicLong ROWS_MERGED = new AtomicLong();
    /** Successful Stream Loads. */
    static final AtomicLong LOADS = new AtomicLong();
    /** Stream Load attempts that failed and were retried. */
    static final AtomicLong LOAD_RETRIES = new AtomicLong();
    /** Rows acknowledged by Doris (NumberLoadedRows). */
    static final AtomicLong ROWS_LOADED = new AtomicLong();
    /** Body bytes of the successful loads. */
    static final AtomicLong BYTES_LOADED = new AtomicLong();
    /** Wall-clock time (ms since the epoch) of the last successful load's reply. */
    static final AtomicLong LAST_LOAD_MS = new AtomicLong();
    /** Completed checkpoints. */
    static final AtomicLong CHECKPOINTS = new AtomicLong();

    private Stats() {}

    static String json() {
        return "{\"events\":" + EVENTS.get()
                + ",\"undecodable\":" + UNDECODABLE.get()
                + ",\"ids_extracted\":" + IDS_EXTRACTED.get()
                + ",\"resolve_queries\":" + RESOLVE_QUERIES.get()
                + ",\"merge_queries\":" + MERGE_QUERIES.get()
                + ",\"rows_merged\":" + ROWS_MERGED.get()
                + ",\"loads\":" + LOADS.get()
                + ",\"load_retries\":" + LOAD_RETRIES.get()
                + ",\"rows_loaded\":" + ROWS_LOADED.get()
                + ",\"bytes_loaded\":" + BYTES_LOADED.get()
                + ",\"last_load_ms\":" + LAST_LOAD_MS.get()
                + ",\"checkpoints\":" + CHECKPOINTS.get()
                + ",\"now_ms\":" + System.currentTimeMillis()
                + "}";
    }

    /** Starts the daemon thread that rewrites {@code file} every {@code everyMs} milliseconds. */
    static void startReporter(Path file, long everyMs) {
        Thread t = new Thread(() -> {
            Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            while (true) {
                try {
                    Files.writeString(tmp, json() + "\n");
                    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                    Thread.sleep(everyMs);
                } catch (InterruptedException e) {
                    return;
                } catch (IOException e) {
                    System.err.println("flink-baseline: cannot write " + file + ": " + e);
                    try {
                        Thread.sleep(everyMs);
                    } catch (InterruptedException ie) {
                        return;
                    }
                }
            }
        }, "stats-reporter");
        t.setDaemon(true);
        t.start();
    }
}
