package bench.baseline;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;

/**
 * Rows to Doris, {@code batchRows} at a time (100 by default). A partial batch goes out after
 * {@code flushIntervalMs}, and before every checkpoint barrier ({@link SinkWriter#flush}), so a completed checkpoint
 * (and the Kafka offsets it commits) covers only loaded rows: at-least-once. Each attempt gets a new label; a failed
 * load is retried {@code retries} times with a backoff that doubles from {@code retryBackoffMs}, then the job fails.
 */
final class StreamLoadSink implements Sink<String> {
    private static final long serialVersionUID = 1L;

    private final Settings settings;

    StreamLoadSink(Settings settings) {
        this.settings = settings;
    }

    @Override
    public SinkWriter<String> createWriter(InitContext context) {
        return new Writer(settings, context);
    }

    static final class Writer implements SinkWriter<String> {
        private final Settings settings;
        private final InitContext context;
        private final StreamLoadClient client;
        private final List<String> rows = new ArrayList<>();
        private long loadSeq;
        private boolean timerSet;

        Writer(Settings settings, InitContext context) {
            this.settings = settings;
            this.context = context;
            this.client = new StreamLoadClient(settings);
        }

        @Override
        public void write(String row, Context ctx) throws IOException, InterruptedException {
            rows.add(row);
            if (rows.size() >= settings.batchRows) {
                flushRows();
            } else if (!timerSet) {
                timerSet = true;
                long at = context.getProcessingTimeService().getCurrentProcessingTime() + settings.flushIntervalMs;
                context.getProcessingTimeService().registerTimer(at, t -> {
                    timerSet = false;
                    flushRows();
                });
            }
        }

        @Override
        public void flush(boolean endOfInput) throws IOException, InterruptedException {
            flushRows();
        }

        private void flushRows() throws IOException, InterruptedException {
            if (rows.isEmpty()) {
                return;
            }
            byte[] body = String.join("\n", rows).getBytes(StandardCharsets.UTF_8);
            long seq = loadSeq++;
            long backoff = settings.retryBackoffMs;
            for (int attempt = 0; ; attempt++) {
                String label = settings.labelPrefix + "_" + context.getSubtaskId() + "_" + System.currentTimeMillis()
                        + "_" + seq + "_" + attempt;
                try {
                    StreamLoadClient.Result r = client.load(label, body);
                    Stats.LOADS.incrementAndGet();
                    Stats.ROWS_LOADED.addAndGet(r.loadedRows());
                    Stats.BYTES_LOADED.addAndGet(body.length);
                    Stats.LAST_LOAD_MS.set(System.currentTimeMillis());
                    break;
                } catch (IOException e) {
                    if (attempt >= settings.retries) {
                        throw new IOException("Stream Load failed after " + (attempt + 1) + " attempts", e);
                    }
                    Stats.LOAD_RETRIES.incrementAndGet();
                    System.err.println("flink-baseline: " + e.getMessage() + "; retrying in " + backoff + " ms");
                    Thread.sleep(backoff);
                    backoff *= 2;
                }
            }
            rows.clear();
        }

        @Override
        public void close() {}
    }
}
