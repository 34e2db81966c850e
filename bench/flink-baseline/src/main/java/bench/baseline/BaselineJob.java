package bench.baseline;

import java.nio.file.Path;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;

/**
 * The Flink job that cdc2doris replaces, as its design describes it, for bench/run:
 *
 * <pre>
 *   Kafka (4 topics) -> key extraction (+ resolve query) -> keyBy(job id) -> merge query per id -> Stream Load x100
 * </pre>
 *
 * Checkpointing is on; the Kafka source commits its offsets when a checkpoint completes. Everything runs in Flink's
 * local environment inside this JVM ({@code java -Xmx1g -jar flink-baseline.jar ...}) until the process is stopped.
 */
public final class BaselineJob {
    private BaselineJob() {}

    public static void main(String[] args) throws Exception {
        Settings s;
        try {
            s = Settings.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return;
        }
        if (s.statsFile != null) {
            Stats.startReporter(Path.of(s.statsFile), 250);
        }

        Configuration conf = new Configuration();
        // A failing job is restarted three times from its last checkpoint, then it fails and the process exits.
        conf.setString("restart-strategy.type", "fixed-delay");
        conf.setString("restart-strategy.fixed-delay.attempts", "3");
        conf.setString("restart-strategy.fixed-delay.delay", "5 s");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(s.parallelism, conf);
        env.enableCheckpointing(s.checkpointIntervalMs);

        KafkaSource<Change> source = KafkaSource.<Change>builder()
                .setBootstrapServers(s.bootstrap)
                .setTopics(s.topics())
                .setGroupId(s.group)
                .setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
                .setDeserializer(new ChangeDeserializer())
                .build();

        env.fromSource(source, WatermarkStrategy.noWatermarks(), "kafka")
                .flatMap(new KeyExtractor(s))
                .name("extract job ids")
                .keyBy(id -> id)
                .flatMap(new MergeQuery(s))
                .name("merge query")
                .sinkTo(new StreamLoadSink(s))
                .name("stream load");

        System.err.println("flink-baseline: parallelism " + s.parallelism + ", topics " + s.topics() + ", group "
                + s.group + ", Doris " + s.dorisFe + " " + s.dorisDb + "." + s.dorisTable);
        try {
            env.execute("flink-baseline");
        } catch (Exception e) {
            System.err.println("flink-baseline: the job failed: " + e);
            e.printStackTrace();
            System.exit(1);
        }
    }
}
